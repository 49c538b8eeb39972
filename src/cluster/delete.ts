import { readdir, rm, rmdir } from 'node:fs/promises';
import { join } from 'node:path';
import { listProfiles } from '../profile/profiles.ts';
import { homePaths } from '../profile/paths.ts';
import { openProfile } from './profile-context.ts';
import type { LifecycleOptions, OpenProfile } from './profile-context.ts';

export interface DeleteResult {
  profile: string;
  existed: boolean;
  removed: string[];
  /** What delete could not prove was this profile's, and left alone. */
  unverified?: string[];
}

/**
 * Removes exactly what the profile's state says devcluster created (the VM,
 * its disk, network objects), then the profile directory. A profile without
 * state (config only) is just its directory. A damaged state never makes a
 * profile undeletable: the driver then removes what it can prove from its
 * own files and the shared registries.
 */
export async function deleteProfile(options: LifecycleOptions): Promise<DeleteResult> {
  const p = await openProfile(options, true, { mustExist: true, tolerateDamagedState: true });
  const removed: string[] = [];
  const unverified: string[] = [];
  const existed = p.state.state !== undefined || p.stateDamage !== undefined;
  try {
    if (p.stateDamage !== undefined) await deleteFromDamagedState(p, options, removed, unverified);
    else if (p.state.state !== undefined) {
      const s = p.state.state;
      await p.state.update((x) => {
        x.status = 'Deleting';
      });
      for (const r of s.resources) removed.push(`${r.kind} ${r.id}`);
      const driver = await p.registry.loadForProfile(s.driver);
      await driver.delete(p.driverContext());
    }
    // Everything but the lock goes while the lock is held, so a command
    // waiting for it never finds its own files removed afterwards.
    for (const entry of await readdir(p.paths.dir)) {
      if (join(p.paths.dir, entry) !== p.paths.lock) await rm(join(p.paths.dir, entry), { recursive: true, force: true });
    }
  } finally {
    await p.release();
  }
  await rmdir(p.paths.dir).catch(() => undefined);
  return { profile: p.name, existed, removed, ...(unverified.length === 0 ? {} : { unverified }) };
}

async function deleteFromDamagedState(p: OpenProfile, options: LifecycleOptions, removed: string[], unverified: string[]): Promise<void> {
  options.out.warn(`${p.stateDamage?.message ?? 'the state is damaged'}; removing what can be proved to be this profile's`);
  const preferred = p.registry.preferred(process.platform).map((d) => d.name);
  const recovered = p.state.recover(p.name, preferred[0] ?? 'qemu');
  const candidates = [recovered.driver, ...preferred.filter((n) => n !== recovered.driver)];
  for (const name of candidates) {
    try {
      const driver = await p.registry.loadForProfile(name);
      await driver.delete(p.driverContext());
      removed.push(`${name}: the VM, disk and network objects found from the profile's files and registries`);
    } catch (e) {
      unverified.push(`${name}: ${e instanceof Error ? e.message : String(e)}`);
    }
  }
  if (unverified.length > 0) options.out.warn(`could not verify: ${unverified.join('; ')}`);
}

export async function deleteAll(options: LifecycleOptions, purge: boolean): Promise<DeleteResult[]> {
  const results: DeleteResult[] = [];
  for (const profile of await listProfiles(options.home)) {
    results.push(await deleteProfile({ ...options, profileFlag: profile.name }));
  }
  if (purge) {
    // Only what devcluster keeps there: a home shared with other files keeps them.
    const paths = homePaths(options.home);
    const ours = [paths.profiles, join(paths.home, 'cache'), paths.bin, paths.logs, join(paths.home, 'network'), paths.globalConfig, `${paths.globalConfig}.lock`];
    for (const path of ours) await rm(path, { recursive: true, force: true });
    await rmdir(paths.home).catch(() => undefined);
    results.push({ profile: '(purge)', existed: true, removed: ours });
  }
  return results;
}
