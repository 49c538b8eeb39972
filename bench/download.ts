// Throughput of devcluster's verified downloader against curl on the same
// 1 GiB file served from 127.0.0.1: median of 3 runs each, both writing to a
// file in the same temporary directory. devcluster's time includes computing
// sha256, fsync before the rename and the rename into place; curl only writes.
// The server runs in its own process so it does not share an event loop with
// the downloader. MB is 10^6 bytes.
// Run: node bench/download.ts   (BENCH_SIZE_MIB and BENCH_RUNS override 1024 and 3)
import { createHash } from 'node:crypto';
import { execFile, spawn } from 'node:child_process';
import { mkdtemp, rm, stat } from 'node:fs/promises';
import http from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { once } from 'node:events';
import { download } from '../src/image/download.ts';
import { median } from './stats.ts';

const sizeMiB = Number(process.env['BENCH_SIZE_MIB'] ?? 1024);
const runs = Number(process.env['BENCH_RUNS'] ?? 3);
const BLOCK = 4 * 1024 * 1024;
const total = sizeMiB * 1024 * 1024;

/** 4 MiB of seeded pseudo-random bytes, repeated: incompressible enough, cheap to serve. */
function block(): Buffer {
  const out = Buffer.alloc(BLOCK);
  let x = 0x9e3779b9;
  for (let i = 0; i < BLOCK; i += 4) {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    out.writeUInt32LE(x, i);
  }
  return out;
}

function serve(): void {
  const data = block();
  const server = http.createServer(async (_req, res) => {
    res.writeHead(200, { 'content-length': String(total), 'content-type': 'application/octet-stream', etag: '"bench"' });
    for (let sent = 0; sent < total; sent += BLOCK) {
      if (!res.write(data.subarray(0, Math.min(BLOCK, total - sent)))) await once(res, 'drain');
    }
    res.end();
  });
  server.listen(0, '127.0.0.1', () => {
    const address = server.address();
    process.stdout.write(`${typeof address === 'object' && address !== null ? address.port : 0}\n`);
  });
}

async function main(): Promise<void> {
  const child = spawn(process.execPath, [fileURLToPath(import.meta.url), '--serve'], { stdio: ['ignore', 'pipe', 'inherit'], env: { ...process.env, BENCH_SIZE_MIB: String(sizeMiB) } });
  const port = await new Promise<number>((resolve) => child.stdout.once('data', (d: Buffer) => resolve(Number(d.toString().trim()))));
  const url = `http://127.0.0.1:${port}/bench.img`;
  const hash = createHash('sha256');
  const data = block();
  for (let done = 0; done < total; done += BLOCK) hash.update(data.subarray(0, Math.min(BLOCK, total - done)));
  const sha256 = hash.digest('hex');
  const dir = await mkdtemp(join(tmpdir(), 'devcluster-bench-dl-'));
  const mbps = (seconds: number) => total / 1e6 / seconds;
  const ours: number[] = [];
  const curls: number[] = [];
  try {
    for (let i = 0; i < runs; i += 1) {
      const destination = join(dir, 'ours.img');
      let start = performance.now();
      await download({ url, sha256, destination, partPath: join(dir, 'ours.part'), env: {}, progressIntervalMs: 1000 });
      ours.push(mbps((performance.now() - start) / 1000));
      await rm(destination);

      const target = join(dir, 'curl.img');
      start = performance.now();
      await new Promise<void>((resolve, reject) => execFile('curl', ['-sS', '--noproxy', '*', '-o', target, url], (e) => (e === null ? resolve() : reject(e))));
      curls.push(mbps((performance.now() - start) / 1000));
      if ((await stat(target)).size !== total) throw new Error('curl wrote a short file');
      await rm(target);
    }
  } finally {
    child.kill();
    await rm(dir, { recursive: true, force: true });
  }
  const devclusterMBps = Math.round(median(ours));
  const curlMBps = Math.round(median(curls));
  console.log(JSON.stringify({ name: 'download', devclusterMBps, curlMBps, ratio: Math.round((median(ours) / median(curls)) * 100) / 100, sizeMiB, runs }));
}

if (process.argv.includes('--serve')) serve();
else await main();
