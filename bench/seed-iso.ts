// Time to render and build a cloud-init seed ISO in memory (validation,
// three YAML documents, the ISO9660 image): median of N builds.
// Run: node bench/seed-iso.ts   (BENCH_RUNS overrides N, default 200)
import { buildSeedIso } from '../src/seed/seed.ts';
import type { SeedSpec } from '../src/seed/seed.ts';
import { HOST_PRIVATE, HOST_PUBLIC, OTHER_PUBLIC } from '../test/helpers/seed-keys.ts';
import { median } from './stats.ts';

const runs = Number(process.env['BENCH_RUNS'] ?? 200);

const spec: SeedSpec = {
  instanceId: 'iid-devcluster-bench',
  hostname: 'devcluster',
  authorizedKeys: [OTHER_PUBLIC],
  hostKey: { privateKey: HOST_PRIVATE, publicKey: HOST_PUBLIC },
  network: { mode: 'static', mac: '52:54:00:12:34:56', address: '192.168.211.10/24', gateway: '192.168.211.1', dns: ['192.168.211.1'] },
  readinessMarker: '/var/lib/devcluster/ready',
  extraRunCommands: [
    ['systemctl', 'enable', '--now', 'containerd'],
    ['modprobe', 'br_netfilter'],
  ],
  proxy: { http: 'http://proxy.example:3128', noProxy: 'localhost,127.0.0.1,10.96.0.0/12' },
};

let bytes = 0;
for (let i = 0; i < 20; i += 1) bytes = buildSeedIso(spec).length; // warm up the JIT
const samples: number[] = [];
for (let i = 0; i < runs; i += 1) {
  const start = process.hrtime.bigint();
  bytes = buildSeedIso(spec).length;
  samples.push(Number(process.hrtime.bigint() - start) / 1e6);
}
console.log(JSON.stringify({ name: 'seed-iso', medianMs: Math.round(median(samples) * 1000) / 1000, runs, isoBytes: bytes }));
