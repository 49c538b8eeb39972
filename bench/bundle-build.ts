// The Kubernetes node bundle build (images/kubernetes/build.sh), warm: with
// Go's module and build caches of an earlier build (BENCH_GO_CACHE, default
// the one .ci/run fills). BENCH_BUNDLE_COLD=1 builds with empty caches in a
// temporary directory instead: most of an hour on two cores, and it needs the
// Go module proxy. Prints the wall time, each part's time as build.sh reports
// it, and the bundle's size. The bundle is written to a temporary directory
// and removed.
import { spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const repo = join(dirname(fileURLToPath(import.meta.url)), '..');
const version = process.env['BENCH_KUBE_VERSION'] ?? 'v1.37.2';
const cold = process.env['BENCH_BUNDLE_COLD'] === '1';
const scratch = mkdtempSync(join(tmpdir(), 'devcluster-bench-bundle-'));
const goCache = cold ? join(scratch, 'go') : (process.env['BENCH_GO_CACHE'] ?? '/var/cache/devcluster-test/go');

function sizeOf(path: string): number {
  const st = statSync(path);
  return st.isDirectory() ? readdirSync(path).reduce((n, name) => n + sizeOf(join(path, name)), 0) : st.size;
}

async function build(out: string): Promise<{ wallMs: number; parts: Record<string, number> }> {
  const started = performance.now();
  const child = spawn(join(repo, 'images/kubernetes/build.sh'), [version, out], { env: { ...process.env, DEVCLUSTER_GO_CACHE: goCache }, stdio: ['ignore', 'ignore', 'pipe'] });
  let log = '';
  child.stderr.on('data', (d: Buffer) => { log += d.toString(); });
  const code = await new Promise<number | null>((resolve) => child.once('close', resolve));
  if (code !== 0) throw new Error(`build.sh exited ${code}:\n${log.slice(-4000)}`);
  const parts: Record<string, number> = {};
  for (const m of log.matchAll(/^kube-bundle: == (\S+) done in (\d+)s$/gm)) parts[m[1] as string] = Number(m[2]);
  return { wallMs: Math.round(performance.now() - started), parts };
}

try {
  const out = join(scratch, 'bundle');
  const result = await build(out);
  console.log(JSON.stringify({ benchmark: 'bundle-build', version, caches: cold ? 'cold' : 'warm', goCache, ...result, bundleBytes: sizeOf(out) }));
} finally {
  rmSync(scratch, { recursive: true, force: true });
}
