// Time to SSH-ready: `devcluster start --no-kubernetes` (image cached) against
// a plain QEMU command line booting the same image with the same seed, waited
// for with the same readiness check; then a warm start (stopped -> SSH ready).
// Needs an image imported into BENCH_HOME (default: the e2e home), root not
// required. Software emulation (TCG) unless BENCH_ACCEL says otherwise.
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { buildQemuArgs } from '../drivers/qemu/command-line.ts';
import { freePort } from '../src/host/ports.ts';
import { ImageCache } from '../src/image/cache.ts';
import { resolveImage } from '../src/image/resolve.ts';
import { writeSeedIso } from '../src/seed/seed.ts';
import { ensureProfileKeys } from '../src/ssh/keys.ts';
import { waitForSsh } from '../src/ssh/readiness.ts';
import { median } from './stats.ts';

const repo = join(dirname(fileURLToPath(import.meta.url)), '..');
const cli = join(repo, 'src', 'cli', 'main.ts');
const home = process.env['BENCH_HOME'] ?? '/var/cache/devcluster-test/e2e-home';
const runs = Number(process.env['BENCH_RUNS'] ?? 4);
const accel = (process.env['BENCH_ACCEL'] ?? 'tcg') as 'tcg' | 'kvm';
const MARKER = '/var/lib/devcluster/ready';
const TIMEOUTS = { banner: 600_000, command: 180_000, marker: 600_000 };

function cliRun(args: string[]): number {
  const started = performance.now();
  const r = spawnSync(process.execPath, [cli, ...args], { env: { ...process.env, DEVCLUSTER_HOME: home, CI: 'true' }, stdio: ['ignore', 'ignore', 'inherit'] });
  if (r.status !== 0) throw new Error(`devcluster ${args.join(' ')} exited ${r.status}`);
  return performance.now() - started;
}

const FLAGS = ['--no-kubernetes', '--driver=qemu', '--image=debian-12', `--qemu-accel=${accel}`, '--cpus=2', '--memory=2g', '--disk-size=6g'];

async function plainQemu(): Promise<number> {
  const image = await resolveImage({ home, image: 'debian-12', formats: ['qcow2'], offline: true });
  const dir = mkdtempSync(join(tmpdir(), 'devcluster-bench-plain-'));
  try {
    const keys = await ensureProfileKeys(join(dir, 'keys'));
    const mac = '52:54:00:12:34:99';
    await writeSeedIso(join(dir, 'seed.iso'), {
      instanceId: `bench-${Date.now()}`,
      hostname: 'bench',
      authorizedKeys: [keys.clientPublicKey],
      hostKey: { privateKey: keys.hostPrivateKey, publicKey: keys.hostPublicKey },
      network: { mode: 'dhcp', mac },
      readinessMarker: MARKER,
    });
    spawnSync('qemu-img', ['create', '-q', '-f', 'qcow2', '-F', 'qcow2', '-b', image.disk.path, join(dir, 'disk.qcow2'), String(6 * 1024 ** 3)]);
    const sshPort = await freePort();
    const args = buildQemuArgs({
      name: 'bench', arch: 'x86_64', accel, cpus: 2, memoryMiB: 2048,
      disk: join(dir, 'disk.qcow2'), seedIso: join(dir, 'seed.iso'),
      ...(image.kernel === undefined ? {} : { kernel: image.kernel.path }),
      ...(image.initrd === undefined ? {} : { initrd: image.initrd.path }),
      ...(image.kernelCmdline === undefined ? {} : { append: image.kernelCmdline }),
      mac, netdev: { kind: 'user', bindAddress: '127.0.0.1', forwards: [{ hostPort: sshPort, guestPort: 22 }] },
      qmp: { path: join(dir, 'qmp.sock') }, pidFile: join(dir, 'qemu.pid'), serialLog: join(dir, 'serial.log'),
    });
    const started = performance.now();
    const qemu = spawn('qemu-system-x86_64', args, { stdio: 'ignore' });
    try {
      await waitForSsh({ host: '127.0.0.1', port: sshPort, username: 'devcluster', privateKeyPath: keys.clientPrivateKeyPath, expectedHostKey: keys.hostPublicKey, marker: MARKER, timeouts: TIMEOUTS });
      return performance.now() - started;
    } finally {
      qemu.kill('SIGKILL');
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

if ((await ImageCache.forHome(home).list()).every((r) => r.name !== 'debian-12')) {
  console.error(`no debian-12 image in ${home}: run \`DEVCLUSTER_HOME=${home} devcluster image build debian\` first`);
  process.exit(2);
}
const cold: number[] = [];
const warm: number[] = [];
const plain: number[] = [];
async function devclusterRound(i: number): Promise<void> {
  const profile = `bench-${i}`;
  cliRun(['delete', '-p', profile]);
  cold.push(cliRun(['start', '-p', profile, ...FLAGS]));
  cliRun(['stop', '-p', profile]);
  warm.push(cliRun(['start', '-p', profile, ...FLAGS]));
  cliRun(['delete', '-p', profile]);
}
// One untimed boot first, so neither side pays for a cold page cache; then
// the order alternates, so neither side always boots on a warmer machine.
await plainQemu();
for (let i = 0; i < runs; i += 1) {
  if (i % 2 === 0) {
    await devclusterRound(i);
    plain.push(await plainQemu());
  } else {
    plain.push(await plainQemu());
    await devclusterRound(i);
  }
}
const result = {
  name: 'qemu-start',
  accel,
  runs,
  devclusterColdMs: Math.round(median(cold)),
  plainQemuMs: Math.round(median(plain)),
  ratio: Math.round((median(cold) / median(plain)) * 1000) / 1000,
  ratioTarget: 1.05,
  devclusterWarmMs: Math.round(median(warm)),
  samples: { cold: cold.map(Math.round), plain: plain.map(Math.round), warm: warm.map(Math.round) },
};
console.log(JSON.stringify(result));
