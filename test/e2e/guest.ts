// Shared set-up for the e2e tests: a persistent devcluster home outside the
// repo (the Debian guest image is built into it once per machine, with
// `devcluster image build debian`, and reused by later runs).
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, readFile, readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { runCli } from '../helpers/cli.ts';
import type { CliResult } from '../helpers/cli.ts';
import { skipUnlessPresent } from '../helpers/prerequisite.ts';

export const E2E_HOME = process.env['DEVCLUSTER_E2E_HOME'] ?? '/var/cache/devcluster-test/e2e-home';

/** Every e2e VM is small and forced onto TCG: nested KVM fails on our CI machines. */
export const VM_FLAGS = ['--no-kubernetes', '--driver=qemu', '--image=debian-12', '--qemu-accel=tcg', '--cpus=2', '--memory=2g', '--disk-size=6g'];

export function e2e(args: string[], env: Record<string, string | undefined> = {}): Promise<CliResult> {
  return runCli(args, { home: E2E_HOME, env: { CI: 'true', ...env } });
}

const RECIPE_DIR = join(import.meta.dirname, '..', '..', 'images', 'debian');
const RECIPE_STAMP = join(E2E_HOME, 'debian-recipe.sha256');

/** The cached image is as good as the recipe it was built from: a changed recipe rebuilds it. */
async function recipeDigest(dir = RECIPE_DIR, hash = createHash('sha256')): Promise<string> {
  for (const d of (await readdir(dir, { withFileTypes: true })).sort((a, b) => a.name.localeCompare(b.name))) {
    const full = join(dir, d.name);
    hash.update(`${d.name}\0`);
    if (d.isDirectory()) await recipeDigest(full, hash);
    else hash.update(await readFile(full));
  }
  return dir === RECIPE_DIR ? hash.digest('hex') : '';
}

export async function ensureDebianImage(): Promise<void> {
  await mkdir(E2E_HOME, { recursive: true });
  const digest = await recipeDigest();
  const stamp = await readFile(RECIPE_STAMP, 'utf8').catch(() => '');
  const list = await e2e(['image', 'list', '-o', 'json']);
  const doc = JSON.parse(list.stdout) as { images: Array<{ name: string }> };
  const cached = doc.images.some((i) => i.name === 'debian-12');
  if (cached && stamp.trim() === digest) return;
  if (cached) {
    process.stderr.write('the Debian recipe changed since the cached image was built; rebuilding it\n');
    const removed = await e2e(['image', 'rm', 'debian-12', '--force']);
    if (removed.code !== 0) throw new Error(`devcluster image rm debian-12 failed (${removed.code}):\n${removed.stdout}\n${removed.stderr}`);
  }
  process.stderr.write(`building the Debian guest image into ${E2E_HOME} (once per recipe)...\n`);
  const built = await e2e(['image', 'build', 'debian']);
  if (built.code !== 0) throw new Error(`devcluster image build debian failed (${built.code}):\n${built.stdout}\n${built.stderr}`);
  await writeFile(RECIPE_STAMP, `${digest}\n`);
}

/** The e2e suite's prerequisites: a skip reason off CI; under CI a missing one throws. */
export function requireRootAndQemu(): string | false {
  if (process.getuid?.() !== 0) return skipUnlessPresent('needs root (building the Debian image with mmdebstrap)');
  if (!existsSync('/usr/bin/qemu-system-x86_64')) return skipUnlessPresent('needs qemu-system-x86_64');
  return false;
}
