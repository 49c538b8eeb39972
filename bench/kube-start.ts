// Kubernetes start, cold and warm, with the guest image and the node bundle
// already cached: total and per step, split into the VM's boot, Kubernetes'
// own work (kubeadm init, the control plane coming up) and devcluster's share
// (everything else: the bundle medium, install and image import, certificates,
// kubeconfig). Then what the idle cluster uses in the guest. Needs root, QEMU, the debian-12
// image and the bundle in BENCH_HOME (default: the e2e home; `devcluster
// bundle import <dir>` puts one there). Software emulation unless BENCH_ACCEL.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';

const repo = join(dirname(fileURLToPath(import.meta.url)), '..');
const cli = join(repo, 'src', 'cli', 'main.ts');
const home = process.env['BENCH_HOME'] ?? '/var/cache/devcluster-test/e2e-home';
const accel = process.env['BENCH_ACCEL'] ?? 'tcg';
const profile = 'bench-kube';
const kubeconfigDir = mkdtempSync(join(tmpdir(), 'devcluster-bench-kube-'));
const env = { ...process.env, DEVCLUSTER_HOME: home, CI: 'true', KUBECONFIG: join(kubeconfigDir, 'config') };

interface Timing { title: string; ms: number; skipped?: string }

function cli$(args: string[]): string {
  const r = spawnSync(process.execPath, [cli, ...args], { env, encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 });
  if (r.status !== 0) throw new Error(`devcluster ${args.join(' ')} exited ${r.status}:\n${r.stdout}\n${r.stderr}`);
  return r.stdout;
}

/** The VM's boot, Kubernetes' own work, and devcluster's share of one start. */
function split(timings: Timing[], totalMs: number): Record<string, number> {
  const sum = (pred: (t: string) => boolean): number => timings.filter((t) => pred(t.title)).reduce((n, t) => n + t.ms, 0);
  const vm = sum((t) => t === 'Starting the VM' || t.startsWith('Waiting for the guest'));
  const kube = sum((t) => t === 'Starting Kubernetes' || t === 'Waiting for the cluster');
  return { totalMs, vmBootMs: vm, kubernetesMs: kube, devclusterMs: totalMs - vm - kube, devclusterShare: Math.round(((totalMs - vm - kube) / totalMs) * 1000) / 10 };
}

function start(extra: string[]): { timings: Timing[]; split: Record<string, number> } {
  const doc = JSON.parse(cli$(['start', '-p', profile, ...extra, '-o', 'json'])) as { timings: Timing[]; totalMs: number };
  return { timings: doc.timings, split: split(doc.timings, doc.totalMs) };
}

try {
  // A profile left by an interrupted run goes first; none is fine too.
  spawnSync(process.execPath, [cli, 'delete', '-p', profile], { env, stdio: 'ignore' });
  const cold = start(['--driver=qemu', '--image=debian-12', `--qemu-accel=${accel}`, '--cpus=2', '--memory=3g', '--disk-size=10g']);
  // Settle, then measure what the idle cluster takes.
  spawnSync('sleep', ['60']);
  const usage = cli$(['ssh', '-p', profile, '--', "free -m | awk '/^Mem:/ {print $3}'; df -m --output=used / | tail -n1; sudo du -sm /var/lib/containerd | cut -f1"]).trim().split('\n').map(Number);
  cli$(['stop', '-p', profile]);
  const warm = start([]);
  console.log(JSON.stringify({
    benchmark: 'kube-start',
    accel,
    cold,
    warm,
    idle: { memoryUsedMiB: usage[0], diskUsedMiB: usage[1], containerdMiB: usage[2] },
  }));
} finally {
  spawnSync(process.execPath, [cli, 'delete', '-p', profile], { env, stdio: 'ignore' });
  rmSync(kubeconfigDir, { recursive: true, force: true });
}
