import { readFile, stat } from 'node:fs/promises';
import { dirname, isAbsolute, join } from 'node:path';
import { DevclusterError } from '../ui/errors.ts';
import './errors.ts';
import { ImageCache } from './cache.ts';
import type { NamedImage } from './cache.ts';
import { IMAGE_NAME_PATTERN, SHA256_PATTERN, findCatalogImage, loadCatalog } from './catalog.ts';
import { DISK_FORMATS, isArtifactKind, isDiskFormat } from './formats.ts';
import { assertSelfContained } from './inspect.ts';
import type { ArtifactKind } from './formats.ts';

/**
 * A recipe's build (`images/<recipe>/build.sh --out DIR`) leaves
 * DIR/manifest.json: { name, version, formats: { <kind>: { file, sha256, size } },
 * kernelCmdline, packages, builtAt }, with file names relative to DIR.
 * Importing copies every file into the cache (verified against the manifest)
 * and records the name, so the image resolves by name, offline.
 */
export interface BuiltArtifact {
  readonly file: string;
  readonly sha256: string;
  readonly size: number;
}

export interface BuildManifest {
  readonly name: string;
  readonly version: string;
  readonly formats: Readonly<Partial<Record<ArtifactKind, BuiltArtifact>>>;
  readonly kernelCmdline?: string;
  readonly packages?: Readonly<Record<string, string>>;
  readonly builtAt?: string;
}

function invalid(path: string, problem: string): DevclusterError {
  return new DevclusterError('IMAGE_MANIFEST_INVALID', `${path}: ${problem}`, {
    advice: 'Build the image again; a manifest is written last, only after every file beside it is complete.',
  });
}

export function parseManifest(raw: unknown, path: string): BuildManifest {
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) throw invalid(path, 'must be a JSON object');
  const m = raw as Record<string, unknown>;
  if (typeof m['name'] !== 'string' || !IMAGE_NAME_PATTERN.test(m['name'])) throw invalid(path, 'name must be lowercase letters, digits, "." and "-"');
  if (typeof m['version'] !== 'string' || m['version'] === '') throw invalid(path, 'version must be a non-empty string');
  const formatsRaw = m['formats'];
  if (typeof formatsRaw !== 'object' || formatsRaw === null || Array.isArray(formatsRaw)) throw invalid(path, 'formats must be an object');
  const formats: Partial<Record<ArtifactKind, BuiltArtifact>> = {};
  for (const [kind, value] of Object.entries(formatsRaw)) {
    if (!isArtifactKind(kind)) throw invalid(path, `unknown format ${JSON.stringify(kind)}`);
    const a = value as Record<string, unknown> | null;
    if (typeof a !== 'object' || a === null) throw invalid(path, `formats.${kind} must be an object`);
    const { file, sha256, size } = a;
    if (typeof file !== 'string' || file === '' || isAbsolute(file) || file.split(/[\\/]/).includes('..')) throw invalid(path, `formats.${kind}.file must be a file name inside the manifest's directory`);
    if (typeof sha256 !== 'string' || !SHA256_PATTERN.test(sha256)) throw invalid(path, `formats.${kind}.sha256 must be 64 lowercase hex characters`);
    if (typeof size !== 'number' || !Number.isSafeInteger(size) || size <= 0) throw invalid(path, `formats.${kind}.size must be a positive whole number`);
    formats[kind] = { file, sha256, size };
  }
  if (!DISK_FORMATS.some((f) => formats[f] !== undefined)) throw invalid(path, 'formats must hold at least one disk format');
  if ((formats.kernel === undefined) !== (formats.initrd === undefined)) throw invalid(path, 'kernel and initrd come as a pair');
  const cmdline = m['kernelCmdline'];
  if (cmdline !== undefined && typeof cmdline !== 'string') throw invalid(path, 'kernelCmdline must be a string');
  const packagesRaw = m['packages'];
  const packages: Record<string, string> = {};
  if (typeof packagesRaw === 'object' && packagesRaw !== null && !Array.isArray(packagesRaw)) {
    for (const [k, v] of Object.entries(packagesRaw)) if (typeof v === 'string') packages[k] = v;
  }
  const builtAt = typeof m['builtAt'] === 'string' ? m['builtAt'] : undefined;
  return {
    name: m['name'], version: m['version'], formats,
    ...(cmdline === undefined ? {} : { kernelCmdline: cmdline }),
    ...(Object.keys(packages).length === 0 ? {} : { packages }),
    ...(builtAt === undefined ? {} : { builtAt }),
  };
}

export interface ImportBuiltOptions {
  readonly home: string;
  /** The recipe that built it, so "build it again" advice can name it. */
  readonly recipe?: string;
  readonly signal?: AbortSignal;
  readonly onStatus?: (message: string) => void;
}

export interface ImportedImage {
  readonly name: string;
  readonly record: NamedImage;
  readonly files: Readonly<Partial<Record<ArtifactKind, { path: string; sha256: string; size: number }>>>;
}

/** Imports a built image (its manifest.json) into the cache under its name. */
export async function importBuiltImage(manifestPath: string, options: ImportBuiltOptions): Promise<ImportedImage> {
  let raw: unknown;
  try {
    raw = JSON.parse(await readFile(manifestPath, 'utf8')) as unknown;
  } catch (e) {
    throw invalid(manifestPath, (e as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file (the build did not finish)' : `cannot be read: ${(e as Error).message}`);
  }
  const manifest = parseManifest(raw, manifestPath);
  const dir = dirname(manifestPath);
  const recipe = options.recipe ?? (await loadCatalog().then((c) => findCatalogImage(c, manifest.name)?.recipe, () => undefined));
  const cache = ImageCache.forHome(options.home);
  const files: Partial<Record<ArtifactKind, { path: string; sha256: string; size: number }>> = {};
  const artifacts = Object.entries(manifest.formats) as Array<[ArtifactKind, BuiltArtifact]>;
  for (const [kind, artifact] of artifacts) {
    const source = join(dir, artifact.file);
    const size = await stat(source).then((s) => s.size, () => undefined);
    if (size === undefined) throw invalid(manifestPath, `${artifact.file} (${kind}) is missing`);
    if (size !== artifact.size) throw invalid(manifestPath, `${artifact.file} is ${size} bytes but the manifest says ${artifact.size}`);
  }
  // Every disk is checked before the first file is copied, so a refused image leaves nothing behind;
  // the cache checks each copy again before it publishes it.
  for (const [kind, artifact] of artifacts) {
    if (isDiskFormat(kind)) {
      await assertSelfContained(join(dir, artifact.file), { label: `${manifest.name} ${kind} (${join(dir, artifact.file)})`, format: kind, ...(options.signal === undefined ? {} : { signal: options.signal }) });
    }
  }
  for (const [kind, artifact] of artifacts) {
    const source = join(dir, artifact.file);
    options.onStatus?.(`Importing ${manifest.name} ${kind} (${artifact.file})`);
    const entry = await cache.importFile(source, {
      sha256: artifact.sha256,
      filename: `${manifest.name}-${manifest.version}.${kind === 'kernel' ? 'vmlinuz' : kind === 'initrd' ? 'initrd.img' : kind}`,
      kind,
      name: manifest.name,
      version: manifest.version,
      source: recipe === undefined ? source : `build:${recipe}`,
      ...(options.signal === undefined ? {} : { signal: options.signal }),
    });
    files[kind] = { path: entry.path, sha256: entry.sha256, size: entry.size };
  }
  const record: NamedImage = {
    version: manifest.version,
    origin: 'build',
    formats: Object.fromEntries(Object.entries(manifest.formats).map(([k, a]) => [k, a.sha256])),
    ...(manifest.kernelCmdline === undefined ? {} : { kernelCmdline: manifest.kernelCmdline }),
    ...(recipe === undefined ? {} : { recipe }),
    ...(manifest.builtAt === undefined ? {} : { builtAt: manifest.builtAt }),
    ...(manifest.packages === undefined ? {} : { packages: { ...manifest.packages } }),
    importedAt: new Date().toISOString(),
  };
  await cache.recordNamedImage(manifest.name, record);
  return { name: manifest.name, record, files };
}
