import { readdir, rm } from 'node:fs/promises';
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
  const p = await openProfile(options, true);
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
  } finally {
    await p.release();
  }
  // Files the pipeline wrote (seed ISO, keys, logs) go with the directory.
  await rm(p.paths.dir, { recursive: true, force: true });
  return { profile: p.name, existed, removed };
}

export async function deleteAll(options: LifecycleOptions, purge: boolean): Promise<DeleteResult[]> {
  const results: DeleteResult[] = [];
  for (const profile of await listProfiles(options.home)) {
    results.push(await deleteProfile({ ...options, profileFlag: profile.name }));
  }
  if (purge) {
    const home = homePaths(options.home).home;
    const left = await readdir(home).catch(() => [] as string[]);
    await rm(home, { recursive: true, force: true });
    results.push({ profile: '(purge)', existed: left.length > 0, removed: [home] });
  }
  return results;
}
