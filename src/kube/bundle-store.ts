import { createHash, randomBytes } from 'node:crypto';
import { chmod, lstat, mkdir, readdir, readFile, rename, rm } from 'node:fs/promises';
import { hostname } from 'node:os';
import { basename, dirname, join, resolve } from 'node:path';
import { DevclusterError } from '../ui/errors.ts';
import './bundle-errors.ts';
import { parseBundleManifest, verifyBundleFiles } from './bundle-manifest.ts';
import type { BundleManifest } from './bundle-manifest.ts';
import { homePaths } from '../profile/paths.ts';
import { readJsonIfExists, writeJsonAtomic } from '../profile/atomic.ts';
import { acquireProfileLock } from '../profile/lock.ts';
import { processAlive, procStat } from '../host/process.ts';
import { formatBytes } from '../image/progress.ts';

/**
 * The Kubernetes node bundle cache: <home>/cache/kubernetes/<version>/ holds
 * one bundle (images/kubernetes/README.md, manifest.json at its root) as it
 * was built, downloaded or imported. Beside the bundles:
 *   <version>.source.json   how it got there (not in the bundle: manifest.json's bytes stay as built)
 *   .staging-<pid>-…        a bundle being imported or downloaded
 *   .staging-build-<version> the files of a build, kept when it is interrupted so the next run reuses them
 *   .previous-<version>     the bundle being replaced, for the moment between two renames
 *   .locks/                 one lock per version while a bundle is put in place
 *   .downloads/             release artifacts kept by the downloader (bundle-step.ts) to resume
 * A bundle enters only through installBundle: verified (every sha256), then
 * renamed into place, so a version directory is either complete or absent.
 */

export type BundleSource = 'build' | 'import' | 'download';
export const BUNDLE_SOURCES: readonly BundleSource[] = ['build', 'import', 'download'];

const VERSION_DIR = /^v1\.\d+\.\d+$/;
const STAGING_PREFIX = '.staging-';
const BUILD_STAGING_PREFIX = '.staging-build-';
const PREVIOUS_PREFIX = '.previous-';
const SOURCE_SUFFIX = '.source.json';
const LOCKS = '.locks';
/** src/cluster/bundle-step.ts keeps the downloads of release artifacts here. */
const DOWNLOADS = '.downloads';

export function bundleCacheDir(home: string): string {
  return homePaths(home).kubernetesCache;
}

/** Where `bundle build` builds a version: one fixed directory, so an interrupted build is continued. */
export function buildStagingDir(home: string, version: string): string {
  return join(bundleCacheDir(home), `${BUILD_STAGING_PREFIX}${version}`);
}

export function isBundleVersion(version: string): boolean {
  return VERSION_DIR.test(version);
}

/** Everything the cache holds for one version, for `bundle rm`: the bundle, one set aside by a crashed replace, its source record, its lock. */
export function bundleVersionPaths(home: string, version: string): { dir: string; aside: string; source: string; lock: string } {
  const cache = bundleCacheDir(home);
  return { dir: join(cache, version), aside: join(cache, `${PREVIOUS_PREFIX}${version}`), source: sourcePath(cache, version), lock: join(cache, LOCKS, `${version}.lock`) };
}

function sourcePath(cache: string, version: string): string {
  return join(cache, `${version}${SOURCE_SUFFIX}`);
}

interface SourceRecord {
  readonly source: BundleSource;
  readonly installedAt: string;
  /** sha256 of the manifest.json it describes: a record left from a replaced bundle does not apply. */
  readonly manifestSha256: string;
  /** The imported path, the download base, the build script: shown by `bundle list -o json`. */
  readonly origin?: string;
}

function sha256(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex');
}

async function readSourceRecord(cache: string, version: string, manifestSha256: string): Promise<SourceRecord | undefined> {
  const raw = await readJsonIfExists(sourcePath(cache, version)).catch(() => undefined) as Partial<SourceRecord> | undefined;
  if (typeof raw !== 'object' || raw === null) return undefined;
  if (!BUNDLE_SOURCES.includes(raw.source as BundleSource) || raw.manifestSha256 !== manifestSha256) return undefined;
  return {
    source: raw.source as BundleSource,
    installedAt: typeof raw.installedAt === 'string' ? raw.installedAt : '',
    manifestSha256,
    ...(typeof raw.origin === 'string' ? { origin: raw.origin } : {}),
  };
}

type Inspected =
  | { readonly status: 'absent' }
  | { readonly status: 'ok'; readonly manifest: BundleManifest; readonly manifestSha256: string }
  | { readonly status: 'partial' | 'invalid'; readonly manifest?: BundleManifest; readonly manifestSha256?: string; readonly problems: readonly string[] };

/** Reads manifest.json's bytes: undefined when there is none. */
async function readManifestBytes(dir: string): Promise<Buffer | undefined> {
  try {
    return await readFile(join(dir, 'manifest.json'));
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw e;
  }
}

/** Parses manifest.json's bytes; the problems when it is not a bundle manifest. */
export function parseManifestBytes(bytes: Uint8Array): { manifest: BundleManifest } | { problems: readonly string[] } {
  let raw: unknown;
  try {
    raw = JSON.parse(Buffer.from(bytes).toString('utf8')) as unknown;
  } catch (e) {
    return { problems: [`manifest.json is not valid JSON (${(e as Error).message})`] };
  }
  const parsed = parseBundleManifest(raw);
  return parsed.ok ? { manifest: parsed.value } : { problems: parsed.problems.map((p) => `manifest.json: ${p}`) };
}

/**
 * The cheap check of a cached bundle: manifest.json parses, names this
 * version, and every file it lists is a regular file of the listed size.
 * The sha256s were checked when it was installed (and the guest checks them again).
 */
async function inspectBundle(dir: string, version: string): Promise<Inspected> {
  const st = await lstat(dir).catch(() => undefined);
  if (st === undefined) return { status: 'absent' };
  if (!st.isDirectory()) return { status: 'invalid', problems: ['not a directory'] };
  let bytes: Buffer | undefined;
  try {
    bytes = await readManifestBytes(dir);
  } catch (e) {
    return { status: 'invalid', problems: [`manifest.json cannot be read: ${(e as Error).message}`] };
  }
  if (bytes === undefined) return { status: 'partial', problems: ['no manifest.json: an unfinished build, download or copy'] };
  const parsed = parseManifestBytes(bytes);
  if ('problems' in parsed) return { status: 'invalid', problems: parsed.problems };
  const { manifest } = parsed;
  const manifestSha256 = sha256(bytes);
  const problems: string[] = [];
  if (manifest.kubernetesVersion !== version) problems.push(`its manifest is for ${manifest.kubernetesVersion}, not ${version}`);
  for (const f of manifest.files) {
    const fst = await lstat(join(dir, ...f.path.split('/'))).catch(() => undefined);
    if (fst === undefined) problems.push(`${f.path} is missing`);
    else if (!fst.isFile()) problems.push(`${f.path} is not a regular file`);
    else if (fst.size !== f.size) problems.push(`${f.path} is ${fst.size} bytes, the manifest says ${f.size}`);
  }
  return problems.length > 0 ? { status: 'invalid', manifest, manifestSha256, problems } : { status: 'ok', manifest, manifestSha256 };
}

export interface FoundBundle {
  readonly dir: string;
  readonly manifest: BundleManifest;
  /** sha256 of manifest.json's bytes: what the guest's install marker and the medium's record name. */
  readonly manifestSha256: string;
}

/**
 * The cached bundle of a Kubernetes version, when it is complete (see
 * inspectBundle); undefined when there is none or it is partial or damaged.
 * Reads only. After a crash in the middle of a replace, the bundle set aside
 * is the one found.
 */
export async function findBundle(home: string, version: string): Promise<FoundBundle | undefined> {
  if (!isBundleVersion(version)) return undefined;
  const cache = bundleCacheDir(home);
  const dir = join(cache, version);
  const found = await inspectBundle(dir, version);
  if (found.status === 'ok') return { dir, manifest: found.manifest, manifestSha256: found.manifestSha256 };
  if (found.status !== 'absent') return undefined;
  const aside = join(cache, `${PREVIOUS_PREFIX}${version}`);
  const previous = await inspectBundle(aside, version);
  return previous.status === 'ok' ? { dir: aside, manifest: previous.manifest, manifestSha256: previous.manifestSha256 } : undefined;
}

/** Bytes a tree takes on disk (allocated blocks where the system reports them). */
async function diskUsage(path: string): Promise<number> {
  const st = await lstat(path).catch(() => undefined);
  if (st === undefined) return 0;
  let total = st.blocks !== undefined && st.blocks > 0 ? st.blocks * 512 : st.size;
  if (st.isDirectory()) {
    const names = await readdir(path).catch(() => [] as string[]);
    for (const name of names) total += await diskUsage(join(path, name));
  }
  return total;
}

/** One row of `bundle list`, also its JSON shape. */
export interface BundleListItem {
  readonly version: string;
  readonly dir: string;
  /** ok: complete (cheap check); partial: no manifest.json yet; invalid: see problems. */
  readonly status: 'ok' | 'partial' | 'invalid';
  readonly source: BundleSource | null;
  readonly origin: string | null;
  readonly installedAt: string | null;
  readonly kubernetesVersion: string | null;
  readonly platform: string | null;
  readonly components: Readonly<Record<string, string>>;
  readonly images: number | null;
  readonly files: number | null;
  readonly sizeBytes: number;
  readonly problems: readonly string[];
}

/** Something in the cache directory that is not a bundle but takes space. */
export interface BundleLeftover {
  readonly path: string;
  /**
   * build: an interrupted `bundle build`; staging: an import or download (inProgress when its process runs);
   * replaced: a bundle being replaced; downloads: release artifacts a download keeps to resume or reuse.
   */
  readonly kind: 'build' | 'staging' | 'replaced' | 'downloads';
  readonly version: string | null;
  readonly inProgress: boolean;
  readonly sizeBytes: number;
}

export interface BundleListing {
  readonly cache: string;
  readonly bundles: readonly BundleListItem[];
  readonly leftovers: readonly BundleLeftover[];
}

async function listItem(cache: string, dir: string, version: string): Promise<BundleListItem> {
  const inspected = VERSION_DIR.test(version)
    ? await inspectBundle(dir, version)
    : { status: 'invalid' as const, problems: ['not a Kubernetes version directory (names are like v1.37.2)'] };
  const manifest = inspected.status === 'absent' ? undefined : inspected.manifest;
  const manifestSha256 = inspected.status === 'absent' ? undefined : inspected.manifestSha256;
  const record = manifestSha256 === undefined ? undefined : await readSourceRecord(cache, version, manifestSha256);
  return {
    version,
    dir,
    status: inspected.status === 'absent' ? 'invalid' : inspected.status,
    source: record?.source ?? null,
    origin: record?.origin ?? null,
    installedAt: record?.installedAt ?? null,
    kubernetesVersion: manifest?.kubernetesVersion ?? null,
    platform: manifest === undefined ? null : `${manifest.platform.os}/${manifest.platform.architecture}`,
    components: manifest?.components ?? {},
    images: manifest?.images.length ?? null,
    files: manifest?.files.length ?? null,
    sizeBytes: await diskUsage(dir),
    problems: inspected.status === 'ok' || inspected.status === 'absent' ? [] : inspected.problems,
  };
}

/** A staging directory's owner, from its name: .staging-<pid>-<process start>-<host>-<random>. */
function stagingOwner(name: string): { pid: number; start: string; host: string } | undefined {
  const m = /^\.staging-(\d+)-(\w+)-([0-9a-f]{8})-[0-9a-f]+$/.exec(name);
  return m === null ? undefined : { pid: Number(m[1]), start: m[2] as string, host: m[3] as string };
}

const HOST_TAG = createHash('sha256').update(hostname()).digest('hex').slice(0, 8);

/** True unless the directory's process is known to be gone (another host's cannot be told). */
function stagingInProgress(name: string): boolean {
  const owner = stagingOwner(name);
  if (owner === undefined || owner.host !== HOST_TAG) return true;
  if (!processAlive(owner.pid)) return false;
  const now = procStat(owner.pid)?.startTime;
  return owner.start === '0' || now === undefined || now === owner.start;
}

/**
 * Every version directory in the cache (complete, partial or damaged: none is
 * hidden), and the leftovers that take space. Code-point order by version.
 */
export async function listBundles(home: string): Promise<BundleListing> {
  const cache = bundleCacheDir(home);
  let entries: string[];
  try {
    entries = await readdir(cache);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return { cache, bundles: [], leftovers: [] };
    throw e;
  }
  const names = new Set(entries);
  const bundles: BundleListItem[] = [];
  const leftovers: BundleLeftover[] = [];
  for (const name of entries) {
    const path = join(cache, name);
    if (name === LOCKS) continue;
    if (name === DOWNLOADS) {
      if ((await readdir(path).catch(() => [])).length > 0) leftovers.push({ path, kind: 'downloads', version: null, inProgress: false, sizeBytes: await diskUsage(path) });
      continue;
    }
    if (name.startsWith(BUILD_STAGING_PREFIX)) {
      leftovers.push({ path, kind: 'build', version: name.slice(BUILD_STAGING_PREFIX.length), inProgress: false, sizeBytes: await diskUsage(path) });
    } else if (name.startsWith(STAGING_PREFIX)) {
      leftovers.push({ path, kind: 'staging', version: null, inProgress: stagingInProgress(name), sizeBytes: await diskUsage(path) });
    } else if (name.startsWith(PREVIOUS_PREFIX)) {
      const version = name.slice(PREVIOUS_PREFIX.length);
      // With its version directory gone, the bundle set aside is the cached one (a crash between two renames).
      if (names.has(version)) leftovers.push({ path, kind: 'replaced', version, inProgress: false, sizeBytes: await diskUsage(path) });
      else bundles.push(await listItem(cache, path, version));
    } else if (name.endsWith(SOURCE_SUFFIX) || name.startsWith('.')) {
      continue;
    } else {
      bundles.push(await listItem(cache, path, name));
    }
  }
  const cmp = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);
  bundles.sort((a, b) => cmp(a.version, b.version) || cmp(a.dir, b.dir));
  leftovers.sort((a, b) => cmp(a.path, b.path));
  return { cache, bundles, leftovers };
}

/**
 * A new, empty staging directory in the cache (same file system, so
 * installBundle's rename is atomic), named after this process so that one
 * left by a process that died is removed by the next call.
 */
export async function createBundleStaging(home: string): Promise<string> {
  const dir = await bundleStagingPath(home);
  await mkdir(dir, { mode: 0o755 });
  return dir;
}

/** A fresh staging path that does not exist yet (for a directory renamed into it); the cache exists. */
export async function bundleStagingPath(home: string): Promise<string> {
  const cache = bundleCacheDir(home);
  await mkdir(cache, { recursive: true });
  await removeAbandonedStaging(cache);
  const start = procStat(process.pid)?.startTime ?? '0';
  return join(cache, `${STAGING_PREFIX}${process.pid}-${start}-${HOST_TAG}-${randomBytes(6).toString('hex')}`);
}

async function removeAbandonedStaging(cache: string): Promise<void> {
  for (const name of await readdir(cache).catch(() => [] as string[])) {
    if (stagingOwner(name) !== undefined && !stagingInProgress(name)) await rm(join(cache, name), { recursive: true, force: true });
  }
}

export interface InstallOptions {
  /** Where the bundle came from (the imported path, the download base URL), recorded beside it. */
  readonly origin?: string;
  readonly signal?: AbortSignal;
  readonly onStatus?: (message: string) => void;
}

export interface InstalledBundle {
  readonly version: string;
  readonly dir: string;
  readonly manifest: BundleManifest;
  readonly manifestSha256: string;
  readonly source: BundleSource;
  /** unchanged: the same manifest was already cached and complete; nothing was replaced. */
  readonly outcome: 'installed' | 'replaced' | 'unchanged';
}

export function bundleInvalid(what: string, problems: readonly string[], advice?: string): DevclusterError {
  const shown = problems.slice(0, 20);
  const more = problems.length > shown.length ? `\n  … and ${problems.length - shown.length} more` : '';
  return new DevclusterError('KUBE_BUNDLE_INVALID', `${what} is not a valid Kubernetes node bundle:\n  ${shown.join('\n  ')}${more}`, {
    advice: advice ?? 'Nothing was installed and the bundle cache is unchanged. Build the bundle again (`devcluster bundle build`), or import a complete copy.',
    details: { problems },
  });
}

/**
 * Verifies a bundle in a staging directory (from createBundleStaging, or the
 * build's) against its manifest, every sha256, then moves it into place as
 * <cache>/<version>. A complete cached bundle with the same manifest is kept
 * (unchanged); a different one is set aside, replaced, then removed, so a
 * crash leaves one of the two in place. A bad bundle is refused with
 * KUBE_BUNDLE_INVALID. In every case but success the staging directory is
 * removed and the cache is unchanged.
 */
export async function installBundle(home: string, stagingDir: string, source: BundleSource, options: InstallOptions = {}): Promise<InstalledBundle> {
  const cache = resolve(bundleCacheDir(home));
  const staging = resolve(stagingDir);
  if (dirname(staging) !== cache || !basename(staging).startsWith(STAGING_PREFIX)) {
    throw new Error(`installBundle: ${staging} is not a staging directory of ${cache} (make one with createBundleStaging)`);
  }
  try {
    const bytes = await readManifestBytes(staging);
    if (bytes === undefined) throw bundleInvalid('the bundle', ['there is no manifest.json at its root (an unfinished build, download or copy)']);
    const parsed = parseManifestBytes(bytes);
    if ('problems' in parsed) throw bundleInvalid('the bundle', parsed.problems);
    const { manifest } = parsed;
    const total = manifest.files.reduce((sum, f) => sum + f.size, 0);
    options.onStatus?.(`Verifying ${manifest.files.length} files (${formatBytes(total)}) against the manifest of Kubernetes ${manifest.kubernetesVersion}`);
    const verified = await verifyBundleFiles(staging, manifest, options.signal);
    if (!verified.ok) throw bundleInvalid(`the ${manifest.kubernetesVersion} bundle`, verified.problems);
    options.signal?.throwIfAborted();
    const version = manifest.kubernetesVersion;
    const lock = await acquireProfileLock(`Kubernetes bundle ${version}`, join(cache, LOCKS, `${version}.lock`), {
      command: `install bundle ${version}`,
      wait: true,
      pollMs: 100,
      ...(options.signal === undefined ? {} : { signal: options.signal }),
    });
    try {
      return await putInPlace(cache, staging, manifest, sha256(bytes), source, options.origin);
    } finally {
      await lock.release();
    }
  } finally {
    // Gone when it was renamed into place; anything else leaves nothing behind.
    await rm(staging, { recursive: true, force: true });
  }
}

async function putInPlace(cache: string, staging: string, manifest: BundleManifest, manifestSha256: string, source: BundleSource, origin: string | undefined): Promise<InstalledBundle> {
  const version = manifest.kubernetesVersion;
  const target = join(cache, version);
  const aside = join(cache, `${PREVIOUS_PREFIX}${version}`);
  const exists = async (p: string) => (await lstat(p).catch(() => undefined)) !== undefined;
  // An earlier replace that crashed: put its bundle back (only it was left), or finish its removal.
  if (await exists(aside)) {
    if (await exists(target)) await rm(aside, { recursive: true, force: true });
    else await rename(aside, target);
  }
  const record: SourceRecord = { source, installedAt: new Date().toISOString(), manifestSha256, ...(origin === undefined ? {} : { origin }) };
  const current = await inspectBundle(target, version);
  if (current.status === 'ok' && current.manifestSha256 === manifestSha256) {
    if ((await readSourceRecord(cache, version, manifestSha256)) === undefined) await writeJsonAtomic(sourcePath(cache, version), record);
    return { version, dir: target, manifest, manifestSha256, source, outcome: 'unchanged' };
  }
  await chmod(staging, 0o755);
  if (current.status !== 'absent') await rename(target, aside);
  await rename(staging, target);
  await writeJsonAtomic(sourcePath(cache, version), record);
  if (current.status !== 'absent') await rm(aside, { recursive: true, force: true });
  return { version, dir: target, manifest, manifestSha256, source, outcome: current.status === 'absent' ? 'installed' : 'replaced' };
}
