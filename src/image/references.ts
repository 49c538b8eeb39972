import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { homePaths, profilePaths } from '../profile/paths.ts';
import { ImageCache, withCompanions } from './cache.ts';
import type { CacheIndex } from './cache.ts';
import { SHA256_PATTERN } from './catalog.ts';

/**
 * Which cached images the profiles use. A profile's state.json (written by the
 * lifecycle) records its base image as `"image": {"sha256": ...}`, possibly
 * with the kernel and initrd beside it; every 64-hex value of a key named
 * "sha256" anywhere under `image` counts, so this keeps working when the state
 * grows more fields. A VM disk is a copy-on-write child of the cached base, so
 * removing a referenced image would break that cluster.
 */
export interface ImageReferences {
  /** sha256 -> the profiles that use it. */
  readonly bySha: ReadonlyMap<string, readonly string[]>;
  /** state.json files that exist but cannot be read: their references are unknown. */
  readonly unreadable: ReadonlyArray<{ profile: string; path: string; problem: string }>;
}

function collect(value: unknown, into: Set<string>, depth = 0): void {
  if (depth > 8 || typeof value !== 'object' || value === null) return;
  if (Array.isArray(value)) {
    for (const v of value) collect(v, into, depth + 1);
    return;
  }
  for (const [key, v] of Object.entries(value)) {
    if (key === 'sha256' && typeof v === 'string' && SHA256_PATTERN.test(v.toLowerCase())) into.add(v.toLowerCase());
    else collect(v, into, depth + 1);
  }
}

/** The sha256 values a parsed state document references. */
export function referencedDigests(state: unknown): Set<string> {
  const found = new Set<string>();
  if (typeof state === 'object' && state !== null && !Array.isArray(state)) collect((state as Record<string, unknown>)['image'], found);
  return found;
}

export async function imageReferences(home: string): Promise<ImageReferences> {
  const bySha = new Map<string, string[]>();
  const unreadable: Array<{ profile: string; path: string; problem: string }> = [];
  let names: string[];
  try {
    names = (await readdir(homePaths(home).profiles, { withFileTypes: true })).filter((d) => d.isDirectory()).map((d) => d.name).sort();
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return { bySha, unreadable };
    throw e;
  }
  for (const profile of names) {
    const path = profilePaths(home, profile).state;
    let text: string;
    try {
      text = await readFile(path, 'utf8');
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') continue;
      unreadable.push({ profile, path, problem: (e as Error).message });
      continue;
    }
    let state: unknown;
    try {
      state = JSON.parse(text) as unknown;
    } catch (e) {
      unreadable.push({ profile, path, problem: `not valid JSON: ${(e as Error).message}` });
      continue;
    }
    for (const sha of referencedDigests(state)) bySha.set(sha, [...(bySha.get(sha) ?? []), profile]);
  }
  return { bySha, unreadable };
}

/** Who keeps one cache entry alive. */
export interface ImageUsers {
  /** Named images (catalog downloads, imports, local builds) with this digest among their files. */
  readonly names: readonly string[];
  /** Profiles whose VM boots from this digest (its disk's base, or its kernel/initrd). */
  readonly profiles: readonly string[];
  /** Profiles whose state cannot be read: they may use it, so it is not removed. */
  readonly unknown: readonly string[];
  /** Holders that hold the cached file (or could not say whether they do); absent when none does. */
  readonly heldBy?: readonly string[];
}

/**
 * Something outside the cache that can hold a cached file: a hypervisor that
 * registered it as base media (VirtualBox). The cli builds these from the
 * drivers; this layer knows only the shape.
 */
export interface BaseMediaHolder {
  /** For messages: "VirtualBox". */
  readonly name: string;
  holds(path: string): Promise<boolean>;
  release(path: string): Promise<void>;
}

export interface ImageUsage {
  users(sha256: string): ImageUsers;
  /** The state files that could not be read, with why. */
  readonly unreadable: ImageReferences['unreadable'];
  /**
   * Releases the cached file of `sha256` from every holder that holds it, so
   * it can be deleted. '' when nothing holds it any more; otherwise why it
   * must be kept ("VirtualBox, which could not release it: ...").
   */
  release(sha256: string): Promise<string>;
}

interface Hold {
  readonly holder: BaseMediaHolder;
  readonly path: string;
  /** Asking the holder failed: it may hold the file. */
  readonly error?: string;
}

function messageOf(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

/** Every cached file each holder holds, asked once per file. */
async function holdsBySha(home: string, holders: readonly BaseMediaHolder[]): Promise<Map<string, Hold[]>> {
  const bySha = new Map<string, Hold[]>();
  if (holders.length === 0) return bySha;
  const cache = ImageCache.forHome(home);
  for (const row of await cache.list()) {
    if (row.file === undefined) continue;
    const path = join(cache.entryDir(row.sha256), row.file);
    for (const holder of holders) {
      let hold: Hold | undefined;
      try {
        if (await holder.holds(path)) hold = { holder, path };
      } catch (e) {
        hold = { holder, path, error: messageOf(e) };
      }
      if (hold !== undefined) bySha.set(row.sha256, [...(bySha.get(row.sha256) ?? []), hold]);
    }
  }
  return bySha;
}

/**
 * THE answer to "who uses this cached image", read by `image rm`, `image
 * prune` and `image list`: the named images in the cache index, the profiles
 * whose state records it (with the kernel and initrd of a named image whose
 * disk a profile uses: older states record only the disk), and the `holders`
 * (hypervisors' registered base media) that hold its file. An unreadable
 * state counts as a possible user of every entry. A holder is not a user: a
 * file nothing else uses is released from it before it is deleted, and kept
 * when that fails.
 */
export async function imageUsage(home: string, index?: CacheIndex, holders: readonly BaseMediaHolder[] = []): Promise<ImageUsage> {
  const idx = index ?? (await ImageCache.forHome(home).readIndex());
  const refs = await imageReferences(home);
  const holds = await holdsBySha(home, holders);
  const profilesBySha = new Map<string, Set<string>>();
  const add = (sha: string, profile: string) => {
    const set = profilesBySha.get(sha) ?? new Set<string>();
    set.add(profile);
    profilesBySha.set(sha, set);
  };
  const shasByProfile = new Map<string, Set<string>>();
  for (const [sha, profiles] of refs.bySha) {
    for (const p of profiles) shasByProfile.set(p, (shasByProfile.get(p) ?? new Set<string>()).add(sha));
  }
  for (const [profile, shas] of shasByProfile) for (const sha of withCompanions(shas, idx)) add(sha, profile);
  const unknown = refs.unreadable.map((u) => u.profile);
  return {
    unreadable: refs.unreadable,
    users(sha256: string): ImageUsers {
      const sha = sha256.toLowerCase();
      const heldBy = [...new Set((holds.get(sha) ?? []).map((h) => h.holder.name))].sort();
      return {
        names: Object.entries(idx.images).filter(([, image]) => Object.values(image.formats).includes(sha)).map(([name]) => name).sort(),
        profiles: [...(profilesBySha.get(sha) ?? [])].sort(),
        unknown,
        ...(heldBy.length === 0 ? {} : { heldBy }),
      };
    },
    async release(sha256: string): Promise<string> {
      const sha = sha256.toLowerCase();
      const pending = holds.get(sha) ?? [];
      for (const [i, h] of pending.entries()) {
        let why: string | undefined;
        if (h.error !== undefined) {
          why = `${h.holder.name}, which could not say whether it holds it: ${h.error}`;
        } else {
          try {
            await h.holder.release(h.path);
          } catch (e) {
            why = `${h.holder.name}, which could not release it: ${messageOf(e)}`;
          }
        }
        if (why !== undefined) {
          holds.set(sha, pending.slice(i));
          return why;
        }
      }
      holds.delete(sha);
      return '';
    },
  };
}

/** Who uses one digest (see imageUsage). */
export async function imageUsers(home: string, sha256: string): Promise<ImageUsers> {
  return (await imageUsage(home)).users(sha256);
}

/** "name debian-12, profile dev, profile qa (state unreadable)" or '' when nothing uses it. */
export function describeUsers(users: ImageUsers, except: { name?: string } = {}): string {
  return [
    ...users.names.filter((n) => n !== except.name).map((n) => `name ${n}`),
    ...users.profiles.map((p) => `profile ${p}`),
    ...users.unknown.map((p) => `profile ${p} (its state.json cannot be read)`),
  ].join(', ');
}
