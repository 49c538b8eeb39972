import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { DevclusterError } from '../ui/errors.ts';
import './errors.ts';
import { ARTIFACT_KINDS, isArtifactKind } from './formats.ts';
import type { ArtifactKind } from './formats.ts';
import { imagesDir } from './package-root.ts';

/**
 * The catalog of guest images devcluster knows by name (images/catalog.json).
 * An image is either published (every listed artifact has a URL, a sha256 and
 * a size) or not (the artifacts it will have are listed with nulls, and the
 * image is built locally by its recipe and imported into the cache).
 */
export interface CatalogArtifact {
  readonly url: string | null;
  readonly sha256: string | null;
  readonly size: number | null;
}

export interface PublishedArtifact {
  readonly url: string;
  readonly sha256: string;
  readonly size: number;
}

export interface CatalogImage {
  readonly name: string;
  readonly version: string;
  readonly description: string;
  /** images/<recipe>/build.sh builds it. */
  readonly recipe: string;
  readonly published: boolean;
  readonly formats: Readonly<Partial<Record<ArtifactKind, CatalogArtifact>>>;
  readonly kernelCmdline?: string;
}

export interface Catalog {
  readonly schemaVersion: 1;
  /** Every published URL starts with this; DEVCLUSTER_IMAGE_MIRROR replaces it. */
  readonly downloadBase: string;
  readonly images: readonly CatalogImage[];
}

export const IMAGE_NAME_PATTERN = /^[a-z0-9][a-z0-9.-]{0,62}$/;
export const SHA256_PATTERN = /^[0-9a-f]{64}$/;

export function catalogPath(): string {
  return join(imagesDir(), 'catalog.json');
}

function fail(where: string, problem: string): never {
  throw new DevclusterError('IMAGE_CATALOG_INVALID', `${where}: ${problem}`, {
    advice: 'The catalog ships with devcluster; reinstall it, or report this as a bug.',
  });
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function checkKeys(where: string, value: Record<string, unknown>, allowed: readonly string[]): void {
  for (const key of Object.keys(value)) if (!allowed.includes(key)) fail(where, `unknown key ${JSON.stringify(key)}`);
}

function parseArtifact(where: string, raw: unknown, published: boolean, downloadBase: string): CatalogArtifact {
  if (!isObject(raw)) fail(where, 'must be an object with url, sha256 and size');
  checkKeys(where, raw, ['url', 'sha256', 'size']);
  const { url, sha256, size } = raw;
  if (!published) {
    if (url !== null || sha256 !== null || size !== null) fail(where, 'an unpublished image has url, sha256 and size null');
    return { url: null, sha256: null, size: null };
  }
  if (typeof url !== 'string' || !/^https?:\/\//.test(url)) fail(where, 'url must be an http(s) URL');
  if (!url.startsWith(downloadBase)) fail(where, `url must start with downloadBase ${downloadBase}`);
  if (typeof sha256 !== 'string' || !SHA256_PATTERN.test(sha256)) fail(where, 'sha256 must be 64 lowercase hex characters');
  if (typeof size !== 'number' || !Number.isSafeInteger(size) || size <= 0) fail(where, 'size must be a positive whole number of bytes');
  return { url, sha256, size };
}

/** Checks a catalog document the way the JSON schema in images/catalog.schema.json does, plus cross-field rules. */
export function parseCatalog(raw: unknown, where = 'catalog.json'): Catalog {
  if (!isObject(raw)) fail(where, 'must be a JSON object');
  checkKeys(where, raw, ['$schema', 'schemaVersion', 'downloadBase', 'images']);
  if (raw['schemaVersion'] !== 1) fail(where, `schemaVersion ${JSON.stringify(raw['schemaVersion'])} is not supported (expected 1)`);
  const downloadBase = raw['downloadBase'];
  if (typeof downloadBase !== 'string' || !/^https?:\/\/.+\/$/.test(downloadBase)) fail(where, 'downloadBase must be an http(s) URL ending in /');
  if (!Array.isArray(raw['images'])) fail(where, 'images must be an array');
  const names = new Set<string>();
  const images = raw['images'].map((entry, i): CatalogImage => {
    const at = `${where}: images[${i}]`;
    if (!isObject(entry)) fail(at, 'must be an object');
    checkKeys(at, entry, ['name', 'version', 'description', 'recipe', 'published', 'formats', 'kernelCmdline']);
    const { name, version, description, recipe, published, formats, kernelCmdline } = entry;
    if (typeof name !== 'string' || !IMAGE_NAME_PATTERN.test(name)) fail(at, 'name must be lowercase letters, digits, "." and "-"');
    if (names.has(name)) fail(at, `duplicate name ${name}`);
    names.add(name);
    if (typeof version !== 'string' || version === '') fail(at, 'version must be a non-empty string');
    if (typeof description !== 'string' || description === '') fail(at, 'description must be a non-empty string');
    if (typeof recipe !== 'string' || !/^[a-z0-9-]+$/.test(recipe)) fail(at, 'recipe must name a directory under images/');
    if (typeof published !== 'boolean') fail(at, 'published must be true or false');
    if (!isObject(formats)) fail(at, 'formats must be an object');
    if (kernelCmdline !== undefined && typeof kernelCmdline !== 'string') fail(at, 'kernelCmdline must be a string');
    const parsed: Partial<Record<ArtifactKind, CatalogArtifact>> = {};
    for (const [kind, artifact] of Object.entries(formats)) {
      if (!isArtifactKind(kind)) fail(`${at}.formats`, `unknown format ${JSON.stringify(kind)}; known: ${ARTIFACT_KINDS.join(', ')}`);
      parsed[kind] = parseArtifact(`${at}.formats.${kind}`, artifact, published, downloadBase);
    }
    if (published && !Object.keys(parsed).some((k) => k !== 'kernel' && k !== 'initrd')) fail(at, 'a published image needs at least one disk format');
    if (('kernel' in parsed) !== ('initrd' in parsed)) fail(at, 'kernel and initrd come as a pair');
    return {
      name, version, description, recipe, published, formats: parsed,
      ...(kernelCmdline === undefined ? {} : { kernelCmdline }),
    };
  });
  return { schemaVersion: 1, downloadBase, images };
}

let cached: Catalog | undefined;

/** The catalog shipped with this devcluster, or one at `path` (tests). */
export async function loadCatalog(path?: string): Promise<Catalog> {
  if (path === undefined && cached !== undefined) return cached;
  const file = path ?? catalogPath();
  let raw: unknown;
  try {
    raw = JSON.parse(await readFile(file, 'utf8')) as unknown;
  } catch (e) {
    fail(file, `cannot be read as JSON: ${(e as Error).message}`);
  }
  const catalog = parseCatalog(raw, file);
  if (path === undefined) cached = catalog;
  return catalog;
}

export function findCatalogImage(catalog: Catalog, name: string): CatalogImage | undefined {
  return catalog.images.find((i) => i.name === name);
}

export function catalogImageForRecipe(catalog: Catalog, recipe: string): CatalogImage | undefined {
  return catalog.images.find((i) => i.recipe === recipe);
}

export function publishedArtifact(image: CatalogImage, kind: ArtifactKind): PublishedArtifact | undefined {
  const a = image.formats[kind];
  if (!image.published || a === undefined || a.url === null || a.sha256 === null || a.size === null) return undefined;
  return { url: a.url, sha256: a.sha256, size: a.size };
}
