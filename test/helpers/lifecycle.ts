/**
 * Shared set-up for the lifecycle tests over the fake driver: a temp home
 * with a small real qcow2 imported into the image cache, lifecycle options
 * with a quiet (but recorded) output, and the "what is left" inspection
 * that delete must bring to nothing.
 */
import { createHash } from 'node:crypto';
import { readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { importBuiltImage } from '../../src/image/built.ts';
import { Output } from '../../src/ui/output.ts';
import { profilePaths } from '../../src/profile/paths.ts';
import type { LifecycleOptions } from '../../src/cluster/profile-context.ts';
import type { StartOptions } from '../../src/cluster/start.ts';
import { tempDir } from './cli.ts';
import { cleanQcow2 } from './disk-images.ts';
import { fakeRegistry } from './fake-driver.ts';
import type { FakeDriver } from './fake-driver.ts';
import { killVmProcess, readRegistry, vmProcessAlive } from './fake-hypervisor.ts';

export const IMAGE = 'fake-guest';
export const PROFILE = 'lab';

/** A home whose image cache holds IMAGE: a 64 MiB (virtual) qcow2 made by qemu-img. */
export async function homeWithImage(): Promise<string> {
  const home = await tempDir('devcluster-life-');
  const build = await tempDir('devcluster-life-image-');
  const disk = await cleanQcow2(build, 'fake-guest.qcow2', '64M');
  const bytes = await readFile(disk);
  const manifest = {
    name: IMAGE,
    version: '1',
    formats: { qcow2: { file: 'fake-guest.qcow2', sha256: createHash('sha256').update(bytes).digest('hex'), size: bytes.length } },
  };
  await writeFile(join(build, 'manifest.json'), JSON.stringify(manifest));
  await importBuiltImage(join(build, 'manifest.json'), { home, recipe: 'fake' });
  await rm(build, { recursive: true, force: true });
  homes.push(home);
  return home;
}

const homes: string[] = [];

/** For after(): ends every fake VM a test left running (a failed assertion skips its delete) and removes the homes. */
export async function removeHomes(): Promise<void> {
  for (const home of homes.splice(0)) {
    for (const vm of Object.values((await readRegistry(home)).vms)) await killVmProcess(home, vm, 'test cleanup');
    await rm(home, { recursive: true, force: true });
  }
}

export interface Captured {
  text(): string;
}

export function quietOutput(): { out: Output; captured: Captured } {
  let text = '';
  const sink = { write: (s: string) => ((text += s), true), isTTY: false };
  return { out: new Output({ stdout: sink, stderr: sink, env: { NO_COLOR: '1', LANG: 'C.UTF-8' } }), captured: { text: () => text } };
}

export interface OptionsInput {
  profile?: string;
  flags?: Record<string, string | undefined>;
  command?: string;
  signal?: AbortSignal;
}

export function lifecycleOptions(home: string, driver: FakeDriver, o: OptionsInput = {}): LifecycleOptions & { captured: Captured } {
  const { out, captured } = quietOutput();
  return {
    home,
    profileFlag: o.profile ?? PROFILE,
    flags: { image: IMAGE, ...o.flags },
    out,
    signal: o.signal ?? new AbortController().signal,
    waitLock: false,
    command: o.command ?? 'test',
    registry: fakeRegistry(driver),
    captured,
  };
}

/** Start options that keep the waits short: the VM watch polls every 20 ms. */
export function startOptions(home: string, driver: FakeDriver, o: OptionsInput & { kubernetes?: boolean | undefined; marker?: number } = {}): StartOptions & { captured: Captured } {
  return {
    ...lifecycleOptions(home, driver, { command: 'start', ...o }),
    kubernetes: 'kubernetes' in o ? o.kubernetes : false,
    sshTimeouts: { banner: 20_000, command: 20_000, marker: o.marker ?? 20_000 },
    vmPollMs: 20,
  };
}

/** Every file under a directory whose name ends with one of the suffixes (staging files). */
export async function filesEndingWith(root: string, suffixes: readonly string[]): Promise<string[]> {
  const found: string[] = [];
  const walk = async (dir: string): Promise<void> => {
    for (const e of await readdir(dir, { withFileTypes: true }).catch(() => [])) {
      const p = join(dir, e.name);
      if (e.isDirectory()) await walk(p);
      else if (suffixes.some((s) => e.name.endsWith(s))) found.push(p);
    }
  };
  await walk(root);
  return found.sort();
}

/** Live processes whose command line names `needle` (the guest's sshd names its guest directory under the home). */
export async function processesNaming(needle: string): Promise<number[]> {
  const pids: number[] = [];
  for (const entry of await readdir('/proc')) {
    if (!/^\d+$/.test(entry) || Number(entry) === process.pid) continue;
    const cmdline = await readFile(`/proc/${entry}/cmdline`, 'utf8').catch(() => '');
    const st = await readFile(`/proc/${entry}/stat`, 'utf8').catch(() => '');
    if (cmdline.includes(needle) && !/\) Z /.test(st)) pids.push(Number(entry));
  }
  return pids;
}

export interface Leftovers {
  profileDir: boolean;
  vms: string[];
  liveVmProcesses: number[];
  switches: string[];
  staging: string[];
  locks: string[];
}

/** What a profile left behind in the home and on the "host"; delete must make every field empty. */
export async function leftovers(home: string, profile = PROFILE): Promise<Leftovers> {
  const dir = profilePaths(home, profile).dir;
  const registry = await readRegistry(home);
  return {
    profileDir: await stat(dir).then(() => true, () => false),
    vms: Object.values(registry.vms).filter((v) => v.profileDir === dir).map((v) => v.name),
    liveVmProcesses: [
      ...Object.values(registry.vms).filter((v) => v.profileDir === dir && vmProcessAlive(v)).map((v) => v.pid as number),
      ...(await processesNaming(join(home, 'fake-hypervisor', 'guests', `devcluster-${profile}`))),
    ],
    switches: Object.entries(registry.switches).filter(([, s]) => s.users.includes(dir)).map(([n]) => n),
    staging: await filesEndingWith(home, ['.tmp', '.creating', '.partial', '.takeover', '.stale']),
    locks: (await filesEndingWith(join(home, 'profiles'), ['lock.json'])).filter((p) => p.startsWith(dir)),
  };
}

export const NOTHING: Leftovers = { profileDir: false, vms: [], liveVmProcesses: [], switches: [], staging: [], locks: [] };
