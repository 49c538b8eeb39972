// Runs the benchmarks one after another (never in parallel: they share two
// cores) and prints each one's JSON line. `npm run bench -- cli-startup seed-iso`
// runs only those. Figures go into docs/benchmarks.md by hand, with the date
// and machine they were measured on.
import { spawnSync } from 'node:child_process';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const ALL = ['cli-startup', 'seed-iso', 'download', 'qemu-start', 'kube-start', 'bundle-build'];
const chosen = process.argv.slice(2).length > 0 ? process.argv.slice(2) : ALL;
let failed = 0;
for (const name of chosen) {
  if (!ALL.includes(name)) {
    console.error(`unknown benchmark ${name}; known: ${ALL.join(', ')}`);
    process.exit(2);
  }
  console.error(`--- ${name}`);
  const r = spawnSync(process.execPath, [join(here, `${name}.ts`)], { stdio: 'inherit' });
  if (r.status !== 0) failed += 1;
}
process.exit(failed === 0 ? 0 : 1);
