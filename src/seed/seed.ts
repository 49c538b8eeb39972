/**
 * The NoCloud seed ISO: user-data, meta-data and network-config on a volume
 * labelled `cidata`, which cloud-init's NoCloud datasource finds by label.
 */
import { writeFileAtomic } from '../profile/atomic.ts';
import { DevclusterError } from '../ui/errors.ts';
import { buildIso } from './iso9660.ts';
import type { IsoFile } from './iso9660.ts';
import { networkConfigObject, renderMetaData, renderNetworkConfig, renderUserData, userDataObject } from './render.ts';
import { validateSeedSpec } from './spec.ts';
import type { SeedSpec } from './spec.ts';

export type { SeedNetwork, SeedProxy, SeedSpec, ValidSeedSpec } from './spec.ts';
export { DEFAULT_SEED_USER, validateSeedSpec } from './spec.ts';
export { renderMetaData, renderNetworkConfig, renderUserData, networkConfigObject, userDataObject };

export const SEED_VOLUME_ID = 'cidata';
/** The seed holds the guest's private host key. */
export const SEED_FILE_MODE = 0o600;

export interface SeedBuildOptions {
  /** Timestamp recorded in the image; the default keeps builds byte-for-byte reproducible. */
  date?: Date;
}

/** The three files, in the order they are written to the image. */
export function seedFiles(spec: SeedSpec): IsoFile[] {
  const valid = validateSeedSpec(spec);
  const enc = new TextEncoder();
  return [
    // user-data carries the host private key: readable by root only once mounted.
    { name: 'user-data', data: enc.encode(renderUserData(valid)), mode: 0o400 },
    { name: 'meta-data', data: enc.encode(renderMetaData(valid)), mode: 0o444 },
    { name: 'network-config', data: enc.encode(renderNetworkConfig(valid)), mode: 0o444 },
  ];
}

export function buildSeedIso(spec: SeedSpec, options: SeedBuildOptions = {}): Uint8Array {
  return buildIso({ volumeId: SEED_VOLUME_ID, files: seedFiles(spec), ...(options.date === undefined ? {} : { date: options.date }) });
}

/** Writes the seed ISO atomically with mode 0600. */
export async function writeSeedIso(path: string, spec: SeedSpec, options: SeedBuildOptions = {}): Promise<void> {
  const iso = buildSeedIso(spec, options);
  try {
    await writeFileAtomic(path, iso, { mode: SEED_FILE_MODE });
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'EACCES' || code === 'EPERM' || code === 'EROFS') {
      throw new DevclusterError('HOST_PERMISSION_DENIED', `cannot write the seed ISO ${path}: ${code}`, {
        cause: e,
        advice: 'Check that the profile directory is writable by you (and not on a read-only file system).',
        details: { path },
      });
    }
    if (code === 'ENOSPC' || code === 'EDQUOT') {
      throw new DevclusterError('HOST_DISK_FULL', `no space left to write the seed ISO ${path}`, {
        cause: e,
        advice: 'Free some disk space (devcluster needs a few hundred KiB for the seed, gigabytes for the VM disk).',
        details: { path },
      });
    }
    throw e;
  }
}
