import type { CachedImageRow, CacheIndex } from './cache.ts';
import type { ImageUsage } from './references.ts';
import { formatBytes } from './progress.ts';

/** One line of `image list`, also its JSON shape. */
export interface ImageListItem {
  readonly name: string;
  readonly version: string | null;
  readonly format: string | null;
  readonly size: number | null;
  readonly lastUsedAt: string | null;
  readonly sha256: string;
  readonly file: string | null;
  readonly source: string | null;
  readonly usedBy: readonly string[];
  /** Hypervisors that registered the file as base media (they do not keep it from rm and prune, which release it first). */
  readonly heldBy: readonly string[];
}

/**
 * One row per name and digest: a digest shared by two names is listed under
 * each (like two tags of one container image); an unnamed entry (an --image
 * path or URL) under its file name.
 */
export function imageListItems(rows: readonly CachedImageRow[], usage: Pick<ImageUsage, 'users'>, images: CacheIndex['images'] = {}): ImageListItem[] {
  const items = rows.flatMap((r): ImageListItem[] => {
    const users = usage.users(r.sha256);
    const base = {
      size: r.size ?? null,
      lastUsedAt: r.lastUsedAt ?? null,
      sha256: r.sha256,
      file: r.file ?? null,
      source: r.source ?? null,
      usedBy: users.profiles,
      heldBy: users.heldBy ?? [],
    };
    if (users.names.length === 0) return [{ ...base, name: r.name ?? r.file ?? r.sha256.slice(0, 12), version: r.version ?? null, format: r.kind ?? null }];
    return users.names.map((name) => {
      const image = images[name];
      const kind = image === undefined ? undefined : Object.entries(image.formats).find(([, sha]) => sha === r.sha256)?.[0];
      return { ...base, name, version: image?.version ?? r.version ?? null, format: kind ?? r.kind ?? null };
    });
  });
  const kindOrder = ['qcow2', 'vhdx', 'vmdk', 'ova', 'raw', 'kernel', 'initrd'];
  // Code-point order: the same list on every machine, whatever the user's locale.
  const cmp = (x: string, y: string) => (x < y ? -1 : x > y ? 1 : 0);
  return items.sort((a, b) => cmp(a.name, b.name) || cmp(a.version ?? '', b.version ?? '')
    || kindOrder.indexOf(a.format ?? '') - kindOrder.indexOf(b.format ?? '') || cmp(a.sha256, b.sha256));
}

/** "just now", "5 minutes ago", "3 days ago"; dates beyond a month. */
export function formatAgo(iso: string | null, nowMs: number): string {
  if (iso === null) return 'never';
  const then = Date.parse(iso);
  if (Number.isNaN(then)) return 'unknown';
  const seconds = Math.max(0, Math.round((nowMs - then) / 1000));
  const plural = (n: number, unit: string) => `${n} ${unit}${n === 1 ? '' : 's'} ago`;
  if (seconds < 60) return 'just now';
  if (seconds < 3600) return plural(Math.floor(seconds / 60), 'minute');
  if (seconds < 86_400) return plural(Math.floor(seconds / 3600), 'hour');
  if (seconds < 31 * 86_400) return plural(Math.floor(seconds / 86_400), 'day');
  return iso.slice(0, 10);
}

export const IMAGE_LIST_HEADERS = ['NAME', 'VERSION', 'FORMAT', 'SIZE', 'LAST USED', 'SHA256', 'USED BY'] as const;

export function imageListTable(items: readonly ImageListItem[], nowMs: number): string[][] {
  return items.map((i) => [
    i.name,
    i.version ?? '',
    i.format ?? '',
    i.size === null ? '?' : formatBytes(i.size),
    formatAgo(i.lastUsedAt, nowMs),
    i.sha256.slice(0, 12),
    [...i.usedBy, ...i.heldBy.map((h) => `${h} (base media)`)].join(','),
  ]);
}
