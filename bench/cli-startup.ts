// Measures devcluster's start-up cost against a bare `node -e 0` on the same
// Node: `--version` and `profile list` on an empty home, median of N runs.
// Runs the built CLI (dist/), as users do: `npm run build` first.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { median } from './stats.ts';

const repo = join(dirname(fileURLToPath(import.meta.url)), '..');
const cli = join(repo, 'dist', 'src', 'cli', 'main.js');
if (!existsSync(cli)) {
  console.error('dist/ is missing: run `npm run build` first');
  process.exit(2);
}
const runs = Number(process.env['BENCH_RUNS'] ?? 15);
const home = mkdtempSync(join(tmpdir(), 'devcluster-bench-'));

function time(args: string[]): number {
  const samples: number[] = [];
  spawnSync(process.execPath, args, { env: { ...process.env, DEVCLUSTER_HOME: home } }); // warm the page cache
  for (let i = 0; i < runs; i += 1) {
    const start = process.hrtime.bigint();
    const r = spawnSync(process.execPath, args, { env: { ...process.env, DEVCLUSTER_HOME: home }, stdio: 'ignore' });
    const ms = Number(process.hrtime.bigint() - start) / 1e6;
    if (r.status !== 0) throw new Error(`${args.join(' ')} exited ${r.status}`);
    samples.push(ms);
  }
  return median(samples);
}

const baseline = time(['-e', '0']);
const version = time([cli, '--version']);
const profileList = time([cli, 'profile', 'list']);
const result = {
  name: 'cli-startup',
  node: process.version,
  runs,
  nodeBaselineMs: Math.round(baseline * 10) / 10,
  versionMs: Math.round(version * 10) / 10,
  versionOverheadMs: Math.round((version - baseline) * 10) / 10,
  versionTargetMs: 60,
  profileListMs: Math.round(profileList * 10) / 10,
  profileListOverheadMs: Math.round((profileList - baseline) * 10) / 10,
  profileListTargetMs: 120,
};
console.log(JSON.stringify(result));
