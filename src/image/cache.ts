import { processAlive } from '../host/process.ts';
import { createHash, randomBytes } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdir, readdir, rename, rm, stat } from 'node:fs/promises';
import type { Stats } from 'node:fs';
import { basename, join, resolve as resolvePath } from 'node:path';
import { Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { readJsonIfExists, writeJsonAtomic } from '../profile/atomic.ts';
import { acquireProfileLock } from '../profile/lock.ts';
import type { ProfileLock } from '../profile/lock.ts';
import { homePaths } from '../profile/paths.ts';
import { logLine } from '../ui/context.ts';
import { DevclusterError, isDevclusterError } from '../ui/errors.ts';
import './errors.ts';
import { SHA256_PATTERN } from './catalog.ts';
import { download } from './download.ts';
import type { DownloadOptions } from './download.ts';
import { isDiskFormat } from './formats.ts';
import type { ArtifactKind } from './formats.ts';
import { assertSelfContained } from './inspect.ts';

/**
 * The verified image cache, content-addressed by sha256:
 *
 *   <root>/<sha256>/<file>        a verified image (one file per digest)
 *   <root>/<sha256>/stamp.json    size, mtime, ctime and inode when it was last hashed
 *   <root>/index.json             last-used times, sources, and named images
 *   <root>/.part/<sha256>.part    a partial download (+ .part.json: its validator)
 *   <root>/.staging/              entries being assembled before an atomic rename
 *   <root>/.locks/                per-digest and index locks (cross-process)
 *
 * A digest directory appears whole or not at all: it is assembled in .staging
 * and renamed into place. A file is trusted while its stat matches its stamp;
 * any change (even a flipped byte with the mtime put back changes the ctime)
 * makes the next use re-hash it, and a file whose digest no longer matches is
 * removed, never used. Everything that changes an entry holds the digest's
 * lock, so two processes fetching the same image download it once.
 */
export interface CacheEntry {
  readonly sha256: string;
  /** Absolute path of the verified file. */
  readonly path: string;
  readonly file: string;
  readonly size: number;
}

export interface IndexEntry {
  file: string;
  size: number;
  kind?: ArtifactKind;
  /** URL, absolute path, or `build:<recipe>` the bytes came from. */
  source?: string;
  name?: string;
  version?: string;
  addedAt: string;
  lastUsedAt?: string;
}

export interface NamedImage {
  version: string;
  /** `catalog` (downloaded from the catalog's URLs) or `build` (imported from a local build). */
  origin: 'catalog' | 'build';
  formats: Partial<Record<ArtifactKind, string>>;
  kernelCmdline?: string;
  recipe?: string;
  builtAt?: string;
  packages?: Record<string, string>;
  importedAt: string;
}

interface SourceMemo {
  size: number;
  mtimeMs: number;
  ino: number;
  sha256: string;
}

export interface CacheIndex {
  schemaVersion: 1;
  entries: Record<string, IndexEntry>;
  images: Record<string, NamedImage>;
  /** Local files already hashed: path -> stat and digest, so `--image /path` is not re-hashed on every start. */
  sources: Record<string, SourceMemo>;
}

interface Stamp {
  sha256: string;
  file: string;
  size: number;
  mtimeMs: number;
  ctimeMs: number;
  ino: number;
  verifiedAt: string;
}

export interface EntryMetadata {
  kind?: ArtifactKind;
  source?: string;
  name?: string;
  version?: string;
}

export type DownloadTuning = Partial<Pick<DownloadOptions,
  'signal' | 'onProgress' | 'progressIntervalMs' | 'retries' | 'backoffMs' | 'maxBackoffMs' | 'stallTimeoutMs' | 'env' | 'ca'>>;

export interface FetchRequest extends EntryMetadata {
  readonly sha256: string;
  /** Where to download from when missing; without it a missing entry is IMAGE_NOT_CACHED. */
  readonly url?: string;
  /** File name inside the entry directory. */
  readonly filename: string;
  readonly expectedSize?: number;
  /** Use only the cache. */
  readonly offline?: boolean;
  readonly download?: DownloadTuning;
  /** Called when another process holds the digest (it is downloading the same image). */
  readonly onWait?: (holder: string) => void;
  /** Called when a cached copy failed verification and was removed. */
  readonly onCorrupt?: (sha256: string, path: string) => void;
  /** Advice for IMAGE_NOT_CACHED when the entry cannot be fetched. */
  readonly notCachedAdvice?: string;
}

export interface ImportRequest extends EntryMetadata {
  /** Expected digest; when absent the file's own digest is used (the user vouches for a local file). */
  readonly sha256?: string;
  readonly filename?: string;
  readonly signal?: AbortSignal;
}

export interface CachedImageRow extends EntryMetadata {
  readonly sha256: string;
  readonly file: string | undefined;
  readonly size: number | undefined;
  readonly addedAt: string | undefined;
  readonly lastUsedAt: string | undefined;
}

export interface PruneResult {
  readonly removed: ReadonlyArray<{ sha256: string; file: string | undefined; size: number }>;
  readonly kept: readonly string[];
  readonly partialsRemoved: number;
  readonly bytesFreed: number;
}

const STAMP = 'stamp.json';
const EMPTY_INDEX = (): CacheIndex => ({ schemaVersion: 1, entries: {}, images: {}, sources: {} });

function now(): string {
  return new Date().toISOString();
}

function assertSha(sha256: string): void {
  if (!SHA256_PATTERN.test(sha256)) throw new Error(`not a sha256 digest: ${sha256}`);
}

/** A safe single path component for the cached file's name. */
export function safeFileName(name: string, fallback: string): string {
  const cleaned = basename(name.replace(/[?#].*$/, '')).replace(/[^A-Za-z0-9._-]/g, '_').replace(/^\.+/, '');
  return cleaned === '' || cleaned === STAMP ? fallback : cleaned.slice(0, 200);
}

export async function hashFile(path: string, signal?: AbortSignal): Promise<{ sha256: string; size: number }> {
  const hash = createHash('sha256');
  let size = 0;
  const stream = createReadStream(path, { highWaterMark: 1024 * 1024, ...(signal === undefined ? {} : { signal }) });
  for await (const chunk of stream) {
    hash.update(chunk as Buffer);
    size += (chunk as Buffer).length;
  }
  return { sha256: hash.digest('hex'), size };
}

function stampMatches(stamp: Stamp | undefined, sha256: string, st: Stats): boolean {
  return stamp !== undefined && stamp.sha256 === sha256 && stamp.size === st.size && stamp.mtimeMs === st.mtimeMs
    && stamp.ctimeMs === st.ctimeMs && stamp.ino === st.ino;
}

async function readStamp(dir: string): Promise<Stamp | undefined> {
  try {
    const s = (await readJsonIfExists(join(dir, STAMP))) as Stamp | undefined;
    return s !== undefined && typeof s.file === 'string' && typeof s.size === 'number' ? s : undefined;
  } catch {
    return undefined;
  }
}

async function writeStamp(dir: string, file: string, sha256: string): Promise<Stats> {
  const st = await stat(join(dir, file));
  const stamp: Stamp = { sha256, file, size: st.size, mtimeMs: st.mtimeMs, ctimeMs: st.ctimeMs, ino: st.ino, verifiedAt: now() };
  await writeJsonAtomic(join(dir, STAMP), stamp);
  return st;
}

export class ImageCache {
  readonly root: string;

  constructor(root: string) {
    this.root = root;
  }

  static forHome(home: string): ImageCache {
    return new ImageCache(homePaths(home).imageCache);
  }

  entryDir(sha256: string): string {
    return join(this.root, sha256);
  }

  partPath(sha256: string): string {
    return join(this.root, '.part', `${sha256}.part`);
  }

  private lockPath(name: string): string {
    return join(this.root, '.locks', `${name}.lock`);
  }

  private async lock(name: string, what: string, options: { signal?: AbortSignal; onWait?: (holder: string) => void; wait?: boolean } = {}): Promise<ProfileLock | undefined> {
    const path = this.lockPath(name);
    const label = `image cache ${name.slice(0, 12)}`;
    try {
      return await acquireProfileLock(label, path, { command: what, wait: false });
    } catch (e) {
      if (!(isDevclusterError(e) && e.id === 'PROFILE_BUSY')) throw e;
      if (options.wait === false) return undefined;
      options.onWait?.(`pid ${String(e.details['pid'])} (${String(e.details['command'])})`);
      return acquireProfileLock(label, path, { command: what, wait: true, pollMs: 100, ...(options.signal === undefined ? {} : { signal: options.signal }) });
    }
  }

  /**
   * The entry if it is present and its stamp still matches: no hashing, no
   * lock. Anything else (missing, changed, never stamped) answers undefined
   * and is settled by `lookup` under the digest's lock.
   */
  async peek(sha256: string): Promise<CacheEntry | undefined> {
    assertSha(sha256);
    const dir = this.entryDir(sha256);
    const stamp = await readStamp(dir);
    if (stamp === undefined) return undefined;
    try {
      const st = await stat(join(dir, stamp.file));
      return stampMatches(stamp, sha256, st) ? { sha256, path: join(dir, stamp.file), file: stamp.file, size: st.size } : undefined;
    } catch {
      return undefined;
    }
  }

  /**
   * The verified entry, or undefined. A file whose stat differs from its stamp
   * is re-hashed (`verify: 'full'` always re-hashes); a wrong digest removes the
   * entry. Callers that may remove hold the digest lock (fetch, import, remove).
   */
  async lookup(sha256: string, options: { verify?: 'stamp' | 'full'; signal?: AbortSignal; onCorrupt?: (sha256: string, path: string) => void } = {}): Promise<CacheEntry | undefined> {
    assertSha(sha256);
    const dir = this.entryDir(sha256);
    let names: string[];
    try {
      names = (await readdir(dir)).filter((n) => n !== STAMP && !n.startsWith('.'));
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw e;
    }
    const stamp = await readStamp(dir);
    const file = stamp !== undefined && names.includes(stamp.file) ? stamp.file : names.length === 1 ? names[0] : undefined;
    if (file === undefined) {
      logLine('warn', `image cache: ${dir} holds no single image file; removing it`);
      await rm(dir, { recursive: true, force: true });
      return undefined;
    }
    const path = join(dir, file);
    const st = await stat(path);
    if (options.verify !== 'full' && stampMatches(stamp, sha256, st)) return { sha256, path, file, size: st.size };
    logLine('info', `image cache: verifying ${path}`);
    const actual = await hashFile(path, options.signal);
    if (actual.sha256 !== sha256) {
      logLine('warn', `image cache: ${path} has sha256 ${actual.sha256}, not ${sha256}; removing it`);
      options.onCorrupt?.(sha256, path);
      await rm(dir, { recursive: true, force: true });
      await this.updateIndex((index) => {
        delete index.entries[sha256];
      });
      return undefined;
    }
    const fresh = await writeStamp(dir, file, sha256);
    return { sha256, path, file, size: fresh.size };
  }

  /** The verified entry, downloading it (once across processes) when missing. */
  async fetch(request: FetchRequest): Promise<CacheEntry> {
    assertSha(request.sha256);
    const quick = await this.peek(request.sha256);
    if (quick !== undefined) {
      await this.touch([request.sha256], request);
      return quick;
    }
    const signal = request.download?.signal;
    const lock = await this.lock(request.sha256, `fetch ${request.filename}`, {
      ...(signal === undefined ? {} : { signal }),
      ...(request.onWait === undefined ? {} : { onWait: request.onWait }),
    });
    try {
      const found = await this.lookup(request.sha256, {
        ...(signal === undefined ? {} : { signal }),
        ...(request.onCorrupt === undefined ? {} : { onCorrupt: request.onCorrupt }),
      });
      if (found !== undefined) {
        await this.touch([request.sha256], request);
        return found;
      }
      if (request.offline === true || request.url === undefined) {
        throw new DevclusterError('IMAGE_NOT_CACHED', `${request.name ?? request.filename} (sha256 ${request.sha256.slice(0, 12)}) is not in the image cache${request.offline === true ? ' and --offline forbids downloading it' : ''}`, {
          advice: request.notCachedAdvice ?? (request.offline === true ? 'Run the command once without --offline to download it, or import the image with --image <path> --image-sha256 <sha256>.' : 'Import the image again.'),
          details: { sha256: request.sha256, cache: this.root },
        });
      }
      return await this.stageAndPublish(request.sha256, async (staging) => {
        const filename = safeFileName(request.filename, `${request.sha256.slice(0, 12)}.img`);
        await download({
          ...request.download,
          url: request.url as string,
          sha256: request.sha256,
          destination: join(staging, filename),
          partPath: this.partPath(request.sha256),
          ...(request.expectedSize === undefined ? {} : { expectedSize: request.expectedSize }),
        });
        return filename;
      }, { ...request, source: request.source ?? request.url });
    } finally {
      await lock?.release();
    }
  }

  /** Copies a local file into the cache, verifying it against `sha256` when given. */
  async importFile(path: string, request: ImportRequest = {}): Promise<CacheEntry> {
    const source = resolvePath(path);
    let st: Stats;
    try {
      st = await stat(source);
    } catch (e) {
      throw new DevclusterError('IMAGE_FILE_NOT_FOUND', `${source} cannot be read: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`, {
        advice: 'Give the absolute path of an existing disk image file.',
        input: true,
      });
    }
    if (!st.isFile()) throw new DevclusterError('IMAGE_FILE_NOT_FOUND', `${source} is not a regular file`, { advice: 'Give the path of a disk image file, not a directory or device.', input: true });
    let sha256 = request.sha256;
    if (sha256 === undefined) {
      const memo = (await this.readIndex()).sources[source];
      if (memo !== undefined && memo.size === st.size && memo.mtimeMs === st.mtimeMs && memo.ino === st.ino) sha256 = memo.sha256;
    }
    const filename = safeFileName(request.filename ?? basename(source), 'image');
    const meta: EntryMetadata = { ...pickMeta(request), source: request.source ?? source };
    const remember = (digest: string) => this.updateIndex((index) => {
      index.sources[source] = { size: st.size, mtimeMs: st.mtimeMs, ino: st.ino, sha256: digest };
    });
    const lockOptions = request.signal === undefined ? {} : { signal: request.signal };

    if (sha256 !== undefined) {
      const expected = sha256;
      assertSha(expected);
      const quick = await this.peek(expected);
      if (quick !== undefined) {
        await this.touch([expected], meta);
        return quick;
      }
      const lock = await this.lock(expected, `import ${filename}`, lockOptions);
      try {
        const found = await this.lookup(expected, lockOptions);
        if (found !== undefined) {
          await this.touch([expected], meta);
          return found;
        }
        const copied = await this.copyToStaging(source, filename, request.signal);
        try {
          if (copied.sha256 !== expected) {
            throw new DevclusterError('IMAGE_CHECKSUM_MISMATCH', `${source} has sha256 ${copied.sha256}, expected ${expected}`, {
              advice: 'Check --image-sha256 (or the manifest) against the file; nothing was imported.',
              details: { path: source, sha256: copied.sha256, expected },
              input: true,
            });
          }
          const entry = await this.publish(expected, copied.dir, filename, meta);
          await remember(expected);
          return entry;
        } finally {
          await rm(copied.dir, { recursive: true, force: true });
        }
      } finally {
        await lock?.release();
      }
    }

    // Unknown digest: copy and hash first, then publish under the digest found.
    const copied = await this.copyToStaging(source, filename, request.signal);
    try {
      const lock = await this.lock(copied.sha256, `import ${filename}`, lockOptions);
      try {
        const found = await this.lookup(copied.sha256, lockOptions);
        if (found !== undefined) {
          await this.touch([copied.sha256], meta);
          await remember(copied.sha256);
          return found;
        }
        const entry = await this.publish(copied.sha256, copied.dir, filename, meta);
        await remember(copied.sha256);
        return entry;
      } finally {
        await lock?.release();
      }
    } finally {
      await rm(copied.dir, { recursive: true, force: true });
    }
  }

  private async newStaging(tag: string): Promise<string> {
    const dir = join(this.root, '.staging', `${tag}.${process.pid}.${randomBytes(4).toString('hex')}`);
    await mkdir(dir, { recursive: true });
    return dir;
  }

  private async copyToStaging(source: string, filename: string, signal?: AbortSignal): Promise<{ dir: string; sha256: string }> {
    const dir = await this.newStaging('import');
    try {
      const hash = createHash('sha256');
      const hasher = new Transform({
        transform(chunk: Buffer, _encoding, callback) {
          hash.update(chunk);
          callback(null, chunk);
        },
      });
      await pipeline(
        createReadStream(source, { highWaterMark: 1024 * 1024 }),
        hasher,
        createWriteStream(join(dir, filename), { flush: true }),
        ...(signal === undefined ? [] : [{ signal }]),
      );
      return { dir, sha256: hash.digest('hex') };
    } catch (e) {
      await rm(dir, { recursive: true, force: true });
      throw e;
    }
  }

  /** Builds an entry in a staging directory and renames it into place (the caller holds the digest lock). */
  private async stageAndPublish(sha256: string, fill: (staging: string) => Promise<string>, meta: EntryMetadata): Promise<CacheEntry> {
    const staging = await this.newStaging(sha256);
    try {
      const file = await fill(staging);
      return await this.publish(sha256, staging, file, meta);
    } finally {
      await rm(staging, { recursive: true, force: true });
    }
  }

  private async publish(sha256: string, staging: string, file: string, meta: EntryMetadata): Promise<CacheEntry> {
    // The bytes that get a stamp are the bytes that were inspected: the check runs on the staged copy.
    if (meta.kind !== 'kernel' && meta.kind !== 'initrd') {
      await assertSelfContained(join(staging, file), {
        label: meta.source ?? meta.name ?? file,
        ...(meta.kind === undefined ? {} : { format: meta.kind }),
      });
    }
    const st = await writeStamp(staging, file, sha256);
    const dir = this.entryDir(sha256);
    await rm(dir, { recursive: true, force: true });
    await rename(staging, dir);
    const at = now();
    await this.updateIndex((index) => {
      index.entries[sha256] = { ...index.entries[sha256], ...pickMeta(meta), file, size: st.size, addedAt: at, lastUsedAt: at };
    });
    return { sha256, path: join(dir, file), file, size: st.size };
  }

  /** Removes an entry (and its partial download). True when something was removed. */
  async remove(sha256: string, options: { wait?: boolean } = {}): Promise<boolean> {
    assertSha(sha256);
    const lock = await this.lock(sha256, 'remove', { wait: options.wait ?? true });
    if (lock === undefined) return false;
    try {
      let existed = true;
      try {
        await stat(this.entryDir(sha256));
      } catch {
        existed = false;
      }
      await rm(this.entryDir(sha256), { recursive: true, force: true });
      await rm(this.partPath(sha256), { force: true });
      await rm(`${this.partPath(sha256)}.json`, { force: true });
      await this.updateIndex((index) => {
        delete index.entries[sha256];
        // A name loses this file; a name left without any disk is gone (its kernel and initrd alone boot nothing).
        for (const [name, image] of Object.entries(index.images)) {
          const formats = Object.fromEntries(Object.entries(image.formats).filter(([, sha]) => sha !== sha256));
          if (Object.keys(formats).length === Object.keys(image.formats).length) continue;
          if (Object.keys(formats).some((k) => isDiskFormat(k))) index.images[name] = { ...image, formats };
          else delete index.images[name];
        }
        for (const [path, memo] of Object.entries(index.sources)) if (memo.sha256 === sha256) delete index.sources[path];
      });
      return existed;
    } finally {
      await lock.release();
    }
  }

  async readIndex(): Promise<CacheIndex> {
    let raw: unknown;
    try {
      raw = await readJsonIfExists(join(this.root, 'index.json'));
    } catch (e) {
      // The index is a record of convenience (times, names): a broken one is rebuilt, not fatal.
      logLine('warn', `image cache: index.json is unreadable (${(e as Error).message}); starting a new one`);
      return EMPTY_INDEX();
    }
    if (typeof raw !== 'object' || raw === null || (raw as { schemaVersion?: unknown }).schemaVersion !== 1) return EMPTY_INDEX();
    const r = raw as Partial<CacheIndex>;
    const obj = <T>(v: unknown): Record<string, T> => (typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as Record<string, T>) : {});
    return { schemaVersion: 1, entries: obj(r.entries), images: obj(r.images), sources: obj(r.sources) };
  }

  /** Read-modify-write of index.json under its own lock. */
  async updateIndex(change: (index: CacheIndex) => void): Promise<CacheIndex> {
    await mkdir(this.root, { recursive: true });
    const lock = await this.lock('index', 'index');
    try {
      const index = await this.readIndex();
      change(index);
      await writeJsonAtomic(join(this.root, 'index.json'), index);
      return index;
    } finally {
      await lock?.release();
    }
  }

  /** Records that entries were used now (and fills in what is known about them). */
  async touch(sha256s: readonly string[], meta: EntryMetadata = {}): Promise<void> {
    const at = now();
    await this.updateIndex((index) => {
      for (const sha of sha256s) {
        const existing = index.entries[sha];
        index.entries[sha] = { ...pickMeta(meta), ...existing, file: existing?.file ?? '', size: existing?.size ?? 0, addedAt: existing?.addedAt ?? at, lastUsedAt: at };
      }
    });
  }

  async namedImage(name: string): Promise<NamedImage | undefined> {
    return (await this.readIndex()).images[name];
  }

  async recordNamedImage(name: string, image: NamedImage): Promise<void> {
    await this.updateIndex((index) => {
      index.images[name] = image;
      for (const [kind, sha] of Object.entries(image.formats)) {
        const entry = index.entries[sha];
        if (entry !== undefined) index.entries[sha] = { ...entry, name, version: image.version, kind: kind as ArtifactKind };
      }
    });
  }

  /** Removes a name only; entries it shared with other names are labelled with one of those. */
  async forgetNamedImage(name: string): Promise<void> {
    await this.updateIndex((index) => {
      delete index.images[name];
      for (const [sha, entry] of Object.entries(index.entries)) {
        if (entry.name !== name) continue;
        const other = Object.entries(index.images).find(([, image]) => Object.values(image.formats).includes(sha));
        const { name: _gone, version: _v, ...rest } = entry;
        index.entries[sha] = other === undefined ? rest : { ...rest, name: other[0], version: other[1].version };
      }
    });
  }

  /** Every digest directory, with what the index knows about it. */
  async list(): Promise<CachedImageRow[]> {
    let names: string[];
    try {
      names = (await readdir(this.root)).filter((n) => SHA256_PATTERN.test(n)).sort();
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return [];
      throw e;
    }
    const index = await this.readIndex();
    const rows: CachedImageRow[] = [];
    for (const sha256 of names) {
      const entry = index.entries[sha256];
      const stamp = await readStamp(this.entryDir(sha256));
      const file = stamp?.file ?? (entry?.file === '' ? undefined : entry?.file);
      let size: number | undefined;
      if (file !== undefined) {
        try {
          size = (await stat(join(this.entryDir(sha256), file))).size;
        } catch {
          size = undefined;
        }
      }
      rows.push({
        ...pickMeta(entry ?? {}),
        sha256,
        file,
        size,
        addedAt: entry?.addedAt,
        lastUsedAt: entry?.lastUsedAt,
      });
    }
    return rows;
  }

  /**
   * Removes every entry whose digest is not referenced (nor the kernel or initrd
   * of a referenced named image), every partial download
   * and staging leftover no running process owns. Entries another process is
   * fetching right now (its lock is held) are left alone.
   */
  async prune(referenced: ReadonlySet<string>, options: { dryRun?: boolean } = {}): Promise<PruneResult> {
    const keep = withCompanions(referenced, await this.readIndex());
    const removed: Array<{ sha256: string; file: string | undefined; size: number }> = [];
    const kept: string[] = [];
    let bytesFreed = 0;
    for (const row of await this.list()) {
      if (keep.has(row.sha256)) {
        kept.push(row.sha256);
        continue;
      }
      if (options.dryRun !== true && !(await this.remove(row.sha256, { wait: false }))) continue;
      removed.push({ sha256: row.sha256, file: row.file, size: row.size ?? 0 });
      bytesFreed += row.size ?? 0;
    }
    let partialsRemoved = 0;
    const partDir = join(this.root, '.part');
    for (const name of await readdir(partDir).catch(() => [] as string[])) {
      const m = /^([0-9a-f]{64})\.part$/.exec(name);
      if (m === null) continue;
      const sha = m[1] as string;
      const size = await stat(join(partDir, name)).then((s) => s.size, () => 0);
      if (options.dryRun !== true) {
        const lock = await this.lock(sha, 'prune', { wait: false });
        if (lock === undefined) continue;
        try {
          await rm(join(partDir, name), { force: true });
          await rm(join(partDir, `${name}.json`), { force: true });
        } finally {
          await lock.release();
        }
      }
      partialsRemoved += 1;
      bytesFreed += size;
    }
    if (options.dryRun !== true) {
      const stagingDir = join(this.root, '.staging');
      for (const name of await readdir(stagingDir).catch(() => [] as string[])) {
        const pid = Number(/\.(\d+)\.[0-9a-f]+$/.exec(name)?.[1]);
        if (Number.isInteger(pid) && pid > 0 && processAlive(pid)) continue;
        await rm(join(stagingDir, name), { recursive: true, force: true });
      }
    }
    return { removed, kept, partialsRemoved, bytesFreed };
  }
}

/**
 * A profile's state may record only its disk's digest; the kernel and initrd
 * of the same named image boot with it, so they are kept with it.
 */
export function withCompanions(referenced: ReadonlySet<string>, index: CacheIndex): Set<string> {
  const keep = new Set(referenced);
  for (const image of Object.values(index.images)) {
    const shas = Object.values(image.formats);
    if (shas.some((sha) => referenced.has(sha))) {
      if (image.formats.kernel !== undefined) keep.add(image.formats.kernel);
      if (image.formats.initrd !== undefined) keep.add(image.formats.initrd);
    }
  }
  return keep;
}

function pickMeta(meta: EntryMetadata): EntryMetadata {
  return {
    ...(meta.kind === undefined ? {} : { kind: meta.kind }),
    ...(meta.source === undefined ? {} : { source: meta.source }),
    ...(meta.name === undefined ? {} : { name: meta.name }),
    ...(meta.version === undefined ? {} : { version: meta.version }),
  };
}
