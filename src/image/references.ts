import { readdir, readFile } from 'node:fs/promises';
import { homePaths, profilePaths } from '../profile/paths.ts';
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
