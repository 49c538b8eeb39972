import { createReadStream, createWriteStream } from 'node:fs';
import { cp, lstat, mkdir, open, readdir, readFile, rename, rm, stat, statfs } from 'node:fs/promises';
import { dirname, join, posix, resolve } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { createGunzip } from 'node:zlib';
import { run } from '../host/exec.ts';
import { DevclusterError, inputError, isDevclusterError } from '../ui/errors.ts';
import './bundle-errors.ts';
import { bundleCacheDir, bundleInvalid, bundleStagingPath, createBundleStaging, findBundle, installBundle, parseManifestBytes } from './bundle-store.ts';
import type { InstalledBundle } from './bundle-store.ts';
import { TarFormatError, readMemberText, tarMembers } from '../image/ova.ts';
import type { TarMember } from '../image/ova.ts';
import { formatBytes } from '../image/progress.ts';

/**
 * `bundle import <dir|archive>`: a bundle directory (manifest.json at its
 * root or in its single top-level directory) is copied, an archive (.tar,
 * .tar.gz, .tgz) is checked member by member and extracted with the system
 * tar, each into a staging directory in the cache; installBundle then
 * verifies every file and moves it into place. Nothing is read from the
 * source after it is copied, and nothing the source holds is written
 * outside the staging directory.
 */

const ACCEPTED = 'a bundle directory holding manifest.json (or a directory whose single subdirectory holds it), or a .tar, .tar.gz or .tgz archive of one';
const EXTRACT_TIMEOUT_MS = 60 * 60 * 1000;

export interface ImportBundleOptions {
  readonly signal?: AbortSignal;
  readonly onStatus?: (message: string) => void;
}

export async function importBundle(home: string, source: string, options: ImportBundleOptions = {}): Promise<InstalledBundle> {
  const path = resolve(source);
  const st = await stat(path).catch(() => undefined);
  if (st === undefined) throw inputError('KUBE_BUNDLE_SOURCE_NOT_FOUND', `${path} does not exist; accepted: ${ACCEPTED}`);
  if (st.isDirectory()) return importDirectory(home, path, options);
  if (st.isFile()) return importArchive(home, path, st.size, options);
  throw inputError('KUBE_BUNDLE_SOURCE_NOT_FOUND', `${path} is neither a directory nor a regular file; accepted: ${ACCEPTED}`);
}

/** The same version with a byte-identical manifest is cached and complete: nothing to copy. */
async function alreadyCached(home: string, manifestBytes: Buffer): Promise<InstalledBundle | undefined> {
  const parsed = parseManifestBytes(manifestBytes);
  if ('problems' in parsed) return undefined;
  const found = await findBundle(home, parsed.manifest.kubernetesVersion);
  if (found === undefined) return undefined;
  const cached = await readFile(join(found.dir, 'manifest.json')).catch(() => undefined);
  if (cached === undefined || !cached.equals(manifestBytes)) return undefined;
  return { version: parsed.manifest.kubernetesVersion, dir: found.dir, manifest: found.manifest, manifestSha256: found.manifestSha256, source: 'import', outcome: 'unchanged' };
}

/** Refuses a manifest that is not one before anything is copied (the copy is verified in full later); its files' total size. */
function checkManifest(what: string, bytes: Buffer): number {
  const parsed = parseManifestBytes(bytes);
  if ('problems' in parsed) throw bundleInvalid(what, parsed.problems);
  return parsed.manifest.files.reduce((sum, f) => sum + f.size, 0);
}

function diskFull(home: string, needed: number | undefined, cause?: unknown): DevclusterError {
  const cache = bundleCacheDir(home);
  return new DevclusterError('HOST_DISK_FULL', `not enough free space in ${cache} for the bundle${needed === undefined ? '' : ` (${formatBytes(needed)})`}`, {
    advice: 'Nothing was installed. Free space on that file system (`devcluster image prune`, old bundles), or point DEVCLUSTER_HOME elsewhere.',
    details: { cache, ...(needed === undefined ? {} : { needed }) },
    ...(cause === undefined ? {} : { cause }),
  });
}

function isNoSpace(e: unknown): boolean {
  const code = (e as NodeJS.ErrnoException).code;
  return code === 'ENOSPC' || code === 'EDQUOT' || (isDevclusterError(e) && /No space left on device|Disk quota exceeded/.test(String(e.details['stderrTail'] ?? '')));
}

/** Refuses, before anything is written, a bundle that cannot fit in the cache's file system. */
async function checkSpace(home: string, needed: number): Promise<void> {
  let dir = bundleCacheDir(home);
  for (;;) {
    const st = await statfs(dir).catch(() => undefined);
    if (st !== undefined) {
      if (st.bavail * st.bsize < needed) throw diskFull(home, needed);
      return;
    }
    if (dirname(dir) === dir) return;
    dir = dirname(dir);
  }
}

async function importDirectory(home: string, path: string, options: ImportBundleOptions): Promise<InstalledBundle> {
  let root = path;
  if ((await lstat(join(path, 'manifest.json')).catch(() => undefined)) === undefined) {
    const entries = await readdir(path, { withFileTypes: true });
    const only = entries.length === 1 && entries[0]?.isDirectory() === true ? join(path, entries[0].name) : undefined;
    if (only === undefined || (await lstat(join(only, 'manifest.json')).catch(() => undefined)) === undefined) {
      throw bundleInvalid(path, [`there is no manifest.json in it${only === undefined ? '' : ' or in its single subdirectory'}`],
        `Accepted: ${ACCEPTED}. A build writes manifest.json last, so a directory without it is an unfinished build or copy.`);
    }
    root = only;
  }
  const manifestBytes = await readFile(join(root, 'manifest.json'));
  const needed = checkManifest(root, manifestBytes);
  const cached = await alreadyCached(home, manifestBytes);
  if (cached !== undefined) return cached;
  await checkSpace(home, needed);
  const staging = await bundleStagingPath(home);
  try {
    options.onStatus?.(`Copying ${root} into the bundle cache`);
    // Links are copied as links (and then refused: a bundle holds regular files only), never followed.
    await cp(root, staging, { recursive: true, verbatimSymlinks: true, errorOnExist: true, force: false });
  } catch (e) {
    await rm(staging, { recursive: true, force: true });
    if (isNoSpace(e)) throw diskFull(home, needed, e);
    if (isDevclusterError(e) || (e as Error).name === 'AbortError') throw e;
    throw bundleInvalid(root, [`it cannot be copied: ${(e as Error).message}`]);
  }
  return installBundle(home, staging, 'import', { origin: path, ...passOn(options) });
}

function passOn(options: ImportBundleOptions): { signal?: AbortSignal; onStatus?: (m: string) => void } {
  return { ...(options.signal === undefined ? {} : { signal: options.signal }), ...(options.onStatus === undefined ? {} : { onStatus: options.onStatus }) };
}

async function isGzip(path: string): Promise<boolean> {
  const handle = await open(path, 'r');
  try {
    const head = Buffer.alloc(2);
    const { bytesRead } = await handle.read(head, 0, 2, 0);
    return bytesRead === 2 && head[0] === 0x1f && head[1] === 0x8b;
  } finally {
    await handle.close();
  }
}

/** A member name as a relative path: "./" prefixes dropped; "" for the archive's root itself. */
function memberPath(name: string): string {
  let n = name;
  while (n.startsWith('./')) n = n.slice(2);
  while (n.endsWith('/')) n = n.slice(0, -1);
  return n === '.' ? '' : n;
}

const FILE_TYPES = new Set(['0', '7']);
const TYPE_NAMES: Record<string, string> = { '3': 'a character device', '4': 'a block device', '6': 'a FIFO', 'K': 'a GNU long link name', 'S': 'a sparse file', 'V': 'a volume label', 'M': 'a multi-volume part' };

function isAbsoluteName(name: string): boolean {
  return name.startsWith('/') || /^[A-Za-z]:/.test(name) || name.includes('\\');
}

/**
 * Every member that could write outside the extraction directory or is not a
 * plain file, directory or link: absolute names, `..`, links whose target
 * leaves the archive, and members written through a symlink (whose target
 * the system tar would follow).
 */
export function unsafeMembers(members: readonly TarMember[]): string[] {
  const problems: string[] = [];
  const symlinks = new Set(members.filter((m) => m.type === '2').map((m) => memberPath(m.name)));
  const throughSymlink = (p: string): string | undefined => {
    const parts = p.split('/');
    for (let i = 1; i < parts.length; i += 1) {
      const prefix = parts.slice(0, i).join('/');
      if (symlinks.has(prefix)) return prefix;
    }
    return undefined;
  };
  for (const m of members) {
    const shown = JSON.stringify(m.name);
    if (isAbsoluteName(m.name)) { problems.push(`${shown} is an absolute path`); continue; }
    const p = memberPath(m.name);
    if (p.split('/').includes('..')) { problems.push(`${shown} leaves the archive (..)`); continue; }
    if (!FILE_TYPES.has(m.type) && m.type !== '5' && m.type !== '1' && m.type !== '2') {
      problems.push(`${shown} is ${TYPE_NAMES[m.type] ?? `a member of tar type ${JSON.stringify(m.type)}`}; a bundle holds files and directories`);
      continue;
    }
    const via = throughSymlink(p);
    if (via !== undefined) { problems.push(`${shown} would be written through the symlink ${JSON.stringify(via)}`); continue; }
    if (m.type === '2') {
      const target = m.linkName;
      if (isAbsoluteName(target)) problems.push(`${shown} is a symlink to the absolute path ${JSON.stringify(target)}`);
      else if (posix.normalize(posix.join(posix.dirname(p), target)).split('/')[0] === '..') problems.push(`${shown} is a symlink pointing outside the archive (${JSON.stringify(target)})`);
    } else if (m.type === '1') {
      const target = memberPath(m.linkName);
      if (isAbsoluteName(m.linkName) || target.split('/').includes('..')) problems.push(`${shown} is a hard link to ${JSON.stringify(m.linkName)}, outside the archive`);
      else if (throughSymlink(target) !== undefined || symlinks.has(target)) problems.push(`${shown} is a hard link through a symlink (${JSON.stringify(m.linkName)})`);
    }
  }
  return problems;
}

/** "" when manifest.json is at the archive's root, "<dir>" when all members are in one directory holding it. */
function archiveBundleRoot(members: readonly TarMember[]): string | undefined {
  const paths = members.map((m) => ({ path: memberPath(m.name), file: FILE_TYPES.has(m.type) })).filter((m) => m.path !== '');
  if (paths.some((m) => m.file && m.path === 'manifest.json')) return '';
  const tops = new Set(paths.map((m) => m.path.split('/')[0]));
  if (tops.size !== 1) return undefined;
  const top = [...tops][0] as string;
  return paths.some((m) => m.file && m.path === `${top}/manifest.json`) ? top : undefined;
}

async function importArchive(home: string, path: string, size: number, options: ImportBundleOptions): Promise<InstalledBundle> {
  const work = await createBundleStaging(home);
  try {
    let tar = path;
    if (await isGzip(path)) {
      options.onStatus?.(`Decompressing ${path} (${formatBytes(size)})`);
      tar = join(work, 'bundle.tar');
      try {
        await pipeline(createReadStream(path), createGunzip(), createWriteStream(tar), ...(options.signal === undefined ? [] : [{ signal: options.signal }]));
      } catch (e) {
        if (isNoSpace(e)) throw diskFull(home, undefined, e);
        if ((e as Error).name === 'AbortError') throw e;
        throw bundleInvalid(path, [`it cannot be decompressed as gzip: ${(e as Error).message}`], `Accepted: ${ACCEPTED}.`);
      }
    }
    let members: TarMember[];
    try {
      members = await tarMembers(tar);
    } catch (e) {
      if (!(e instanceof TarFormatError)) throw e;
      throw bundleInvalid(path, [`it is not a tar archive (${e.message})`], `Accepted: ${ACCEPTED}.`);
    }
    const unsafe = unsafeMembers(members);
    if (unsafe.length > 0) {
      throw new DevclusterError('KUBE_BUNDLE_ARCHIVE_UNSAFE', `${path} holds ${unsafe.length === 1 ? 'a member' : 'members'} that would be written outside the bundle or are not files:\n  ${unsafe.slice(0, 20).join('\n  ')}${unsafe.length > 20 ? `\n  … and ${unsafe.length - 20} more` : ''}`, {
        advice: 'Nothing was extracted and the bundle cache is unchanged. Make the archive from the bundle directory itself, e.g. `tar -C <bundle> -czf bundle.tgz .`.',
        details: { problems: unsafe },
      });
    }
    const root = archiveBundleRoot(members);
    if (root === undefined) {
      throw bundleInvalid(path, ['there is no manifest.json at its root or in its single top-level directory'],
        `Accepted: ${ACCEPTED}. A build writes manifest.json last, so an archive without it holds an unfinished build.`);
    }
    const manifestMember = members.find((m) => FILE_TYPES.has(m.type) && memberPath(m.name) === (root === '' ? 'manifest.json' : `${root}/manifest.json`)) as TarMember;
    const manifestText = await readMemberText(tar, manifestMember).catch((e: unknown) => {
      throw e instanceof TarFormatError ? bundleInvalid(path, [`its manifest.json cannot be read (${e.message})`]) : e;
    });
    const manifestBytes = Buffer.from(manifestText, 'utf8');
    const needed = checkManifest(path, manifestBytes);
    const cached = await alreadyCached(home, manifestBytes);
    if (cached !== undefined) return cached;
    await checkSpace(home, needed);

    const tree = join(work, 'tree');
    await mkdir(tree);
    const files = members.filter((m) => FILE_TYPES.has(m.type)).length;
    options.onStatus?.(`Extracting ${files} files from ${path}`);
    try {
      // -p keeps the modes the manifest lists, whatever the umask; no owner from the archive, even as root.
      await run('tar', ['-x', '-p', '--no-same-owner', '-f', tar, '-C', tree], {
        timeoutMs: EXTRACT_TIMEOUT_MS,
        ...(options.signal === undefined ? {} : { signal: options.signal }),
      });
    } catch (e) {
      if (isNoSpace(e)) throw diskFull(home, needed, e);
      if (!isDevclusterError(e) || e.id !== 'HOST_COMMAND_FAILED') throw e;
      throw bundleInvalid(path, [`tar cannot extract it: ${e.message}`]);
    }
    if (tar !== path) await rm(tar, { force: true });
    const staging = await bundleStagingPath(home);
    await rename(root === '' ? tree : join(tree, root), staging);
    return await installBundle(home, staging, 'import', { origin: path, ...passOn(options) });
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}
