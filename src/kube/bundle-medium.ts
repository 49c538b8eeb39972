import { rm, stat } from 'node:fs/promises';
import { join, relative, sep } from 'node:path';
import { hashFile } from '../image/cache.ts';
import { readJsonIfExists, writeJsonAtomic } from '../profile/atomic.ts';
import { IsoSourceMismatch, writeIsoFile } from '../seed/iso-file.ts';
import { DevclusterError, errorDef, registerErrors } from '../ui/errors.ts';
import { bundleCacheDir, bundleInvalid } from './bundle-store.ts';
import type { FoundBundle } from './bundle-store.ts';
import { filesForGuest, mediumFileName } from './guest-bundle.ts';

registerErrors({
  KUBE_BUNDLE_MEDIUM_CORRUPT: errorDef('kubernetes', 102, 'The cached ISO that hands the node bundle to the guest no longer matches the digest recorded when it was written; nothing was installed from it, and the next start writes it anew.'),
});

/**
 * The node bundle reaches the guest as a read-only ISO attached to the VM:
 * a local read there, where a copy over SSH ran at 2.5-4 MB/s under software
 * emulation (the guest decrypts every byte). Every hypervisor attaches an
 * ISO, and the guest finds it by this volume label.
 */
export const BUNDLE_MEDIUM_LABEL = 'devcluster-kube';

/** One medium per cached version, beside the bundles (a dot name, so `bundle list` and the store pass it by). */
const MEDIA_DIR = '.media';

export interface BundleMedium {
  path: string;
  label: string;
  /** The bundle's manifest.json digest: the guest compares it with the medium's copy. */
  manifestSha256: string;
  /** The whole image's digest, recorded when it was written. */
  sha256: string;
  size: number;
}

interface MediumRecord {
  manifestSha256: string;
  sha256: string;
  size: number;
}

export function bundleMediumPath(home: string, version: string): string {
  return join(bundleCacheDir(home), MEDIA_DIR, `${version}.iso`);
}

function recordPath(isoPath: string): string {
  return `${isoPath}.json`;
}

async function readRecord(isoPath: string): Promise<MediumRecord | undefined> {
  const value = (await readJsonIfExists(recordPath(isoPath)).catch(() => undefined)) as Partial<MediumRecord> | undefined;
  if (typeof value?.manifestSha256 !== 'string' || typeof value.sha256 !== 'string' || typeof value.size !== 'number') return undefined;
  return value as MediumRecord;
}

/**
 * The ISO of a cached bundle: manifest.json and every file the guest needs.
 * Written when missing or when the bundle changed (its record names the
 * manifest it was made from); otherwise only checked by size.
 */
export async function ensureBundleMedium(home: string, bundle: FoundBundle, signal?: AbortSignal): Promise<BundleMedium & { written: boolean }> {
  const { manifestSha256 } = bundle;
  const path = bundleMediumPath(home, bundle.manifest.kubernetesVersion);
  const record = await readRecord(path);
  const size = (await stat(path).catch(() => undefined))?.size;
  if (record !== undefined && record.manifestSha256 === manifestSha256 && record.size === size) {
    return { path, label: BUNDLE_MEDIUM_LABEL, ...record, written: false };
  }
  // The record goes first: an image without one is never trusted.
  await rm(recordPath(path), { force: true });
  const guestFiles = filesForGuest(bundle.manifest);
  const files = [
    { name: 'manifest.json', source: join(bundle.dir, 'manifest.json') },
    // A cached bundle is checked by size when it is used; its bytes are checked here, once per medium, before the medium exists.
    ...guestFiles.map((f) => ({ name: mediumFileName(f.path), source: join(bundle.dir, ...f.path.split('/')), mode: Number.parseInt(f.mode, 8), sha256: f.sha256 })),
  ];
  let written;
  try {
    written = await writeIsoFile(path, { volumeId: BUNDLE_MEDIUM_LABEL, files, ...(signal === undefined ? {} : { signal }) });
  } catch (e) {
    if (!(e instanceof IsoSourceMismatch)) throw e;
    const problems = e.mismatches.map((m) => `${relative(bundle.dir, m.source).split(sep).join('/')} has sha256 ${m.actual}, the manifest says ${m.expected}`);
    throw bundleInvalid(`the cached ${bundle.manifest.kubernetesVersion} bundle in ${bundle.dir}`, problems, 'Its files changed on disk since it was verified. Put a good bundle back with `devcluster bundle import`, `devcluster bundle build`, or remove the directory so `start` downloads it again.');
  }
  const fresh: MediumRecord = { manifestSha256, sha256: written.sha256, size: written.size };
  await writeJsonAtomic(recordPath(path), fresh);
  return { path, label: BUNDLE_MEDIUM_LABEL, ...fresh, written: true };
}

/**
 * Hashes the medium on the host (native speed, about a second) before the
 * guest installs from it. The guest reads these very bytes through the
 * hypervisor, so it does not hash them again at emulated speed; its images
 * are checked by digest when containerd imports them.
 */
export async function verifyBundleMedium(medium: BundleMedium, signal?: AbortSignal): Promise<void> {
  const actual = (await hashFile(medium.path, signal)).sha256;
  if (actual === medium.sha256) return;
  await rm(recordPath(medium.path), { force: true });
  throw new DevclusterError('KUBE_BUNDLE_MEDIUM_CORRUPT', `the node bundle's medium ${medium.path} has sha256 ${actual}, not the ${medium.sha256} recorded when it was written`, {
    advice: 'Run `devcluster stop`, then `devcluster start`: the medium is written anew from the cached bundle and attached again. If it repeats, check the disk holding ~/.devcluster.',
  });
}

/** Removes a version's medium and its record; true when there was one. */
export async function removeBundleMedium(home: string, version: string): Promise<boolean> {
  const path = bundleMediumPath(home, version);
  const existed = (await stat(path).catch(() => undefined)) !== undefined;
  await rm(recordPath(path), { force: true });
  await rm(path, { force: true });
  return existed;
}
