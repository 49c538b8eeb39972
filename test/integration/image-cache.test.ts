import { test, describe, before, after, beforeEach } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { chmod, mkdir, open, readFile, readdir, rm, stat, utimes, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { setTimeout as sleep } from 'node:timers/promises';
import { ImageCache } from '../../src/image/cache.ts';
import { importBuiltImage } from '../../src/image/built.ts';
import { buildImage } from '../../src/image/build.ts';
import { parseCatalog } from '../../src/image/catalog.ts';
import type { Catalog } from '../../src/image/catalog.ts';
import { resolveImage } from '../../src/image/resolve.ts';
import { homePaths } from '../../src/profile/paths.ts';
import { REPO, runCli, snapshotTree, tempDir } from '../helpers/cli.ts';
import { FaultServer, sha256, testBytes } from '../helpers/image-server.ts';
import { QEMU_IMG_MISSING, cleanQcow2 } from '../helpers/disk-images.ts';
import { rejectsWith } from '../helpers/errors.ts';

// A real qcow2: every image is read by qemu-img before it enters the cache.
const DISK = QEMU_IMG_MISSING === false ? await readFile(await cleanQcow2(await tempDir('devcluster-disk-'), 'tiny.qcow2', '3M')) : Buffer.alloc(0);
const KERNEL = testBytes(20 * 1024, 12);
const INITRD = testBytes(30 * 1024, 13);
const FAST = { backoffMs: 5, maxBackoffMs: 20, stallTimeoutMs: 2000, retries: 2, env: {} };

let server: FaultServer;

before(async () => {
  server = await new FaultServer().start();
});
after(async () => {
  await server.close();
});
beforeEach(() => {
  server.requests.length = 0;
});

async function tempHome(): Promise<string> {
  return tempDir('devcluster-imgcache-');
}

async function until(condition: () => boolean, what: string): Promise<void> {
  for (let i = 0; i < 2000; i += 1) {
    if (condition()) return;
    await sleep(5);
  }
  assert.fail(`timed out waiting for ${what}`);
}

describe('two processes fetching the same image', { skip: QEMU_IMG_MISSING }, () => {
  test('one downloads, the other waits on the digest lock and reuses the verified file', async () => {
    const home = await tempHome();
    const root = homePaths(home).imageCache;
    let release: () => void = () => undefined;
    server.route('/shared.qcow2', { body: DISK, etag: '"s"', plan: [{ kind: 'hold', release: new Promise<void>((r) => (release = r)) }] });
    const script = join(home, 'fetch.ts');
    await writeFile(script, [
      `import { ImageCache } from ${JSON.stringify(pathToFileURL(join(REPO, 'src', 'image', 'cache.ts')).href)};`,
      'const [root, url, sha] = process.argv.slice(2);',
      'const entry = await new ImageCache(root).fetch({ sha256: sha, url, filename: "disk.qcow2",',
      '  download: { env: {}, stallTimeoutMs: 60000 }, onWait: (holder) => console.log(`waiting for ${holder}`) });',
      'console.log(`path ${entry.path}`);',
    ].join('\n'));
    const outputs: string[] = ['', ''];
    const start = (i: number) => new Promise<number>((resolve, reject) => {
      const child = spawn(process.execPath, [script, root, server.url('/shared.qcow2'), sha256(DISK)], { stdio: ['ignore', 'pipe', 'pipe'] });
      child.stdout.setEncoding('utf8').on('data', (d: string) => (outputs[i] += d));
      child.stderr.setEncoding('utf8').on('data', (d: string) => (outputs[i] += d));
      child.on('error', reject);
      child.on('close', (code) => resolve(code ?? -1));
    });
    const first = start(0);
    await until(() => server.requestsTo('/shared.qcow2').length === 1, 'the first process to start downloading');
    const second = start(1);
    await until(() => outputs[1]?.includes('waiting for') === true, 'the second process to wait for the first');
    release();
    assert.deepEqual(await Promise.all([first, second]), [0, 0], outputs.join('\n'));
    const requests = server.requestsTo('/shared.qcow2');
    assert.equal(requests.length, 1, 'the server saw exactly one download');
    assert.equal(requests[0]?.bytesSent, DISK.length, 'and it was a full one');
    const paths = outputs.map((o) => /path (.+)/.exec(o)?.[1]);
    assert.ok(paths[0] !== undefined);
    assert.equal(paths[0], paths[1], 'both end with the same path');
    assert.equal(sha256(await readFile(paths[0] as string)), sha256(DISK));
  });
});

describe('cache entries', { skip: QEMU_IMG_MISSING }, () => {
  let home: string;
  let cache: ImageCache;
  const SHA = sha256(DISK);
  beforeEach(async () => {
    home = await tempHome();
    cache = ImageCache.forHome(home);
    server.route('/disk.qcow2', { body: DISK, etag: '"d"', plan: [] });
  });

  const fetchDisk = (extra: { onCorrupt?: (sha: string, path: string) => void } = {}) =>
    cache.fetch({ sha256: SHA, url: server.url('/disk.qcow2'), filename: 'disk.qcow2', download: FAST, ...extra });

  async function flipByte(path: string, at: number): Promise<void> {
    const handle = await open(path, 'r+');
    const one = Buffer.alloc(1);
    await handle.read(one, 0, 1, at);
    one[0] = (one[0] ?? 0) ^ 0xff;
    await handle.write(one, 0, 1, at);
    await handle.close();
  }

  test('a flipped byte is detected on use, the entry removed and fetched again', async () => {
    const entry = await fetchDisk();
    await flipByte(entry.path, 5000);
    const corrupt: string[] = [];
    const again = await fetchDisk({ onCorrupt: (_sha, path) => corrupt.push(path) });
    assert.deepEqual(corrupt, [entry.path]);
    assert.equal(server.requestsTo('/disk.qcow2').length, 2, 'downloaded again');
    assert.equal(sha256(await readFile(again.path)), SHA);
  });

  test('putting the mtime back does not hide a change (the ctime still moves)', async () => {
    const entry = await fetchDisk();
    const before = await stat(entry.path);
    await flipByte(entry.path, 100);
    await utimes(entry.path, before.atime, before.mtime);
    assert.equal(await cache.peek(SHA), undefined, 'the stamp no longer vouches for the file');
    assert.equal(await cache.lookup(SHA), undefined, 'a re-hash finds the mismatch');
    assert.equal(existsSync(cache.entryDir(SHA)), false, 'and the entry is gone');
  });

  test('verify: full re-hashes even when the stamp matches', async () => {
    const entry = await fetchDisk();
    await flipByte(entry.path, 42);
    const st = await stat(entry.path);
    const stampPath = join(cache.entryDir(SHA), 'stamp.json');
    const stamp = JSON.parse(await readFile(stampPath, 'utf8')) as Record<string, unknown>;
    await writeFile(stampPath, JSON.stringify({ ...stamp, size: st.size, mtimeMs: st.mtimeMs, ctimeMs: st.ctimeMs, ino: st.ino }));
    assert.ok((await cache.lookup(SHA)) !== undefined, 'a stamp that matches is trusted without hashing');
    assert.equal(await cache.lookup(SHA, { verify: 'full' }), undefined);
    assert.equal(existsSync(cache.entryDir(SHA)), false);
  });

  test('a file changed but still correct is re-stamped, not removed', async () => {
    const entry = await fetchDisk();
    const now = new Date();
    await utimes(entry.path, now, new Date(now.getTime() - 60_000));
    assert.equal(await cache.peek(SHA), undefined);
    const found = await cache.lookup(SHA);
    assert.equal(found?.path, entry.path);
    assert.ok((await cache.peek(SHA)) !== undefined, 'stamped again');
  });

  test('last used times and sources are recorded in index.json', async () => {
    await fetchDisk();
    const index = JSON.parse(await readFile(join(cache.root, 'index.json'), 'utf8')) as { entries: Record<string, { lastUsedAt: string; source: string; size: number }> };
    const entry = index.entries[SHA];
    assert.equal(entry?.source, server.url('/disk.qcow2'));
    assert.equal(entry?.size, DISK.length);
    const first = entry?.lastUsedAt ?? '';
    await sleep(5);
    await fetchDisk();
    const later = (JSON.parse(await readFile(join(cache.root, 'index.json'), 'utf8')) as typeof index).entries[SHA]?.lastUsedAt ?? '';
    assert.ok(later > first, 'using it again moves the time forward');
  });

  test('importing a local file: verified against the digest, or hashed and remembered without one', async () => {
    const file = join(home, 'my.qcow2');
    await writeFile(file, DISK);
    await rejectsWith(cache.importFile(file, { sha256: 'a'.repeat(64) }), 'IMAGE_CHECKSUM_MISMATCH');
    assert.equal(existsSync(cache.entryDir('a'.repeat(64))), false);
    assert.deepEqual(await readdir(join(cache.root, '.staging')), [], 'no staging leftovers');
    const entry = await cache.importFile(file);
    assert.equal(entry.sha256, SHA);
    const index = await cache.readIndex();
    assert.equal(index.sources[file]?.sha256, SHA, 'the digest of the unchanged file is remembered');
    const again = await cache.importFile(file, { sha256: SHA });
    assert.equal(again.path, entry.path);
    await rejectsWith(cache.importFile(join(home, 'nope.qcow2')), 'IMAGE_FILE_NOT_FOUND');
  });

  test('prune removes unreferenced entries and partial downloads, keeps referenced ones', async () => {
    const kept = await fetchDisk();
    const other = join(home, 'other.raw');
    await writeFile(other, testBytes(4096, 99));
    const dropped = await cache.importFile(other);
    await mkdir(join(cache.root, '.part'), { recursive: true });
    await writeFile(join(cache.root, '.part', `${'c'.repeat(64)}.part`), 'partial');
    const dry = await cache.prune(new Set([SHA]), { dryRun: true });
    assert.deepEqual(dry.removed.map((r) => r.sha256), [dropped.sha256]);
    assert.ok(existsSync(cache.entryDir(dropped.sha256)), 'a dry run removes nothing');
    const result = await cache.prune(new Set([SHA]));
    assert.deepEqual(result.removed.map((r) => r.sha256), [dropped.sha256]);
    assert.equal(result.partialsRemoved, 1);
    assert.ok(existsSync(kept.path));
    assert.equal(existsSync(cache.entryDir(dropped.sha256)), false);
    assert.deepEqual(await readdir(join(cache.root, '.part')), []);
  });
});

function catalogFor(base: string, overrides: Record<string, unknown> = {}): Catalog {
  const artifact = (name: string, data: Buffer) => ({ url: `${base}v1/${name}`, sha256: sha256(data), size: data.length });
  return parseCatalog({
    schemaVersion: 1,
    downloadBase: base,
    images: [
      {
        name: 'tiny-1', version: '1.0', description: 'test image', recipe: 'tiny', published: true,
        formats: { qcow2: artifact('tiny.qcow2', DISK), kernel: artifact('vmlinuz', KERNEL), initrd: artifact('initrd.img', INITRD) },
        kernelCmdline: 'console=ttyS0',
        ...overrides,
      },
      { name: 'photon-5', version: '5.0', description: 'unpublished', recipe: 'photon', published: false, formats: { qcow2: { url: null, sha256: null, size: null } } },
      { name: 'debian-12', version: '12', description: 'built locally', recipe: 'debian', published: false, formats: {} },
    ],
  });
}

function serveRelease(prefix: string): void {
  server.route(`${prefix}v1/tiny.qcow2`, { body: DISK, plan: [] });
  server.route(`${prefix}v1/vmlinuz`, { body: KERNEL, plan: [] });
  server.route(`${prefix}v1/initrd.img`, { body: INITRD, plan: [] });
}

async function writeBuild(dir: string, overrides: Record<string, unknown> = {}): Promise<string> {
  await mkdir(dir, { recursive: true });
  await writeFile(join(dir, 'disk.qcow2'), DISK);
  await writeFile(join(dir, 'vmlinuz'), KERNEL);
  await writeFile(join(dir, 'initrd.img'), INITRD);
  const manifest = {
    name: 'debian-12', version: '12.8-20250101',
    formats: {
      qcow2: { file: 'disk.qcow2', sha256: sha256(DISK), size: DISK.length, virtualSize: 3221225472 },
      kernel: { file: 'vmlinuz', sha256: sha256(KERNEL), size: KERNEL.length },
      initrd: { file: 'initrd.img', sha256: sha256(INITRD), size: INITRD.length },
    },
    kernelCmdline: 'root=LABEL=devcluster-root rw console=ttyS0,115200n8 net.ifnames=0',
    packages: { containerd: '1.6.20' },
    builtAt: '2025-01-01T00:00:00Z',
    ...overrides,
  };
  await writeFile(join(dir, 'manifest.json'), JSON.stringify(manifest));
  return join(dir, 'manifest.json');
}

describe('resolving the image setting', { skip: QEMU_IMG_MISSING }, () => {
  let home: string;
  beforeEach(async () => {
    home = await tempHome();
  });

  test('a published catalog image: the driver\'s preferred format, kernel and initrd, then offline', async () => {
    serveRelease('/rel/');
    const catalog = catalogFor(server.url('/rel/'));
    const image = await resolveImage({ home, image: 'tiny-1', formats: ['raw', 'qcow2'], catalog, download: FAST });
    assert.equal(image.origin, 'catalog');
    assert.equal(image.format, 'qcow2');
    assert.equal(image.disk.sha256, sha256(DISK));
    assert.equal(sha256(await readFile(image.kernel?.path ?? '')), sha256(KERNEL));
    assert.equal(sha256(await readFile(image.initrd?.path ?? '')), sha256(INITRD));
    assert.equal(image.kernelCmdline, 'console=ttyS0');
    const count = server.requests.length;
    assert.equal(count, 3);
    const offline = await resolveImage({ home, image: 'tiny-1', formats: ['qcow2'], catalog, offline: true });
    assert.deepEqual(offline, image);
    assert.equal(server.requests.length, count, 'offline makes no request');
  });

  test('offline with an empty cache is IMAGE_NOT_CACHED', async () => {
    const catalog = catalogFor(server.url('/rel/'));
    await rejectsWith(resolveImage({ home, image: 'tiny-1', formats: ['qcow2'], catalog, offline: true }), 'IMAGE_NOT_CACHED');
    assert.equal(server.requests.length, 0);
  });

  test('DEVCLUSTER_IMAGE_MIRROR replaces the release base; the digests still decide', async () => {
    serveRelease('/mirror/');
    const catalog = catalogFor('http://127.0.0.1:9/releases/');
    const image = await resolveImage({ home, image: 'tiny-1', formats: ['qcow2'], catalog, env: { DEVCLUSTER_IMAGE_MIRROR: server.url('/mirror') }, download: FAST });
    assert.equal(image.disk.sha256, sha256(DISK));
    assert.deepEqual(server.requests.map((r) => r.path).sort(), ['/mirror/v1/initrd.img', '/mirror/v1/tiny.qcow2', '/mirror/v1/vmlinuz']);
  });

  test('a mirror serving other bytes is refused', async () => {
    server.route('/evil/v1/tiny.qcow2', { body: Buffer.concat([DISK.subarray(0, 8), testBytes(96 * 1024, 66)]), plan: [] });
    const catalog = catalogFor('http://127.0.0.1:9/releases/');
    await rejectsWith(resolveImage({ home, image: 'tiny-1', formats: ['qcow2'], catalog, env: { DEVCLUSTER_IMAGE_MIRROR: server.url('/evil/') }, download: FAST }), 'IMAGE_CHECKSUM_MISMATCH');
  });

  test('a URL needs --image-sha256; with it the download is verified and its format read from the bytes', async () => {
    server.route('/u/custom.qcow2', { body: DISK, plan: [] });
    const catalog = catalogFor(server.url('/rel/'));
    await rejectsWith(resolveImage({ home, image: server.url('/u/custom.qcow2'), formats: ['qcow2'], catalog }), 'IMAGE_SHA256_REQUIRED');
    await rejectsWith(resolveImage({ home, image: server.url('/u/custom.qcow2'), imageSha256: sha256(DISK), formats: ['vhdx'], catalog }), 'IMAGE_FORMAT_UNSUPPORTED');
    assert.equal(server.requests.length, 0, 'nothing is downloaded for a refused request');
    const image = await resolveImage({ home, image: server.url('/u/custom.qcow2'), imageSha256: sha256(DISK).toUpperCase(), formats: ['qcow2'], catalog, download: FAST });
    assert.equal(image.origin, 'url');
    assert.equal(image.format, 'qcow2');
    assert.equal(image.name, 'custom.qcow2');
  });

  test('a path is imported, verified when a digest is given', async () => {
    const file = join(home, 'local.qcow2');
    await writeFile(file, DISK);
    const catalog = catalogFor(server.url('/rel/'));
    await rejectsWith(resolveImage({ home, image: file, imageSha256: 'b'.repeat(64), formats: ['qcow2'], catalog }), 'IMAGE_CHECKSUM_MISMATCH');
    await rejectsWith(resolveImage({ home, image: join(home, 'absent.qcow2'), formats: ['qcow2'], catalog }), 'IMAGE_FILE_NOT_FOUND');
    await rejectsWith(resolveImage({ home, image: file, formats: ['vhdx', 'vmdk'], catalog }), 'IMAGE_FORMAT_UNSUPPORTED');
    const image = await resolveImage({ home, image: file, imageSha256: sha256(DISK), formats: ['qcow2'], catalog });
    assert.equal(image.origin, 'path');
    assert.equal(image.disk.sha256, sha256(DISK));
    assert.notEqual(image.disk.path, file, 'the cache holds its own copy');
  });

  test('unpublished and unbuilt catalog images fail with their own IDs and advice', async () => {
    const catalog = catalogFor(server.url('/rel/'));
    const photon = await rejectsWith(resolveImage({ home, image: 'photon-5', formats: ['qcow2'], catalog }), 'IMAGE_NOT_PUBLISHED');
    assert.match(photon.advice ?? '', /devcluster image build photon/);
    assert.match(photon.advice ?? '', /--image <path\|url> --image-sha256/);
    const debian = await rejectsWith(resolveImage({ home, image: 'debian-12', formats: ['qcow2'], catalog }), 'IMAGE_NOT_BUILT');
    assert.match(debian.advice ?? '', /devcluster image build debian/);
    await rejectsWith(resolveImage({ home, image: 'nonesuch-3', formats: ['qcow2'], catalog }), 'IMAGE_UNKNOWN');
  });

  test('an imported build resolves by name offline, with its kernel, initrd and command line', async () => {
    const manifest = await writeBuild(join(home, 'build'));
    const imported = await importBuiltImage(manifest, { home, recipe: 'debian' });
    assert.equal(imported.name, 'debian-12');
    const catalog = catalogFor(server.url('/rel/'));
    const image = await resolveImage({ home, image: 'debian-12', formats: ['qcow2', 'raw'], catalog, offline: true });
    assert.equal(image.origin, 'build');
    assert.equal(image.version, '12.8-20250101');
    assert.equal(image.disk.sha256, sha256(DISK));
    assert.equal(image.kernel?.sha256, sha256(KERNEL));
    assert.equal(image.initrd?.sha256, sha256(INITRD));
    assert.match(image.kernelCmdline ?? '', /root=LABEL=devcluster-root/);
    await rejectsWith(resolveImage({ home, image: 'debian-12', formats: ['vhdx'], catalog }), 'IMAGE_FORMAT_UNSUPPORTED');
    const record = await ImageCache.forHome(home).namedImage('debian-12');
    assert.equal(record?.recipe, 'debian');
    assert.deepEqual(record?.packages, { containerd: '1.6.20' });
  });

  test('a removed build cannot be resolved and says how to rebuild it', async () => {
    const manifest = await writeBuild(join(home, 'build'));
    await importBuiltImage(manifest, { home, recipe: 'debian' });
    const cache = ImageCache.forHome(home);
    const kernelDir = cache.entryDir(sha256(KERNEL));
    const [kernelFile] = (await readdir(kernelDir)).filter((n) => n !== 'stamp.json');
    await writeFile(join(kernelDir, kernelFile as string), 'not a kernel');
    const e = await rejectsWith(resolveImage({ home, image: 'debian-12', formats: ['qcow2'], catalog: catalogFor(server.url('/rel/')) }), 'IMAGE_NOT_CACHED');
    assert.match(e.advice ?? '', /devcluster image build debian/);
  });

  test('a manifest that does not match its files is refused', async () => {
    const dir = join(home, 'bad');
    const manifest = await writeBuild(dir, {
      formats: { qcow2: { file: 'disk.qcow2', sha256: sha256(DISK), size: DISK.length + 1 } },
    });
    await rejectsWith(importBuiltImage(manifest, { home }), 'IMAGE_MANIFEST_INVALID');
    const wrongSha = await writeBuild(join(home, 'bad2'), {
      formats: { qcow2: { file: 'disk.qcow2', sha256: sha256(KERNEL), size: DISK.length } },
    });
    await rejectsWith(importBuiltImage(wrongSha, { home }), 'IMAGE_CHECKSUM_MISMATCH');
    await rejectsWith(importBuiltImage(join(home, 'nothing', 'manifest.json'), { home }), 'IMAGE_MANIFEST_INVALID');
    assert.deepEqual(await ImageCache.forHome(home).list(), []);
  });
});

describe('image build', { skip: QEMU_IMG_MISSING }, () => {
  const facts = { platform: 'linux' as const, arch: 'x64', uid: 0, offline: false };

  async function recipe(script: string, name = 'debian'): Promise<string> {
    const dir = await tempDir('devcluster-recipes-');
    await mkdir(join(dir, name));
    await writeFile(join(dir, name, 'build.sh'), script);
    await chmod(join(dir, name, 'build.sh'), 0o755);
    return dir;
  }

  /** A PATH whose `docker` answers `docker info` with the given exit code (no real Docker, no network). */
  async function fakeDocker(exitCode: number): Promise<NodeJS.ProcessEnv> {
    const bin = await tempDir('devcluster-fakebin-');
    await writeFile(join(bin, 'docker'), `#!/bin/sh\necho "Cannot connect to the Docker daemon" >&2\nexit ${exitCode}\n`);
    await chmod(join(bin, 'docker'), 0o755);
    return { ...process.env, PATH: `${bin}:/usr/bin:/bin` };
  }

  test('runs the recipe with --out under the cache and imports what it built', async () => {
    const home = await tempHome();
    const source = join(home, 'prebuilt');
    await writeBuild(source);
    const recipesDir = await recipe(`#!/usr/bin/env bash\nset -e\n[ "$1" = --out ] || exit 9\ncp ${source}/* "$2"/\n`);
    const imported = await buildImage({ home, recipe: 'debian', recipesDir, facts, catalog: catalogFor(server.url('/rel/')) });
    assert.equal(imported.name, 'debian-12');
    assert.equal(imported.files.qcow2?.sha256, sha256(DISK));
    assert.deepEqual(await readdir(join(homePaths(home).imageCache, '.staging')), [], 'the build directory is removed');
  });

  test('a failing recipe is IMAGE_BUILD_FAILED with the last line of its output', async () => {
    const home = await tempHome();
    const recipesDir = await recipe('#!/usr/bin/env bash\necho "build.sh: error: mmdebstrap failed" >&2\nexit 1\n');
    const e = await rejectsWith(buildImage({ home, recipe: 'debian', recipesDir, facts, catalog: catalogFor(server.url('/rel/')) }), 'IMAGE_BUILD_FAILED');
    assert.match(e.message, /mmdebstrap failed/);
  });

  test('photon: no Docker daemon, or the recipe\'s own prerequisite exit codes, are IMAGE_BUILD_UNAVAILABLE', async () => {
    const home = await tempHome();
    const catalog = catalogFor(server.url('/rel/'));
    const offlineRecipe = await recipe('#!/usr/bin/env bash\necho "build.sh: cannot reach the Photon OS download host at https://packages.broadcom.com/photon/" >&2\nexit 6\n', 'photon');
    const noDaemon = await rejectsWith(buildImage({ home, recipe: 'photon', recipesDir: offlineRecipe, facts, catalog, env: await fakeDocker(1) }), 'IMAGE_BUILD_UNAVAILABLE');
    assert.match(noDaemon.message, /Docker daemon does not answer/);
    const unreachable = await rejectsWith(buildImage({ home, recipe: 'photon', recipesDir: offlineRecipe, facts, catalog, env: await fakeDocker(0) }), 'IMAGE_BUILD_UNAVAILABLE');
    assert.match(unreachable.message, /cannot reach the Photon OS download host/);
    const broken = await recipe('#!/usr/bin/env bash\necho "build.sh: photon-os-installer failed" >&2\nexit 8\n', 'photon');
    await rejectsWith(buildImage({ home, recipe: 'photon', recipesDir: broken, facts, catalog, env: await fakeDocker(0) }), 'IMAGE_BUILD_FAILED');
  });

  test('debian needs root; photon is refused offline', async () => {
    const home = await tempHome();
    const catalog = catalogFor(server.url('/rel/'));
    await rejectsWith(buildImage({ home, recipe: 'debian', facts: { ...facts, uid: 1000 }, catalog }), 'HOST_NEEDS_ROOT');
    await rejectsWith(buildImage({ home, recipe: 'debian', facts: { ...facts, platform: 'darwin' }, catalog }), 'IMAGE_BUILD_UNAVAILABLE');
    await rejectsWith(buildImage({ home, recipe: 'photon', facts: { ...facts, offline: true }, catalog }), 'IMAGE_BUILD_UNAVAILABLE');
    await rejectsWith(buildImage({ home, recipe: 'tiny2', facts, catalog }), 'IMAGE_RECIPE_UNKNOWN');
  });
});

describe('image commands', { skip: QEMU_IMG_MISSING }, () => {
  let home: string;
  let diskSha: string;
  const env = { DEVCLUSTER_HOST_CPUS: '4', DEVCLUSTER_HOST_MEMORY_MIB: '16384' };

  before(async () => {
    home = await tempHome();
    const imported = await importBuiltImage(await writeBuild(join(home, 'build')), { home, recipe: 'debian' });
    diskSha = imported.files.qcow2?.sha256 ?? '';
    await ImageCache.forHome(home).importFile(await (async () => {
      const f = join(home, 'spare.raw');
      await writeFile(f, testBytes(8192, 5));
      return f;
    })());
    await mkdir(join(home, 'profiles', 'dev'), { recursive: true });
    // What the lifecycle records (imageStateRecord): the disk, kernel and initrd digests.
    await writeFile(join(home, 'profiles', 'dev', 'state.json'), JSON.stringify({
      profile: 'dev',
      image: { name: 'debian-12', origin: 'build', sha256: diskSha, format: 'qcow2', kernel: { sha256: sha256(KERNEL) }, initrd: { sha256: sha256(INITRD) } },
    }));
  });

  test('image list -o json shows names, versions, formats, digests and users', async () => {
    const r = await runCli(['image', 'list', '-o', 'json'], { home, env });
    assert.equal(r.code, 0, r.stderr);
    const doc = JSON.parse(r.stdout) as { images: Array<{ name: string; version: string | null; format: string | null; sha256: string; usedBy: string[]; size: number }> };
    const debian = doc.images.filter((i) => i.name === 'debian-12');
    assert.deepEqual(debian.map((i) => i.format), ['qcow2', 'kernel', 'initrd']);
    assert.deepEqual(debian.find((i) => i.format === 'qcow2')?.usedBy, ['dev']);
    assert.equal(debian.find((i) => i.format === 'qcow2')?.size, DISK.length);
    assert.ok(doc.images.some((i) => i.name === 'spare.raw'));
    const text = await runCli(['image', 'list'], { home, env });
    assert.match(text.stdout, /NAME\s+VERSION\s+FORMAT\s+SIZE\s+LAST USED\s+SHA256/);
    assert.match(text.stdout, new RegExp(`debian-12\\s+12\\.8-20250101\\s+qcow2\\s+\\S+ KiB\\s+just now\\s+${diskSha.slice(0, 12)}\\s+dev`));
    assert.match(text.stdout, /photon-5 5\.0: devcluster image build photon \(not published yet\)/);
  });

  test('image prune keeps what profiles use (with its kernel and initrd), says why, and removes the rest', async () => {
    const dry = await runCli(['image', 'prune', '--dry-run'], { home, env });
    assert.equal(dry.code, 0, dry.stderr);
    assert.match(dry.stdout, /Would remove spare\.raw/);
    const r = await runCli(['image', 'prune'], { home, env });
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /Removed spare\.raw/);
    assert.match(r.stdout, new RegExp(`Kept debian-12-12\\.8-20250101\\.qcow2 \\(${diskSha.slice(0, 12)}\\): used by profile dev`));
    const left = (await ImageCache.forHome(home).list()).map((row) => row.sha256).sort();
    assert.deepEqual(left, [diskSha, sha256(KERNEL), sha256(INITRD)].sort());
  });

  test('image rm <digest> of a file a profile uses is refused and changes nothing', async () => {
    const before = await snapshotTree(join(home, 'cache'));
    const r = await runCli(['image', 'rm', diskSha.slice(0, 16)], { home, env });
    assert.equal(r.code, 16, r.stderr);
    assert.match(r.stderr, /IMAGE_IN_USE/);
    assert.match(r.stderr, /still used by name debian-12, profile dev/);
    assert.deepEqual(await snapshotTree(join(home, 'cache')), before);
  });

  test('image rm <name> a profile uses removes the name and keeps the files, saying why', async () => {
    const before = await snapshotTree(join(home, 'cache'));
    const r = await runCli(['image', 'rm', 'debian-12'], { home, env });
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /Removed the name debian-12 12\.8-20250101/);
    assert.match(r.stdout, new RegExp(`Kept debian-12-12\\.8-20250101\\.qcow2 \\(${diskSha.slice(0, 12)}\\): still used by profile dev`));
    assert.match(r.stdout, /Removed debian-12 12\.8-20250101 \(0 files, 0 B; kept 3 in use\)/);
    assert.equal(await ImageCache.forHome(home).namedImage('debian-12'), undefined);
    const after = await snapshotTree(join(home, 'cache'));
    delete before['/images/index.json'];
    delete after['/images/index.json'];
    assert.deepEqual(after, before, 'every file is still there, byte for byte');
    const list = JSON.parse((await runCli(['image', 'list', '-o', 'json'], { home, env })).stdout) as { images: Array<{ name: string; sha256: string; usedBy: string[] }> };
    assert.ok(!list.images.some((i) => i.name === 'debian-12'), 'the name is no longer listed');
    assert.deepEqual(list.images.find((i) => i.sha256 === diskSha)?.usedBy, ['dev']);
  });

  test('once the profile is gone, its files can be removed by file name', async () => {
    await rm(join(home, 'profiles', 'dev'), { recursive: true });
    const r = await runCli(['image', 'rm', 'debian-12-12.8-20250101.qcow2'], { home, env });
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /Removed debian-12-12\.8-20250101\.qcow2 \(1 file/);
    assert.ok(!(await ImageCache.forHome(home).list()).some((row) => row.sha256 === diskSha));
  });

  test('image pull photon-5 explains that it is not published', async () => {
    const r = await runCli(['image', 'pull', 'photon-5'], { home, env });
    assert.equal(r.code, 44);
    assert.match(r.stderr, /IMAGE_NOT_PUBLISHED/);
    assert.match(r.stderr, /devcluster image build photon/);
  });

  test('image build photon without Docker is IMAGE_BUILD_UNAVAILABLE', async () => {
    const emptyPath = await tempDir('devcluster-nopath-');
    const r = await runCli(['image', 'build', 'photon'], { home, env: { ...env, PATH: emptyPath } });
    assert.equal(r.code, 38, r.stderr);
    assert.match(r.stderr, /IMAGE_BUILD_UNAVAILABLE/);
  });

  test('usage errors: unknown recipe, a path given to pull, an unknown name to rm', async () => {
    const recipe = await runCli(['image', 'build', 'gentoo'], { home, env });
    assert.equal(recipe.code, 2);
    assert.match(recipe.stderr, /IMAGE_RECIPE_UNKNOWN/);
    const pull = await runCli(['image', 'pull', '/tmp/disk.qcow2'], { home, env });
    assert.equal(pull.code, 2);
    assert.match(pull.stderr, /USAGE_INVALID_ARGUMENT/);
    const rm = await runCli(['image', 'rm', 'no-such-image'], { home, env });
    assert.equal(rm.code, 2);
    assert.match(rm.stderr, /IMAGE_UNKNOWN/);
  });
});
