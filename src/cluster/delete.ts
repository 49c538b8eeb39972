import { readdir, rm, rmdir } from 'node:fs/promises';
import { join } from 'node:path';
import { listProfiles } from '../profile/profiles.ts';
import { homePaths } from '../profile/paths.ts';
import { openProfile } from './profile-context.ts';
import type { LifecycleOptions, OpenProfile } from './profile-context.ts';
import { removeProfileEntries } from './kubeconfig-entries.ts';
import type { KubeconfigCleanup } from './kubeconfig-entries.ts';

export interface DeleteResult {
  profile: string;
  existed: boolean;
  removed: string[];
  /** What delete could not prove was this profile's, and left alone. */
  unverified?: string[];
  /** The profile's kubeconfig entries: removed, left alone (not devcluster's), or why none was touched. */
  kubeconfig?: KubeconfigCleanup;
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
  let kubeconfig: KubeconfigCleanup | undefined;
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
    // Before the files go: pki/ca.crt is how an entry is proved to be this profile's.
    kubeconfig = await forgetKubeconfigEntries(p, options);
    // Everything but the lock goes while the lock is held, so a command
    // waiting for it never finds its own files removed afterwards.
    for (const entry of await readdir(p.paths.dir)) {
      if (join(p.paths.dir, entry) !== p.paths.lock) await rm(join(p.paths.dir, entry), { recursive: true, force: true });
    }
  } finally {
    await p.release();
  }
  await rmdir(p.paths.dir).catch(() => undefined);
  const touched = kubeconfig !== undefined && (kubeconfig.removed.length > 0 || kubeconfig.leftAlone.length > 0 || kubeconfig.warning !== undefined);
  return { profile: p.name, existed, removed, ...(unverified.length === 0 ? {} : { unverified }), ...(touched ? { kubeconfig } : {}) };
}

/** Removes the profile's kubeconfig entries and says what happened; a kubeconfig problem is a warning, never a failed delete. */
async function forgetKubeconfigEntries(p: OpenProfile, options: LifecycleOptions): Promise<KubeconfigCleanup> {
  const s = p.state.state;
  // A damaged state may have been a Kubernetes profile's.
  const expectEntries = p.stateDamage !== undefined || s?.created?.kubernetes === true || s?.apiServer !== undefined;
  const r = await removeProfileEntries(p.paths.pki, p.name, expectEntries);
  if (r.removed.length > 0) options.out.info(`Removed from the kubeconfig: ${r.removed.join(', ')}`);
  for (const entry of r.leftAlone) options.out.warn(`Left in the kubeconfig (not devcluster's): ${entry}`);
  if (r.warning !== undefined) options.out.warn(`kubeconfig: ${r.warning}`);
  return r;
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
