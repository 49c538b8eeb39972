import { stat } from 'node:fs/promises';
import { basename, isAbsolute } from 'node:path';
import { DevclusterError, inputError } from '../ui/errors.ts';
import './errors.ts';
import { ImageCache } from './cache.ts';
import type { CacheEntry, DownloadTuning, NamedImage } from './cache.ts';
import { findCatalogImage, loadCatalog, publishedArtifact, SHA256_PATTERN } from './catalog.ts';
import type { Catalog, CatalogImage } from './catalog.ts';
import { DISK_FORMATS, detectFormat, formatFromName } from './formats.ts';
import type { ArtifactKind, DiskFormat } from './formats.ts';
import { assertSelfContained } from './inspect.ts';
import { MIRROR_ENV, applyMirror, parseMirror } from './mirror.ts';
import type { MirrorRule } from './mirror.ts';

/**
 * From the `image` and `image-sha256` settings and the formats a driver boots,
 * to verified files in the cache. The `image` setting is one of:
 * - a catalog name (photon-5, debian-12): a local build imported under that
 *   name wins; otherwise the catalog's published download;
 * - an absolute path: verified against image-sha256 when given, then imported;
 * - an http(s) URL: needs image-sha256; downloaded into the cache.
 */
export interface ResolveImageOptions {
  readonly home: string;
  /** The `image` setting. */
  readonly image: string;
  /** The `image-sha256` setting; '' or undefined when not given. */
  readonly imageSha256?: string;
  /** Disk formats the driver boots, best first (QEMU: ['qcow2', 'raw']). */
  readonly formats: readonly DiskFormat[];
  /** Use only the cache (the `offline` setting). */
  readonly offline?: boolean;
  /** For DEVCLUSTER_IMAGE_MIRROR and the proxy variables. Default process.env. */
  readonly env?: NodeJS.ProcessEnv;
  /** The catalog to resolve names in. Default: the one shipped in images/catalog.json. */
  readonly catalog?: Catalog;
  /** Cancellation, progress and timeouts of downloads. */
  readonly download?: DownloadTuning;
  /** A message for the user: what is being fetched or verified. */
  readonly onStatus?: (message: string) => void;
  /** Another process is fetching the same file; this one waits for it. */
  readonly onWait?: (holder: string) => void;
}

export interface ResolvedFile {
  readonly path: string;
  readonly sha256: string;
  readonly size: number;
}

export interface ResolvedImage {
  /** Catalog name, or the file name of a path or URL image. */
  readonly name: string;
  readonly version: string | undefined;
  /** catalog: published download; build: imported local build; path / url: given by the user. */
  readonly origin: 'catalog' | 'build' | 'path' | 'url';
  readonly format: DiskFormat;
  readonly disk: ResolvedFile;
  /** Present when the image boots with an external kernel (direct kernel boot). */
  readonly kernel?: ResolvedFile;
  readonly initrd?: ResolvedFile;
  readonly kernelCmdline?: string;
}

/** What a profile's state.json records as `image`; image prune/rm read the sha256 values back. */
export interface ImageStateRecord {
  name: string;
  version?: string;
  origin: ResolvedImage['origin'];
  format: DiskFormat;
  sha256: string;
  kernel?: { sha256: string };
  initrd?: { sha256: string };
}

export function imageStateRecord(image: ResolvedImage): ImageStateRecord {
  return {
    name: image.name,
    ...(image.version === undefined ? {} : { version: image.version }),
    origin: image.origin,
    format: image.format,
    sha256: image.disk.sha256,
    ...(image.kernel === undefined ? {} : { kernel: { sha256: image.kernel.sha256 } }),
    ...(image.initrd === undefined ? {} : { initrd: { sha256: image.initrd.sha256 } }),
  };
}

export type ImageReference =
  | { kind: 'url'; url: string }
  | { kind: 'path'; path: string }
  | { kind: 'name'; name: string };

export function classifyImage(image: string): ImageReference {
  const v = image.trim();
  if (/^https?:\/\//i.test(v)) return { kind: 'url', url: v };
  if (isAbsolute(v)) return { kind: 'path', path: v };
  return { kind: 'name', name: v };
}

function toFile(entry: CacheEntry): ResolvedFile {
  return { path: entry.path, sha256: entry.sha256, size: entry.size };
}

function formatsText(formats: readonly string[]): string {
  return formats.length === 0 ? 'none' : formats.join(', ');
}

function unsupported(what: string, offered: readonly string[], accepted: readonly DiskFormat[]): DevclusterError {
  return inputError('IMAGE_FORMAT_UNSUPPORTED', `${what} comes as ${formatsText(offered)}; accepted here: ${formatsText(accepted)}`, {
    advice: 'Use a driver that boots one of the offered formats, or convert the disk (e.g. qemu-img convert -O <format>) and pass it with --image <path>.',
  });
}

function mirrorRule(env: NodeJS.ProcessEnv, catalog: Catalog): MirrorRule | undefined {
  return parseMirror(env[MIRROR_ENV], catalog.downloadBase);
}

function checkSha(raw: string | undefined): string | undefined {
  const v = (raw ?? '').trim().toLowerCase();
  if (v === '') return undefined;
  if (!SHA256_PATTERN.test(v)) throw inputError('CONFIG_INVALID_VALUE', `--image-sha256 ${JSON.stringify(raw)} is not valid; accepted: 64 hexadecimal characters`);
  return v;
}

interface Context {
  readonly o: ResolveImageOptions;
  readonly cache: ImageCache;
  readonly catalog: Catalog;
  readonly env: NodeJS.ProcessEnv;
}

function fetchTuning(o: ResolveImageOptions) {
  const env = o.download?.env ?? o.env;
  return {
    download: { ...o.download, ...(env === undefined ? {} : { env }) },
    ...(o.onWait === undefined ? {} : { onWait: o.onWait }),
    ...(o.offline === true ? { offline: true } : {}),
  };
}

async function resolveUrl(ctx: Context, url: string): Promise<ResolvedImage> {
  const { o, cache } = ctx;
  const sha256 = checkSha(o.imageSha256);
  if (sha256 === undefined) {
    throw inputError('IMAGE_SHA256_REQUIRED', `--image ${url} needs --image-sha256: a download is only used when its digest is known`, {
      advice: 'Pass the sha256 the publisher lists for the file: --image-sha256 <64 hex characters>.',
    });
  }
  const byName = formatFromName(new URL(url).pathname);
  if (byName !== undefined && !o.formats.includes(byName)) throw unsupported(url, [byName], o.formats);
  const name = basename(new URL(url).pathname) || 'image';
  if (o.offline !== true && (await cache.peek(sha256)) === undefined) o.onStatus?.(`Fetching ${name}`);
  const entry = await cache.fetch({
    sha256,
    url: applyMirror(url, mirrorRule(ctx.env, ctx.catalog)),
    filename: name,
    source: url,
    name,
    ...(byName === undefined ? {} : { kind: byName }),
    ...fetchTuning(o),
    notCachedAdvice: `Run once without --offline to download ${url}.`,
  });
  const format = (await detectFormat(entry.path)) ?? byName;
  if (format === undefined) {
    throw inputError('IMAGE_FORMAT_UNSUPPORTED', `cannot tell the disk format of ${url}: it has no qcow2/VHDX/VMDK/OVA signature and its name does not end in .raw or .img`, {
      advice: `Accepted here: ${formatsText(o.formats)}. A raw disk must be named *.raw or *.img.`,
    });
  }
  if (!o.formats.includes(format)) throw unsupported(url, [format], o.formats);
  return { name, version: undefined, origin: 'url', format, disk: toFile(entry) };
}

async function resolvePath(ctx: Context, path: string): Promise<ResolvedImage> {
  const { o, cache } = ctx;
  const sha256 = checkSha(o.imageSha256);
  try {
    if (!(await stat(path)).isFile()) throw new Error('not a regular file');
  } catch (e) {
    throw inputError('IMAGE_FILE_NOT_FOUND', `--image ${path}: ${(e as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : (e as Error).message}`, {
      advice: 'Give the absolute path of a disk image file, a catalog name (photon-5, debian-12), or an http(s) URL.',
    });
  }
  const format = await detectFormat(path);
  if (format === undefined) {
    throw inputError('IMAGE_FORMAT_UNSUPPORTED', `cannot tell the disk format of ${path}: it has no qcow2/VHDX/VMDK/OVA signature and its name does not end in .raw or .img`, {
      advice: `Accepted here: ${formatsText(o.formats)}. A raw disk must be named *.raw or *.img.`,
    });
  }
  if (!o.formats.includes(format)) throw unsupported(path, [format], o.formats);
  o.onStatus?.(sha256 === undefined ? `Importing ${path}` : `Verifying and importing ${path}`);
  const entry = await cache.importFile(path, {
    ...(sha256 === undefined ? {} : { sha256 }),
    kind: format,
    name: basename(path),
    ...(o.download?.signal === undefined ? {} : { signal: o.download.signal }),
  });
  return { name: basename(path), version: undefined, origin: 'path', format, disk: toFile(entry) };
}

function pickFormat(available: readonly DiskFormat[], accepted: readonly DiskFormat[]): DiskFormat | undefined {
  return accepted.find((f) => available.includes(f));
}

async function resolveBuilt(ctx: Context, name: string, named: NamedImage): Promise<ResolvedImage> {
  const { o, cache } = ctx;
  const available = DISK_FORMATS.filter((f) => named.formats[f] !== undefined);
  const format = pickFormat(available, o.formats);
  if (format === undefined) throw unsupported(`${name} (built locally)`, available, o.formats);
  const advice = named.recipe === undefined
    ? `Import ${name} again.`
    : `Build it again with \`devcluster image build ${named.recipe}\`.`;
  const get = async (kind: ArtifactKind, sha256: string) => toFile(await cache.fetch({
    sha256, filename: `${name}.${kind}`, name, version: named.version, kind,
    notCachedAdvice: `The cached copy of ${name} is missing or was corrupt and has been removed. ${advice}`,
    ...(o.onWait === undefined ? {} : { onWait: o.onWait }),
  }));
  const disk = await get(format, named.formats[format] as string);
  const kernelSha = named.formats.kernel;
  const initrdSha = named.formats.initrd;
  const kernel = kernelSha === undefined ? undefined : await get('kernel', kernelSha);
  const initrd = initrdSha === undefined ? undefined : await get('initrd', initrdSha);
  return {
    name, version: named.version, origin: 'build', format, disk,
    ...(kernel === undefined ? {} : { kernel }),
    ...(initrd === undefined ? {} : { initrd }),
    ...(named.kernelCmdline === undefined ? {} : { kernelCmdline: named.kernelCmdline }),
  };
}

function artifactFileName(image: CatalogImage, kind: ArtifactKind, url: string): string {
  const fromUrl = basename(new URL(url).pathname);
  return fromUrl !== '' ? fromUrl : `${image.name}-${image.version}.${kind}`;
}

async function resolvePublished(ctx: Context, image: CatalogImage): Promise<ResolvedImage> {
  const { o, cache } = ctx;
  const available = DISK_FORMATS.filter((f) => publishedArtifact(image, f) !== undefined);
  const format = pickFormat(available, o.formats);
  if (format === undefined) throw unsupported(image.name, available, o.formats);
  const rule = mirrorRule(ctx.env, ctx.catalog);
  const get = async (kind: ArtifactKind) => {
    const artifact = publishedArtifact(image, kind);
    if (artifact === undefined) return undefined;
    const peeked = await cache.peek(artifact.sha256);
    if (peeked === undefined && o.offline !== true) o.onStatus?.(`Fetching ${image.name} ${image.version} (${kind})`);
    return toFile(await cache.fetch({
      sha256: artifact.sha256,
      url: applyMirror(artifact.url, rule),
      expectedSize: artifact.size,
      filename: artifactFileName(image, kind, artifact.url),
      source: artifact.url,
      name: image.name,
      version: image.version,
      kind,
      ...fetchTuning(o),
      notCachedAdvice: `Run once without --offline to download ${image.name}, or pass --image <path> --image-sha256 <sha256>.`,
    }));
  };
  const disk = (await get(format)) as ResolvedFile;
  const kernel = await get('kernel');
  const initrd = await get('initrd');
  await cache.recordNamedImage(image.name, {
    version: image.version,
    origin: 'catalog',
    formats: {
      ...(await cache.namedImage(image.name))?.formats,
      [format]: disk.sha256,
      ...(kernel === undefined ? {} : { kernel: kernel.sha256 }),
      ...(initrd === undefined ? {} : { initrd: initrd.sha256 }),
    },
    ...(image.kernelCmdline === undefined ? {} : { kernelCmdline: image.kernelCmdline }),
    recipe: image.recipe,
    importedAt: new Date().toISOString(),
  });
  return {
    name: image.name, version: image.version, origin: 'catalog', format, disk,
    ...(kernel === undefined ? {} : { kernel }),
    ...(initrd === undefined ? {} : { initrd }),
    ...(image.kernelCmdline === undefined ? {} : { kernelCmdline: image.kernelCmdline }),
  };
}

function notAvailable(image: CatalogImage): DevclusterError {
  const listsFormats = Object.keys(image.formats).length > 0;
  if (!listsFormats) {
    return new DevclusterError('IMAGE_NOT_BUILT', `${image.name} is built locally and has not been built on this host yet`, {
      advice: `Build it with \`devcluster image build ${image.recipe}\` (Linux, root, Debian's package mirror), or pass --image <path|url> --image-sha256 <sha256>.`,
      input: true,
    });
  }
  return new DevclusterError('IMAGE_NOT_PUBLISHED', `${image.name} ${image.version} has no published download yet`, {
    advice: `Build it with \`devcluster image build ${image.recipe}\` on a machine with Docker and internet access, or pass --image <path|url> --image-sha256 <sha256>.`,
    input: true,
  });
}

async function resolveName(ctx: Context, name: string): Promise<ResolvedImage> {
  const { cache, catalog } = ctx;
  const named = await cache.namedImage(name);
  if (named !== undefined && named.origin === 'build') return resolveBuilt(ctx, name, named);
  const image = findCatalogImage(catalog, name);
  if (image === undefined) {
    if (named !== undefined) return resolveBuilt(ctx, name, named);
    throw inputError('IMAGE_UNKNOWN', `${JSON.stringify(name)} is not an image devcluster knows; accepted: ${catalog.images.map((i) => i.name).join(', ')}, an absolute path, or an http(s) URL`, {
      advice: 'See `devcluster image list` for the images in the cache.',
    });
  }
  if (!image.published) throw notAvailable(image);
  return resolvePublished(ctx, image);
}

/**
 * The image to boot: verified files in the cache, fetched when missing (once
 * across processes), never a file whose digest does not match.
 */
export async function resolveImage(options: ResolveImageOptions): Promise<ResolvedImage> {
  if (options.formats.length === 0) throw new Error('resolveImage: the driver accepts no disk format');
  const env = options.env ?? process.env;
  const catalog = options.catalog ?? (await loadCatalog());
  const ctx: Context = { o: options, cache: ImageCache.forHome(options.home), catalog, env };
  const ref = classifyImage(options.image);
  const image = ref.kind === 'url' ? await resolveUrl(ctx, ref.url) : ref.kind === 'path' ? await resolvePath(ctx, ref.path) : await resolveName(ctx, ref.name);
  // Checked again on every use: an entry cached before this check existed, or
  // a cache file changed behind devcluster's back, never reaches a VM unchecked.
  await assertSelfContained(image.disk.path, {
    label: `${options.image} (cached ${image.disk.path})`,
    format: image.format,
    ...(options.download?.signal === undefined ? {} : { signal: options.download.signal }),
  });
  return image;
}

/** `image pull`: a catalog image in one format (default: the first the catalog offers of qcow2, vhdx, vmdk, ova, raw). */
export async function pullImage(options: Omit<ResolveImageOptions, 'formats' | 'imageSha256'> & { format?: DiskFormat }): Promise<ResolvedImage> {
  return resolveImage({ ...options, formats: options.format === undefined ? DISK_FORMATS : [options.format] });
}
