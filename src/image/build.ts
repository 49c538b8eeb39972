import { randomBytes } from 'node:crypto';
import { access, mkdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { run } from '../host/exec.ts';
import { DevclusterError, inputError, isDevclusterError } from '../ui/errors.ts';
import './errors.ts';
import { importBuiltImage } from './built.ts';
import type { ImportedImage } from './built.ts';
import { loadCatalog } from './catalog.ts';
import type { Catalog } from './catalog.ts';
import { imagesDir } from './package-root.ts';
import { homePaths } from '../profile/paths.ts';

/**
 * `image build <recipe>`: runs images/<recipe>/build.sh --out DIR (DIR under
 * the cache, so the import is a copy within one file system) and imports the
 * manifest it writes. What each recipe needs is checked first, so a host that
 * cannot build gets one clear error instead of a script failing half-way:
 * - debian: Linux on x86_64, root (mmdebstrap, mke2fs), Debian's package mirror;
 * - photon: Docker (a running daemon) and the internet (Photon's package
 *   host and GitHub); the script's own prerequisite exit codes map to
 *   IMAGE_BUILD_UNAVAILABLE.
 */
export interface HostFacts {
  readonly platform: NodeJS.Platform;
  readonly arch: string;
  readonly uid: number | undefined;
  readonly offline: boolean;
}

export function currentHostFacts(offline: boolean): HostFacts {
  return { platform: process.platform, arch: process.arch, uid: process.getuid?.(), offline };
}

/**
 * images/photon/build.sh exit codes that mean "this host cannot build it"
 * (3 no docker, 4 daemon unreachable, 5 another tool missing, 6 a download
 * host unreachable), as opposed to a build that started and failed.
 */
const PHOTON_UNAVAILABLE_EXITS = new Set([3, 4, 5, 6]);

const DEFAULT_BUILD_TIMEOUT_MS = 3 * 60 * 60 * 1000;

function unavailable(recipe: string, why: string, advice: string): DevclusterError {
  return new DevclusterError('IMAGE_BUILD_UNAVAILABLE', `the ${recipe} image cannot be built here: ${why}`, { advice });
}

/** The first requirement the host facts alone rule out, or undefined. */
export function checkBuildHost(recipe: string, facts: HostFacts): DevclusterError | undefined {
  if (recipe === 'debian') {
    if (facts.platform !== 'linux' || facts.arch !== 'x64') {
      return unavailable(recipe, `it builds on Linux x86_64 only (this host is ${facts.platform}/${facts.arch})`,
        'Build it on a Linux x86_64 machine and import it here with `devcluster image import <dir>/manifest.json`, or use --image <path|url> --image-sha256.');
    }
    if (facts.offline) return unavailable(recipe, 'it downloads Debian packages and --offline forbids downloads', 'Run it without --offline.');
    if (facts.uid !== 0) {
      return new DevclusterError('HOST_NEEDS_ROOT', 'building the debian image needs root (mmdebstrap installs packages as root; mke2fs records root ownership)', {
        advice: 'Run `sudo -E devcluster image build debian`, or build as root with `sudo images/debian/build.sh --out DIR` and import it as yourself with `devcluster image import DIR/manifest.json`.',
      });
    }
    return undefined;
  }
  if (recipe === 'photon') {
    if (facts.offline) return unavailable(recipe, 'it needs the internet and --offline forbids downloads', 'Run it without --offline on a machine with Docker and internet access.');
    return undefined;
  }
  return undefined;
}

async function checkDocker(recipe: string, env: NodeJS.ProcessEnv | undefined, signal?: AbortSignal): Promise<void> {
  try {
    await run('docker', ['info', '--format', '{{.ServerVersion}}'], {
      timeoutMs: 20_000,
      parse: true,
      ...(env === undefined ? {} : { env: { ...env } }),
      ...(signal === undefined ? {} : { signal }),
    });
  } catch (e) {
    if (!isDevclusterError(e) || e.id === 'INTERRUPTED') throw e;
    const why = e.id === 'HOST_COMMAND_NOT_FOUND' ? 'Docker is not installed (docker is not on PATH)' : `the Docker daemon does not answer (${e.message})`;
    throw unavailable(recipe, why, 'Build it on a machine with Docker and internet access, or pass --image <path|url> --image-sha256 <sha256>.');
  }
}

export interface BuildImageOptions {
  readonly home: string;
  readonly recipe: string;
  readonly offline?: boolean;
  readonly env?: NodeJS.ProcessEnv;
  readonly signal?: AbortSignal;
  readonly timeoutMs?: number;
  readonly onStatus?: (message: string) => void;
  /** Tests: another catalog or recipe directory, other host facts. */
  readonly catalog?: Catalog;
  readonly recipesDir?: string;
  readonly facts?: HostFacts;
}

export async function buildImage(options: BuildImageOptions): Promise<ImportedImage> {
  const { recipe } = options;
  const catalog = options.catalog ?? (await loadCatalog());
  const recipes = catalog.images.map((i) => i.recipe);
  if (!recipes.includes(recipe)) {
    throw inputError('IMAGE_RECIPE_UNKNOWN', `${JSON.stringify(recipe)} is not an image recipe; accepted: ${recipes.join(', ')}`);
  }
  const facts = options.facts ?? currentHostFacts(options.offline === true);
  const refused = checkBuildHost(recipe, facts);
  if (refused !== undefined) throw refused;
  const script = join(options.recipesDir ?? imagesDir(), recipe, 'build.sh');
  try {
    await access(script);
  } catch {
    throw unavailable(recipe, `its recipe is not shipped with this devcluster (${script} is missing)`, 'Use a devcluster release that ships the recipe, or pass --image <path|url> --image-sha256 <sha256>.');
  }
  // Docker is checked here, before a script that takes many minutes starts;
  // the internet is checked by the photon script itself before it writes
  // anything (exit 6), and mapped below.
  if (recipe === 'photon') await checkDocker(recipe, options.env, options.signal);

  const out = join(homePaths(options.home).imageCache, '.staging', `build-${recipe}.${process.pid}.${randomBytes(4).toString('hex')}`);
  await mkdir(out, { recursive: true });
  try {
    options.onStatus?.(`Building the ${recipe} image (this takes several minutes; the end of the build's output goes to the log file)`);
    try {
      await run('bash', [script, '--out', out], {
        timeoutMs: options.timeoutMs ?? DEFAULT_BUILD_TIMEOUT_MS,
        ...(options.signal === undefined ? {} : { signal: options.signal }),
        ...(options.env === undefined ? {} : { env: { ...options.env } }),
      });
    } catch (e) {
      if (!isDevclusterError(e) || e.id === 'INTERRUPTED') throw e;
      // The most telling line: the last one that names an error, else the last one.
      const lines = typeof e.details['stderrTail'] === 'string' ? (e.details['stderrTail'] as string).trim().split('\n') : [];
      const tail = [...lines].reverse().find((l) => /error|cannot|missing|not found/i.test(l)) ?? lines.at(-1) ?? '';
      // images/debian/build.sh exits 5 when the host lacks a tool it needs.
      if (recipe === 'debian' && Number(e.details['exitCode']) === 5) {
        throw unavailable(recipe, tail === '' ? 'a tool it needs is missing' : tail, 'Install what the message names and run the build again.');
      }
      if (recipe === 'photon' && PHOTON_UNAVAILABLE_EXITS.has(Number(e.details['exitCode']))) {
        throw unavailable(recipe, tail === '' ? `its build script exited with ${String(e.details['exitCode'])}` : tail,
          'Build it on a machine with Docker and internet access, or pass --image <path|url> --image-sha256 <sha256>.');
      }
      throw new DevclusterError('IMAGE_BUILD_FAILED', `the ${recipe} image build failed${e.id === 'HOST_COMMAND_TIMEOUT' ? ' (timed out)' : ''}${tail === '' ? '' : `: ${tail}`}`, {
        advice: 'The log file has the end of the build\'s output; fix the cause and run the build again.',
        details: e.details,
        cause: e,
      });
    }
    return await importBuiltImage(join(out, 'manifest.json'), {
      home: options.home,
      recipe,
      ...(options.signal === undefined ? {} : { signal: options.signal }),
      ...(options.onStatus === undefined ? {} : { onStatus: options.onStatus }),
    });
  } finally {
    await rm(out, { recursive: true, force: true });
  }
}
