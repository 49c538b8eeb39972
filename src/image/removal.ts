import { DevclusterError, inputError } from '../ui/errors.ts';
import './errors.ts';
import { ImageCache, withCompanions } from './cache.ts';
import type { CachedImageRow, CacheIndex } from './cache.ts';
import { describeUsers, imageUsage } from './references.ts';
import type { BaseMediaHolder, ImageUsage, ImageUsers } from './references.ts';

/**
 * `image rm` and `image prune`: cache entries are shared, by every name whose
 * files include the digest and by every profile whose VM boots from it
 * (imageUsage). Removing a name removes only the name; an entry's files go
 * only when nothing uses them any more. A profile whose state cannot be read
 * may use anything, so nothing is removed while one exists unless the user
 * says --force.
 */
export interface RemovedFile {
  readonly sha256: string;
  readonly file: string | undefined;
  readonly size: number;
}

export interface KeptFile {
  readonly sha256: string;
  readonly file: string | undefined;
  readonly users: ImageUsers;
  /** "name debian-12, profile dev" */
  readonly why: string;
}

export interface RemoveResult {
  /** What the user named, as shown back. */
  readonly label: string;
  /** The name that was removed, when a name was given. */
  readonly nameRemoved: string | undefined;
  readonly removed: readonly RemovedFile[];
  readonly kept: readonly KeptFile[];
}

export interface RemoveOptions {
  /** Remove files even though some profile's state cannot be read (never files a known user needs). */
  readonly force?: boolean;
  /** Hypervisors' registered base media (see imageUsage): a file nothing uses is released from them before it goes. */
  readonly holders?: readonly BaseMediaHolder[];
}

type Target =
  | { kind: 'name'; name: string; label: string; shas: string[] }
  | { kind: 'entries'; label: string; shas: string[] };

/** What `rm <what>` means: a named image, a digest prefix (12+ hex), or an unnamed entry's file name. */
function findTarget(what: string, index: CacheIndex, rows: readonly CachedImageRow[]): Target | undefined {
  const named = index.images[what];
  if (named !== undefined) return { kind: 'name', name: what, label: `${what} ${named.version}`, shas: [...new Set(Object.values(named.formats))] };
  if (/^[0-9a-f]{12,64}$/.test(what)) {
    const matches = rows.filter((r) => r.sha256.startsWith(what));
    if (matches.length > 1) throw inputError('USAGE_INVALID_ARGUMENT', `${what} matches ${matches.length} cached images; give more of the digest`);
    if (matches.length === 1) return { kind: 'entries', label: what, shas: [(matches[0] as CachedImageRow).sha256] };
  }
  const byName = rows.filter((r) => r.name === what || r.file === what);
  if (byName.length > 0) return { kind: 'entries', label: what, shas: byName.map((r) => r.sha256) };
  return undefined;
}

function keepReason(users: ImageUsers, force: boolean, except: { name?: string }): string {
  const known: ImageUsers = { names: users.names.filter((n) => n !== except.name), profiles: users.profiles, unknown: force ? [] : users.unknown };
  return describeUsers(known);
}

/** Undefined when `what` is not in the cache. */
export async function removeImage(home: string, what: string, options: RemoveOptions = {}): Promise<RemoveResult | undefined> {
  const cache = ImageCache.forHome(home);
  const index = await cache.readIndex();
  const rows = await cache.list();
  const target = findTarget(what, index, rows);
  if (target === undefined) return undefined;
  const usage = await imageUsage(home, index, options.holders);
  const except = target.kind === 'name' ? { name: target.name } : {};
  const plan = target.shas.map((sha) => {
    const users = usage.users(sha);
    const row = rows.find((r) => r.sha256 === sha);
    return { sha, file: row?.file, size: row?.size ?? 0, users, why: keepReason(users, options.force === true, except) };
  });
  if (target.kind === 'entries' && plan.every((p) => p.why !== '')) {
    throw new DevclusterError('IMAGE_IN_USE', `${target.label} was not removed: still used by ${[...new Set(plan.map((p) => p.why))].join('; ')}`, {
      advice: plan.some((p) => p.users.unknown.length > 0 && p.users.names.length === 0 && p.users.profiles.length === 0)
        ? 'Fix or remove the unreadable state.json (or delete that profile), or pass --force to treat it as using nothing.'
        : 'Remove the names with `devcluster image rm <name>` and delete the clusters that use it (`devcluster delete -p <profile>`) first.',
      details: { sha256: target.shas, users: plan.map((p) => ({ sha256: p.sha, ...p.users })) },
    });
  }
  if (target.kind === 'name') await cache.forgetNamedImage(target.name);
  const removed: RemovedFile[] = [];
  const kept: KeptFile[] = [];
  for (const p of plan) {
    const why = p.why !== '' ? p.why : await usage.release(p.sha);
    if (why !== '') {
      kept.push({ sha256: p.sha, file: p.file, users: p.users, why });
      continue;
    }
    if (await cache.remove(p.sha)) removed.push({ sha256: p.sha, file: p.file, size: p.size });
  }
  return { label: target.label, nameRemoved: target.kind === 'name' ? target.name : undefined, removed, kept };
}

export interface PruneImagesResult {
  readonly removed: readonly RemovedFile[];
  readonly kept: readonly KeptFile[];
  readonly partialsRemoved: number;
  readonly bytesFreed: number;
  /** Profiles treated as using nothing because of --force. */
  readonly ignoredUnreadable: readonly string[];
}

/**
 * Refuses (IMAGE_IN_USE, nothing removed) while a profile's state cannot be
 * read, unless `force`. A file a holder holds is released before it goes
 * (not in a dry run) and kept, with the reason, when that fails.
 */
export async function pruneImages(home: string, options: { dryRun?: boolean; force?: boolean; holders?: readonly BaseMediaHolder[] } = {}): Promise<PruneImagesResult> {
  const cache = ImageCache.forHome(home);
  const index = await cache.readIndex();
  const usage: ImageUsage = await imageUsage(home, index, options.holders);
  if (usage.unreadable.length > 0 && options.force !== true) {
    const who = usage.unreadable.map((u) => u.profile);
    throw new DevclusterError('IMAGE_IN_USE', `nothing was pruned: cannot tell which images ${who.join(', ')} use${who.length === 1 ? 's' : ''} (${usage.unreadable.map((u) => `${u.path}: ${u.problem}`).join('; ')})`, {
      advice: 'Fix or remove the unreadable state.json, or pass --force to prune as if that profile used nothing.',
      details: { unreadable: usage.unreadable },
    });
  }
  const rows = await cache.list();
  const inUse = new Set(rows.filter((r) => usage.users(r.sha256).profiles.length > 0).map((r) => r.sha256));
  const notReleased = new Map<string, string>();
  if (options.dryRun !== true) {
    const keep = withCompanions(inUse, index);
    for (const r of rows) {
      if (keep.has(r.sha256) || usage.users(r.sha256).heldBy === undefined) continue;
      const why = await usage.release(r.sha256);
      if (why !== '') notReleased.set(r.sha256, why);
    }
  }
  const result = await cache.prune(new Set([...inUse, ...notReleased.keys()]), options.dryRun === true ? { dryRun: true } : {});
  const fileOf = (sha: string) => rows.find((r) => r.sha256 === sha)?.file;
  const kept = result.kept.map((sha): KeptFile => {
    const users = usage.users(sha);
    if (users.profiles.length > 0) return { sha256: sha, file: fileOf(sha), users, why: describeUsers({ names: [], profiles: users.profiles, unknown: [] }) };
    // Not released: a disk a holder still holds, or the kernel or initrd that boots with it (cache.prune keeps those together).
    const disk = notReleased.has(sha) ? sha : [...notReleased.keys()].find((other) => withCompanions(new Set([other]), index).has(sha));
    const why = disk === undefined ? '' : disk === sha ? (notReleased.get(sha) ?? '') : `${fileOf(disk) ?? disk.slice(0, 12)}, which boots with it and is kept`;
    return { sha256: sha, file: fileOf(sha), users, why };
  });
  return {
    removed: result.removed,
    kept,
    partialsRemoved: result.partialsRemoved,
    bytesFreed: result.bytesFreed,
    ignoredUnreadable: usage.unreadable.map((u) => u.profile),
  };
}
