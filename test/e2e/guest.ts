// Shared set-up for the e2e tests: a persistent devcluster home outside the
// repo (the Debian guest image is built into it once per machine, with
// `devcluster image build debian`, and reused by later runs).
import { existsSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { runCli } from '../helpers/cli.ts';
import type { CliResult } from '../helpers/cli.ts';
import { skipUnlessPresent } from '../helpers/prerequisite.ts';

export const E2E_HOME = process.env['DEVCLUSTER_E2E_HOME'] ?? '/var/cache/devcluster-test/e2e-home';

/** Every e2e VM is small and forced onto TCG: nested KVM fails on our CI machines. */
export const VM_FLAGS = ['--no-kubernetes', '--driver=qemu', '--image=debian-12', '--qemu-accel=tcg', '--cpus=2', '--memory=2g', '--disk-size=6g'];

export function e2e(args: string[], env: Record<string, string | undefined> = {}): Promise<CliResult> {
  return runCli(args, { home: E2E_HOME, env: { CI: 'true', ...env } });
}

export async function ensureDebianImage(): Promise<void> {
  await mkdir(E2E_HOME, { recursive: true });
  const list = await e2e(['image', 'list', '-o', 'json']);
  const doc = JSON.parse(list.stdout) as { images: Array<{ name: string }> };
  if (doc.images.some((i) => i.name === 'debian-12')) return;
  process.stderr.write(`building the Debian guest image into ${E2E_HOME} (once per machine)...\n`);
  const built = await e2e(['image', 'build', 'debian']);
  if (built.code !== 0) throw new Error(`devcluster image build debian failed (${built.code}):\n${built.stdout}\n${built.stderr}`);
}

/** The e2e suite's prerequisites: a skip reason off CI; under CI a missing one throws. */
export function requireRootAndQemu(): string | false {
  if (process.getuid?.() !== 0) return skipUnlessPresent('needs root (building the Debian image with mmdebstrap)');
  if (!existsSync('/usr/bin/qemu-system-x86_64')) return skipUnlessPresent('needs qemu-system-x86_64');
  return false;
}
