import { chmod, copyFile, lstat, mkdir, rename, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { run } from '../host/exec.ts';
import { hashFile } from '../image/cache.ts';
import { download } from '../image/download.ts';
import { fetchText as defaultFetchText } from '../image/fetch-text.ts';
import type { FetchText } from '../image/fetch-text.ts';
import type { DownloadProgress } from '../image/progress.ts';
import { writeJsonAtomic } from '../profile/atomic.ts';
import { logLine } from '../ui/context.ts';
import { DevclusterError, isDevclusterError } from '../ui/errors.ts';
import type { BundleFile, BundleManifest } from './bundle-manifest.ts';
import { checksumFor } from './checksum-file.ts';
import './download-errors.ts';
import { BUNDLE_ARCHITECTURES, bundleArtifacts, hostKubectlArtifact } from './release-urls.ts';
import type { BundleArchitecture, HostOs, ReleaseArtifact, ReleaseUrls } from './release-urls.ts';
import { bundleComponents, kubernetesRelease, unsupportedVersionError } from './versions.ts';

/**
 * The node bundle from the projects' official release artifacts: every
 * artifact's published checksum is read first (a mirror missing one fails
 * before anything large is fetched), then each artifact goes through
 * download() (resumable part files, sha256 checked before the file is
 * kept), then the system tar takes only the files the bundle needs out of the
 * archives, and manifest.json is written last. Verified artifacts wait in
 * `<partDir>/<version>-linux-<arch>/` until the bundle is complete, so a run
 * that failed half way downloads only what it lacked. Nothing is installed:
 * the caller hands the staging directory to the bundle store.
 */
export type BundleDownloadEvent =
  | { readonly kind: 'checksums'; readonly count: number }
  | { readonly kind: 'download'; readonly artifact: string; readonly url: string; readonly index: number; readonly count: number; readonly progress: DownloadProgress }
  /** An artifact verified by an earlier, interrupted run was kept. */
  | { readonly kind: 'reused'; readonly artifact: string; readonly index: number; readonly count: number }
  | { readonly kind: 'extract' };

export interface DownloadBundleOptions {
  readonly version: string;
  readonly arch: string;
  readonly urls: ReleaseUrls;
  /** An empty directory to fill with the bundle (created when missing). */
  readonly stagingDir: string;
  /** Where part files and verified artifacts wait between runs. */
  readonly partDir: string;
  /** The offline setting: refuse before any request. */
  readonly offline?: boolean;
  readonly signal?: AbortSignal;
  readonly onProgress?: (event: BundleDownloadEvent) => void;
  /** Environment for the proxy variables. Default process.env. */
  readonly env?: NodeJS.ProcessEnv;
  /** Default: src/image/fetch-text.ts. */
  readonly fetchText?: FetchText;
  /** Checksums a start already read while planning (publishedChecksums), so they are not read twice. */
  readonly published?: PublishedChecksums;
}

/** Every artifact's published sha256, in bundleArtifacts() order, for one version and architecture. */
export interface PublishedChecksums {
  readonly version: string;
  readonly arch: BundleArchitecture;
  readonly sha256: readonly string[];
}

export interface DownloadedArtifact {
  readonly name: string;
  readonly url: string;
  readonly sha256: string;
  readonly size: number;
  /** Bytes received by this run (0 when reused); less than size after a resume. */
  readonly bytesTransferred: number;
  readonly resumedFrom: number;
  readonly reused: boolean;
}

export interface DownloadBundleResult {
  readonly manifest: BundleManifest;
  readonly artifacts: readonly DownloadedArtifact[];
}

const TAR_TIMEOUT_MS = 5 * 60_000;

function requireArch(arch: string): BundleArchitecture {
  if ((BUNDLE_ARCHITECTURES as readonly string[]).includes(arch)) return arch as BundleArchitecture;
  throw new DevclusterError('HOST_UNSUPPORTED', `Kubernetes release artifacts are published for ${BUNDLE_ARCHITECTURES.join(' and ')}, not ${arch}`, {
    details: { arch },
  });
}

export function refuseOffline(what: string, version: string): DevclusterError {
  return new DevclusterError('KUBE_DOWNLOAD_OFFLINE', `${what} for Kubernetes ${version} is not cached, and offline is set`, {
    advice: `Run once with offline=false to download it, or put a bundle in the cache: devcluster bundle import <dir|archive>, or devcluster bundle build --kubernetes-version ${version}.`,
    details: { version },
    // The offline setting asked for this refusal: nothing ran, so no command log is kept either.
    input: true,
  });
}

/** The published sha256 of an artifact, from its checksum file. */
async function publishedSha256(a: ReleaseArtifact, fetch: FetchText, signal: AbortSignal | undefined, env: NodeJS.ProcessEnv | undefined): Promise<string> {
  let text: string;
  try {
    text = await fetch(a.checksumUrl, { ...(signal === undefined ? {} : { signal }), ...(env === undefined ? {} : { env }) });
  } catch (e) {
    if (signal?.aborted === true) throw abortReason(signal);
    throw new DevclusterError('KUBE_DOWNLOAD_FAILED', `the checksum of ${a.name}: ${(e as Error).message}`, {
      advice: `Check the network, or ${a.setting} if it points at a mirror: it must serve the project's own layout (${a.checksumUrl}).`,
      details: { url: a.checksumUrl, setting: a.setting },
      cause: e,
    });
  }
  const found = checksumFor(text, a.fileName);
  if (!found.ok) {
    throw new DevclusterError('KUBE_CHECKSUM_FILE_INVALID', `${a.checksumUrl}: ${found.problem}`, {
      advice: `${a.fileName} cannot be verified, so it was not downloaded. If ${a.setting} points at a mirror, copy the project's checksum file there unchanged.`,
      details: { url: a.checksumUrl, setting: a.setting, fileName: a.fileName },
    });
  }
  return found.sha256;
}

function abortReason(signal: AbortSignal): DevclusterError {
  const reason: unknown = signal.reason;
  return isDevclusterError(reason) ? reason : new DevclusterError('INTERRUPTED', 'the download was cancelled', { cause: reason });
}

/** download()'s image-worded failures, said for a release artifact and the setting that points at it. */
function artifactFailure(e: unknown, a: ReleaseArtifact, checksumUrl: string): unknown {
  if (!isDevclusterError(e)) return e;
  if (e.id === 'IMAGE_CHECKSUM_MISMATCH') {
    return new DevclusterError('KUBE_DOWNLOAD_CHECKSUM_MISMATCH', `${a.url} has sha256 ${String(e.details['sha256'] ?? 'of another size')}, but ${checksumUrl} gives ${String(e.details['expected'] ?? '')}`, {
      advice: `The file was deleted and nothing was cached. Run the command again; if it repeats, the server (${a.setting}) serves another file than its checksum names.`,
      details: { ...e.details, setting: a.setting, checksumUrl },
      cause: e,
    });
  }
  if (e.id === 'IMAGE_DOWNLOAD_FAILED' || e.id === 'IMAGE_DOWNLOAD_REJECTED') {
    const status = e.details['status'];
    return new DevclusterError('KUBE_DOWNLOAD_FAILED', `${a.name}: ${e.message}`, {
      advice: status === 404
        ? `${a.url} does not exist: check ${a.setting} (a mirror must keep the project's layout).`
        : `Check the network (or the proxy) and run the command again: it resumes where it stopped.${typeof status === 'number' ? ` ${a.setting} is where it comes from.` : ''}`,
      details: { ...e.details, setting: a.setting },
      cause: e,
    });
  }
  return e;
}

async function moveFile(from: string, to: string): Promise<void> {
  try {
    await rename(from, to);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'EXDEV') throw e;
    await copyFile(from, to);
    await rm(from, { force: true });
  }
}

/** The members of a gzip tar archive as the system tar lists them. */
async function listArchive(archive: string, signal: AbortSignal | undefined): Promise<string[]> {
  const r = await run('tar', ['-tzf', archive], { parse: true, timeoutMs: TAR_TIMEOUT_MS, ...(signal === undefined ? {} : { signal }) });
  return r.stdout.split('\n').map((l) => l.replace(/\r$/, '')).filter((l) => l !== '');
}

/**
 * Takes the named members out of an archive into `into`: each must be in the
 * archive (with or without a ./ prefix) and come out as a regular file.
 */
async function extractMembers(a: ReleaseArtifact, archive: string, into: string, signal: AbortSignal | undefined): Promise<Map<string, string>> {
  const invalid = (problem: string, cause?: unknown) => new DevclusterError('KUBE_DOWNLOAD_ARCHIVE_INVALID', `${a.fileName} (verified against its published checksum) ${problem}`, {
    advice: `If ${a.setting} points at a mirror, it serves another archive than the project publishes under that name.`,
    details: { url: a.url, archive },
    ...(cause === undefined ? {} : { cause }),
  });
  let members: string[];
  try {
    members = await listArchive(archive, signal);
  } catch (e) {
    if (isDevclusterError(e) && e.id === 'HOST_COMMAND_FAILED') throw invalid('cannot be read by tar', e);
    throw e;
  }
  const stored = new Map<string, string>();
  for (const m of members) stored.set(m.replace(/^\.\//, ''), m);
  const missing = a.contents.filter((c) => !stored.has(c.member)).map((c) => c.member);
  if (missing.length > 0) throw invalid(`does not contain ${missing.join(', ')}`);
  await rm(into, { recursive: true, force: true });
  await mkdir(into, { recursive: true });
  const names = a.contents.map((c) => stored.get(c.member) as string);
  try {
    await run('tar', ['-xzf', archive, '-C', into, ...names], { timeoutMs: TAR_TIMEOUT_MS, ...(signal === undefined ? {} : { signal }) });
  } catch (e) {
    if (isDevclusterError(e) && e.id === 'HOST_COMMAND_FAILED') throw invalid('cannot be unpacked by tar', e);
    throw e;
  }
  const out = new Map<string, string>();
  for (const c of a.contents) {
    const path = join(into, ...c.member.split('/'));
    const st = await lstat(path).catch(() => undefined);
    if (st === undefined || !st.isFile()) throw invalid(`holds ${c.member} as ${st === undefined ? 'nothing tar could write' : 'something other than a regular file'}`);
    out.set(c.path, path);
  }
  return out;
}

interface Fetched {
  readonly artifact: ReleaseArtifact;
  readonly path: string;
  readonly result: DownloadedArtifact;
}

/** One artifact: a file verified by an earlier run is kept if it still has the published sha256. */
async function fetchArtifact(a: ReleaseArtifact, sha256: string, work: string, index: number, count: number, o: DownloadBundleOptions): Promise<Fetched> {
  const path = join(work, a.fileName);
  const existing = await stat(path).catch(() => undefined);
  if (existing?.isFile() === true) {
    const h = await hashFile(path, o.signal);
    if (h.sha256 === sha256) {
      o.onProgress?.({ kind: 'reused', artifact: a.name, index, count });
      return { artifact: a, path, result: { name: a.name, url: a.url, sha256, size: h.size, bytesTransferred: 0, resumedFrom: 0, reused: true } };
    }
    logLine('info', `bundle download: ${path} no longer has the published sha256; downloading it again`);
    await rm(path, { force: true });
  }
  try {
    const r = await download({
      url: a.url,
      sha256,
      destination: path,
      partPath: join(work, `${a.fileName}.part`),
      ...(o.signal === undefined ? {} : { signal: o.signal }),
      ...(o.env === undefined ? {} : { env: o.env }),
      ...(o.onProgress === undefined ? {} : { onProgress: (progress: DownloadProgress) => o.onProgress?.({ kind: 'download', artifact: a.name, url: a.url, index, count, progress }) }),
    });
    return { artifact: a, path, result: { name: a.name, url: a.url, sha256, size: r.size, bytesTransferred: r.bytesTransferred, resumedFrom: r.resumedFrom, reused: false } };
  } catch (e) {
    throw artifactFailure(e, a, a.checksumUrl);
  }
}

async function manifestEntry(stagingDir: string, path: string): Promise<BundleFile> {
  const h = await hashFile(join(stagingDir, ...path.split('/')));
  return { path, size: h.size, mode: '0755', sha256: h.sha256 };
}

/**
 * Fills `stagingDir` with the node bundle of a supported Kubernetes version:
 * bin/ (kubeadm kubelet kubectl containerd ctr containerd-shim-runc-v2 runc
 * crictl), cni/ (bridge host-local loopback portmap), manifest.json
 * (images: [], since containerd pulls them in the guest). On failure the
 * staging directory holds nothing of it.
 */
/**
 * Reads every artifact's checksum file, writing nothing: a start calls it
 * while planning, so release servers it cannot reach are known before the
 * profile exists.
 */
export async function publishedChecksums(o: Pick<DownloadBundleOptions, 'version' | 'arch' | 'urls' | 'offline' | 'signal' | 'env' | 'fetchText'>): Promise<PublishedChecksums> {
  const release = kubernetesRelease(o.version);
  if (release === undefined) throw unsupportedVersionError(o.version, 'bundle download');
  const arch = requireArch(o.arch);
  if (o.offline === true) throw refuseOffline('The node bundle', o.version);
  const fetch = o.fetchText ?? defaultFetchText;
  const sha256: string[] = [];
  for (const a of bundleArtifacts(release, arch, o.urls)) sha256.push(await publishedSha256(a, fetch, o.signal, o.env));
  return { version: o.version, arch, sha256 };
}

export async function downloadBundle(o: DownloadBundleOptions): Promise<DownloadBundleResult> {
  const release = kubernetesRelease(o.version);
  if (release === undefined) throw unsupportedVersionError(o.version, 'bundle download');
  const arch = requireArch(o.arch);
  if (o.offline === true) throw refuseOffline('The node bundle', o.version);
  const artifacts = bundleArtifacts(release, arch, o.urls);
  const work = join(o.partDir, `${o.version}-linux-${arch}`);
  await mkdir(work, { recursive: true });

  o.onProgress?.({ kind: 'checksums', count: artifacts.length });
  const planned = o.published !== undefined && o.published.version === o.version && o.published.arch === arch ? o.published : undefined;
  const published = (planned ?? (await publishedChecksums(o))).sha256;

  const fetched: Fetched[] = [];
  for (const [i, a] of artifacts.entries()) fetched.push(await fetchArtifact(a, published[i] as string, work, i + 1, artifacts.length, o));

  o.onProgress?.({ kind: 'extract' });
  // Bundle path -> file to move there, all gathered before the staging directory is touched.
  const placed = new Map<string, string>();
  for (const f of fetched) {
    if (f.artifact.contents.length === 1 && f.artifact.contents[0]?.member === '') {
      placed.set((f.artifact.contents[0] as { path: string }).path, f.path);
      continue;
    }
    for (const [path, from] of await extractMembers(f.artifact, f.path, join(work, `${f.artifact.name}.extract`), o.signal)) placed.set(path, from);
  }

  const created = ['bin', 'cni', 'manifest.json'].map((p) => join(o.stagingDir, p));
  try {
    await mkdir(join(o.stagingDir, 'bin'), { recursive: true });
    await mkdir(join(o.stagingDir, 'cni'), { recursive: true });
    for (const [path, from] of placed) {
      const to = join(o.stagingDir, ...path.split('/'));
      // Single binaries are the verified downloads themselves: copied, so a failure below leaves them for the next run.
      if (fetched.some((f) => f.path === from)) await copyFile(from, to);
      else await moveFile(from, to);
      await chmod(to, 0o755);
    }
    const files: BundleFile[] = [];
    for (const path of [...placed.keys()].sort()) files.push(await manifestEntry(o.stagingDir, path));
    const manifest: BundleManifest = {
      schemaVersion: 1,
      kubernetesVersion: release.version,
      platform: { os: 'linux', architecture: arch },
      components: bundleComponents(release),
      images: [],
      files,
    };
    await writeJsonAtomic(join(o.stagingDir, 'manifest.json'), manifest);
    await rm(work, { recursive: true, force: true });
    return { manifest, artifacts: fetched.map((f) => f.result) };
  } catch (e) {
    for (const p of created) await rm(p, { recursive: true, force: true });
    throw e;
  }
}

export interface DownloadHostKubectlOptions {
  readonly version: string;
  readonly os: HostOs;
  readonly arch: string;
  readonly urls: ReleaseUrls;
  /** The kubectl file to write (kubectl.exe on Windows); replaced only by a verified file. */
  readonly destination: string;
  readonly partDir: string;
  readonly offline?: boolean;
  readonly signal?: AbortSignal;
  readonly onProgress?: (progress: DownloadProgress) => void;
  readonly env?: NodeJS.ProcessEnv;
  readonly fetchText?: FetchText;
}

/**
 * kubectl for a host whose platform is not the bundle's (macOS, Windows):
 * the release's own build for that OS and architecture, verified against its
 * .sha256. Any released version is accepted (a client may differ from the
 * cluster by one minor); the caller decides which.
 */
export async function downloadHostKubectl(o: DownloadHostKubectlOptions): Promise<DownloadedArtifact> {
  if (!/^v1\.\d+\.\d+$/.test(o.version)) throw unsupportedVersionError(o.version, 'kubectl download');
  const arch = requireArch(o.arch);
  if (o.offline === true) throw refuseOffline('kubectl', o.version);
  const a = hostKubectlArtifact(o.version, o.os, arch, o.urls);
  const sha256 = await publishedSha256(a, o.fetchText ?? defaultFetchText, o.signal, o.env);
  let r;
  try {
    r = await download({
      url: a.url,
      sha256,
      destination: o.destination,
      partPath: join(o.partDir, `kubectl-${o.version}-${o.os}-${arch}.part`),
      ...(o.signal === undefined ? {} : { signal: o.signal }),
      ...(o.env === undefined ? {} : { env: o.env }),
      ...(o.onProgress === undefined ? {} : { onProgress: o.onProgress }),
    });
  } catch (e) {
    throw artifactFailure(e, a, a.checksumUrl);
  }
  if (o.os !== 'windows') await chmod(o.destination, 0o755);
  return { name: 'kubectl', url: a.url, sha256, size: r.size, bytesTransferred: r.bytesTransferred, resumedFrom: r.resumedFrom, reused: false };
}
