import { test, describe, before, after, beforeEach } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { readFile, readdir, rm } from 'node:fs/promises';
import { tempDir } from '../helpers/cli.ts';
import { join } from 'node:path';
import { ImageCache } from '../../src/image/cache.ts';
import type { FetchRequest } from '../../src/image/cache.ts';
import { download } from '../../src/image/download.ts';
import type { DownloadProgress } from '../../src/image/progress.ts';
import { DevclusterError } from '../../src/ui/errors.ts';
import { FaultServer, RecordingProxy, selfSignedCertificate, sha256, testBytes, whenFileReaches } from '../helpers/image-server.ts';
import { rejectsWith } from '../helpers/errors.ts';

const BODY = testBytes(256 * 1024, 7);
const SHA = sha256(BODY);
const FAST = { backoffMs: 5, maxBackoffMs: 20, stallTimeoutMs: 400, retries: 3, env: {} };

let server: FaultServer;
let root: string;
let cache: ImageCache;

before(async () => {
  server = await new FaultServer().start();
});
after(async () => {
  await server.close();
});
beforeEach(async () => {
  root = await tempDir('devcluster-dl-');
  cache = new ImageCache(join(root, 'cache', 'images'));
  server.requests.length = 0;
});

/** The connection dies only after `bytes` reached the part file, so the resume point is exact. */
function landed(bytes: number): Promise<void> {
  return whenFileReaches(cache.partPath(SHA), bytes);
}

function fetchOf(path: string, extra: Partial<FetchRequest> = {}): Promise<unknown> {
  return cache.fetch({ sha256: SHA, url: server.url(path), filename: 'disk.qcow2', ...extra, download: { ...FAST, ...extra.download } });
}

async function assertVerified(path = 'disk.qcow2'): Promise<void> {
  const file = join(cache.entryDir(SHA), path);
  assert.equal(sha256(await readFile(file)), SHA, 'the cached file has the expected digest');
  assert.deepEqual((await readdir(cache.entryDir(SHA))).sort(), [path, 'stamp.json'].sort());
}

function assertNothingCached(): void {
  assert.equal(existsSync(cache.entryDir(SHA)), false, 'nothing under the digest\'s name');
}

describe('verified download against a misbehaving server', () => {
  test('a plain download is verified and cached with a stamp', async () => {
    server.route('/plain', { body: BODY, etag: '"a"', plan: [] });
    await fetchOf('/plain');
    await assertVerified();
    assert.equal(server.requestsTo('/plain').length, 1);
    assert.equal(server.requestsTo('/plain')[0]?.headers['accept-encoding'], 'identity');
  });

  test('a reset mid-body resumes with Range and If-Range, transferring only the rest', async () => {
    server.route('/reset', { body: BODY, etag: '"r1"', plan: [{ kind: 'reset', after: 100_000, when: landed(100_000) }] });
    await fetchOf('/reset');
    await assertVerified();
    const [first, second] = server.requestsTo('/reset');
    assert.equal(first?.headers['range'], undefined);
    assert.equal(second?.headers['range'], 'bytes=100000-');
    assert.equal(second?.headers['if-range'], '"r1"');
    assert.equal(second?.bytesSent, BODY.length - 100_000, 'only the remaining bytes were sent');
  });

  test('an interrupted run leaves a part that the next run resumes with a 206', async () => {
    server.route('/resume', { body: BODY, lastModified: 'Tue, 01 Jul 2025 10:00:00 GMT', plan: [{ kind: 'reset', after: 150_000, when: landed(150_000) }] });
    await rejectsWith(fetchOf('/resume', { download: { retries: 0 } }), 'IMAGE_DOWNLOAD_FAILED');
    assertNothingCached();
    const partSize = (await readFile(cache.partPath(SHA))).length;
    assert.equal(partSize, 150_000, 'the part holds what arrived');
    await fetchOf('/resume');
    await assertVerified();
    const second = server.requestsTo('/resume')[1];
    assert.equal(second?.headers['range'], `bytes=${partSize}-`);
    assert.equal(second?.headers['if-range'], 'Tue, 01 Jul 2025 10:00:00 GMT', 'Last-Modified is the validator without an ETag');
    assert.equal(second?.bytesSent, BODY.length - partSize);
    assert.equal(existsSync(cache.partPath(SHA)), false, 'the part is gone once published');
  });

  test('a truncated body (Content-Length larger than sent) is retried and completed', async () => {
    server.route('/truncated', { body: BODY, etag: '"t"', plan: [{ kind: 'truncate', after: 50_000, when: landed(50_000) }] });
    await fetchOf('/truncated');
    await assertVerified();
    assert.equal(server.requestsTo('/truncated').length, 2);
    assert.equal(server.requestsTo('/truncated')[1]?.headers['range'], 'bytes=50000-');
  });

  test('wrong bytes fail with IMAGE_CHECKSUM_MISMATCH and leave nothing behind', async () => {
    const wrong = Buffer.from(BODY);
    wrong[1234] = (wrong[1234] ?? 0) ^ 0xff;
    server.route('/wrong', { body: wrong, etag: '"w"', plan: [] });
    const e = await rejectsWith(fetchOf('/wrong'), 'IMAGE_CHECKSUM_MISMATCH');
    assert.equal(e.details['sha256'], sha256(wrong));
    assertNothingCached();
    assert.equal(existsSync(cache.partPath(SHA)), false, 'the bad part is removed');
    assert.equal(server.requestsTo('/wrong').length, 1, 'a fresh download that mismatches is not retried');
  });

  test('a resumed download that mismatches is downloaded once more from zero before failing', async () => {
    const wrong = Buffer.from(BODY);
    wrong[200_000] = (wrong[200_000] ?? 0) ^ 0xff;
    server.route('/spliced', { body: wrong, etag: '"s"', plan: [{ kind: 'reset', after: 100_000, when: landed(100_000) }] });
    await rejectsWith(fetchOf('/spliced'), 'IMAGE_CHECKSUM_MISMATCH');
    const requests = server.requestsTo('/spliced');
    assert.equal(requests.length, 3);
    assert.equal(requests[2]?.headers['range'], undefined, 'the last try is a clean download');
    assertNothingCached();
  });

  test('a 500 is retried and the next answer is used', async () => {
    server.route('/flaky', { body: BODY, etag: '"f"', plan: [{ kind: 'status', code: 500 }, { kind: 'status', code: 503 }] });
    await fetchOf('/flaky');
    await assertVerified();
    assert.equal(server.requestsTo('/flaky').length, 3);
  });

  test('5xx every time gives up after the retries with IMAGE_DOWNLOAD_FAILED', async () => {
    server.route('/down', { body: BODY, plan: Array.from({ length: 10 }, () => ({ kind: 'status' as const, code: 502 })) });
    const e = await rejectsWith(fetchOf('/down', { download: { retries: 2 } }), 'IMAGE_DOWNLOAD_FAILED');
    assert.match(e.message, /HTTP 502/);
    assert.equal(server.requestsTo('/down').length, 3, 'one try and two retries');
    assertNothingCached();
  });

  test('a 404 is not retried', async () => {
    const e = await rejectsWith(fetchOf('/missing'), 'IMAGE_DOWNLOAD_REJECTED');
    assert.match(e.message, /404/);
    assert.equal(server.requestsTo('/missing').length, 1);
    assertNothingCached();
  });

  test('a 403 is not retried either', async () => {
    server.route('/forbidden', { body: BODY, plan: [{ kind: 'status', code: 403 }] });
    await rejectsWith(fetchOf('/forbidden'), 'IMAGE_DOWNLOAD_REJECTED');
    assert.equal(server.requestsTo('/forbidden').length, 1);
  });

  test('a stall past the timeout is abandoned and the retry resumes', async () => {
    server.route('/stall', { body: BODY, etag: '"st"', plan: [{ kind: 'stall', after: 80_000 }] });
    await fetchOf('/stall');
    await assertVerified();
    const second = server.requestsTo('/stall')[1];
    assert.match(String(second?.headers['range']), /^bytes=\d+-$/);
  });

  test('a server that always stalls fails with a message that says so', async () => {
    server.route('/stuck', { body: BODY, plan: [{ kind: 'stall', after: 10 }, { kind: 'stall', after: 10 }] });
    const e = await rejectsWith(fetchOf('/stuck', { download: { retries: 1, stallTimeoutMs: 200 } }), 'IMAGE_DOWNLOAD_FAILED');
    assert.match(e.message, /stalled/);
    assertNothingCached();
  });

  test('a 200 answer to a range request restarts from zero', async () => {
    server.route('/norange', { body: BODY, etag: '"n"', plan: [{ kind: 'reset', after: 100_000, when: landed(100_000) }, { kind: 'ignore-range' }] });
    await fetchOf('/norange');
    await assertVerified();
    const second = server.requestsTo('/norange')[1];
    assert.equal(second?.headers['range'], 'bytes=100000-', 'a range was asked for');
    assert.equal(second?.bytesSent, BODY.length, 'the whole file came back and was used from zero');
  });

  test('an ETag that changed between attempts restarts from zero', async () => {
    server.route('/etag', { body: BODY, etag: '"v1"', plan: [{ kind: 'reset', after: 100_000, when: landed(100_000) }, { kind: 'new-etag-naive', etag: '"v2"' }] });
    await fetchOf('/etag');
    await assertVerified();
    const requests = server.requestsTo('/etag');
    assert.equal(requests.length, 3);
    assert.equal(requests[1]?.headers['if-range'], '"v1"');
    assert.equal(requests[2]?.headers['range'], undefined, 'the third request starts over');
    assert.equal(requests[2]?.bytesSent, BODY.length);
  });

  test('a size other than the expected one is refused before the body is used', async () => {
    server.route('/size', { body: BODY, plan: [] });
    const e = await rejectsWith(fetchOf('/size', { expectedSize: BODY.length + 1 }), 'IMAGE_CHECKSUM_MISMATCH');
    assert.match(e.message, /bytes but/);
    assertNothingCached();
  });

  test('AbortSignal cancels a download in flight', async () => {
    let release: () => void = () => undefined;
    server.route('/abort', { body: BODY, etag: '"ab"', plan: [{ kind: 'hold', release: new Promise<void>((r) => (release = r)) }] });
    const controller = new AbortController();
    const pending = fetchOf('/abort', { download: { signal: controller.signal, stallTimeoutMs: 30_000 } });
    while (server.requestsTo('/abort').length === 0) await new Promise((r) => setImmediate(r));
    controller.abort(new DevclusterError('INTERRUPTED', 'test cancelled'));
    await rejectsWith(pending, 'INTERRUPTED');
    release();
    assertNothingCached();
  });

  test('progress reports bytes, total, rate and a final done', async () => {
    server.route('/progress', { body: BODY, plan: [] });
    const seen: DownloadProgress[] = [];
    await fetchOf('/progress', { download: { onProgress: (p) => seen.push(p), progressIntervalMs: 0 } });
    assert.ok(seen.length >= 2);
    assert.equal(seen.at(-1)?.done, true);
    assert.equal(seen.at(-1)?.bytes, BODY.length);
    for (const p of seen) assert.equal(p.total, BODY.length);
    for (let i = 1; i < seen.length; i += 1) assert.ok((seen[i]?.bytes ?? 0) >= (seen[i - 1]?.bytes ?? 0), 'bytes never go back');
  });

  test('offline: a missing entry is IMAGE_NOT_CACHED and no request is made', async () => {
    server.route('/offline', { body: BODY, plan: [] });
    await rejectsWith(fetchOf('/offline', { offline: true }), 'IMAGE_NOT_CACHED');
    assert.equal(server.requestsTo('/offline').length, 0);
    await fetchOf('/offline');
    await fetchOf('/offline', { offline: true });
    assert.equal(server.requestsTo('/offline').length, 1, 'the cached copy serves offline');
  });

  test('download() alone renames only a verified file to its destination', async () => {
    server.route('/direct', { body: BODY, plan: [] });
    const destination = join(root, 'out', 'file.bin');
    const result = await download({ url: server.url('/direct'), sha256: SHA, destination, partPath: join(root, 'p', 'x.part'), ...FAST });
    assert.equal(result.sha256, SHA);
    assert.equal(result.requests, 1);
    assert.equal(result.bytesTransferred, BODY.length);
    assert.equal(sha256(await readFile(destination)), SHA);
    await rm(destination);
    await rejectsWith(download({ url: server.url('/direct'), sha256: 'f'.repeat(64), destination, partPath: join(root, 'p', 'x.part'), ...FAST }), 'IMAGE_CHECKSUM_MISMATCH');
    assert.equal(existsSync(destination), false);
  });
});

describe('proxies', () => {
  let proxy: RecordingProxy;
  before(async () => {
    proxy = await new RecordingProxy().start();
  });
  after(async () => {
    await proxy.close();
  });
  beforeEach(() => {
    proxy.seen.length = 0;
  });

  test('HTTP_PROXY sends the request through the proxy', async () => {
    server.route('/proxied', { body: BODY, plan: [] });
    await fetchOf('/proxied', { download: { env: { HTTP_PROXY: proxy.url } } });
    await assertVerified();
    assert.deepEqual(proxy.seen, [{ method: 'GET', target: server.url('/proxied') }]);
  });

  test('NO_PROXY bypasses the proxy for a matching host', async () => {
    server.route('/bypass', { body: BODY, plan: [] });
    await fetchOf('/bypass', { download: { env: { HTTP_PROXY: proxy.url, NO_PROXY: 'example.com,127.0.0.1' } } });
    await assertVerified();
    assert.deepEqual(proxy.seen, []);
    assert.equal(server.requestsTo('/bypass').length, 1, 'the server was reached directly');
  });

  test('HTTPS_PROXY tunnels https with CONNECT and TLS stays end to end', async () => {
    const tls = selfSignedCertificate();
    const secure = await new FaultServer(tls).start();
    try {
      secure.route('/secure', { body: BODY, etag: '"tls"', plan: [{ kind: 'reset', after: 60_000, when: landed(60_000) }] });
      await cache.fetch({
        sha256: SHA, url: secure.url('/secure'), filename: 'disk.qcow2',
        download: { ...FAST, ca: tls.cert, env: { HTTPS_PROXY: proxy.url, HTTP_PROXY: 'http://127.0.0.1:9' } },
      });
      await assertVerified();
      assert.ok(proxy.seen.length >= 2, 'both attempts went through the proxy');
      for (const s of proxy.seen) assert.deepEqual(s, { method: 'CONNECT', target: `127.0.0.1:${secure.port}` });
      assert.equal(secure.requestsTo('/secure')[1]?.headers['range'], 'bytes=60000-', 'the resume works through the tunnel');
    } finally {
      await secure.close();
    }
  });

  test('a proxy that cannot be reached fails with advice naming the variable', async () => {
    server.route('/noproxy', { body: BODY, plan: [] });
    const e = await rejectsWith(fetchOf('/noproxy', { download: { retries: 1, env: { http_proxy: 'http://127.0.0.1:9' } } }), 'IMAGE_DOWNLOAD_FAILED');
    assert.match(e.advice ?? '', /http_proxy/);
    assert.equal(server.requestsTo('/noproxy').length, 0);
  });
});
