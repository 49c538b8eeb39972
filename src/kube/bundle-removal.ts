import { lstat, rm } from 'node:fs/promises';
import { acquireProfileLock } from '../profile/lock.ts';
import { listProfiles } from '../profile/profiles.ts';
import { DevclusterError, inputError } from '../ui/errors.ts';
import { removeBundleMedium } from './bundle-medium.ts';
import { bundleVersionPaths, isBundleVersion } from './bundle-store.ts';
import './bundle-errors.ts';

export interface RemovedBundle {
  version: string;
  /** What went: the bundle directory, a set-aside copy, the guest medium. */
  removed: string[];
}

/** Profiles whose cluster was made with this Kubernetes version (they need its bundle for kubectl and any reinstall). */
async function profilesUsing(home: string, version: string): Promise<string[]> {
  return (await listProfiles(home)).filter((p) => (p.state?.['created'] as { kubernetesVersion?: unknown } | undefined)?.kubernetesVersion === version).map((p) => p.name);
}

/**
 * Removes a cached bundle version: its directory, a copy a crashed replace
 * set aside, its source record and its guest medium, under the version's
 * lock. A version a profile's cluster was made with is refused.
 */
export async function removeBundle(home: string, version: string): Promise<RemovedBundle> {
  if (!isBundleVersion(version)) {
    throw inputError('KUBE_BUNDLE_NOT_CACHED', `${JSON.stringify(version)} is not a bundle version`, { advice: 'Give a version as `bundle list` shows it, e.g. v1.37.2.' });
  }
  const paths = bundleVersionPaths(home, version);
  const exists = async (p: string) => (await lstat(p).catch(() => undefined)) !== undefined;
  if (!(await exists(paths.dir)) && !(await exists(paths.aside))) {
    throw inputError('KUBE_BUNDLE_NOT_CACHED', `no Kubernetes ${version} bundle is cached`, { advice: 'See what is cached with `devcluster bundle list`.' });
  }
  const users = await profilesUsing(home, version);
  if (users.length > 0) {
    throw new DevclusterError('KUBE_BUNDLE_IN_USE', `the Kubernetes ${version} bundle is used by ${users.length === 1 ? 'profile' : 'profiles'} ${users.join(', ')}`, {
      advice: `A cluster keeps using the bundle it was made with (\`devcluster kubectl\`, reinstalling after a change). Delete ${users.length === 1 ? 'that profile' : 'those profiles'} first (\`devcluster delete -p <name>\`), then remove the bundle.`,
      input: true,
    });
  }
  const lock = await acquireProfileLock(`Kubernetes bundle ${version}`, paths.lock, { command: `remove bundle ${version}`, wait: true, pollMs: 100 });
  try {
    const removed: string[] = [];
    for (const dir of [paths.dir, paths.aside]) {
      if (await exists(dir)) {
        await rm(dir, { recursive: true, force: true });
        removed.push(dir);
      }
    }
    await rm(paths.source, { force: true });
    if (await removeBundleMedium(home, version)) removed.push('the guest medium');
    return { version, removed };
  } finally {
    await lock.release();
  }
}
