import { readdir, rm, rmdir } from 'node:fs/promises';
import { join } from 'node:path';
import { loadDriver } from '../../drivers/index.ts';
import { listProfiles } from '../profile/profiles.ts';
import { homePaths } from '../profile/paths.ts';
import { openProfile } from './profile-context.ts';
import type { LifecycleOptions } from './profile-context.ts';

export interface DeleteResult {
  profile: string;
  existed: boolean;
  removed: string[];
}

/**
 * Removes exactly what the profile's state says devcluster created (the VM,
 * its disk, network objects), then the profile directory. A profile without
 * state (config only) is just its directory.
 */
export async function deleteProfile(options: LifecycleOptions): Promise<DeleteResult> {
  const p = await openProfile(options, true, { mustExist: true });
  const removed: string[] = [];
  const existed = p.state.state !== undefined;
  try {
    const s = p.state.state;
    if (s !== undefined) {
      await p.state.update((x) => {
        x.status = 'Deleting';
      });
      for (const r of s.resources) removed.push(`${r.kind} ${r.id}`);
      const driver = await loadDriver(s.driver);
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
  return { profile: p.name, existed, removed };
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
