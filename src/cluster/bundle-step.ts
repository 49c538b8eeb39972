import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { downloadBundle, publishedChecksums, refuseOffline } from '../kube/bundle-download.ts';
import type { PublishedChecksums } from '../kube/bundle-download.ts';
import { bundleMediumPath, ensureBundleMedium } from '../kube/bundle-medium.ts';
import type { BundleMedium } from '../kube/bundle-medium.ts';
import { createBundleStaging, findBundle, installBundle } from '../kube/bundle-store.ts';
import type { FoundBundle } from '../kube/bundle-store.ts';
import { goArch, releaseUrlsFrom } from '../kube/release-urls.ts';
import { resolveKubernetesVersion } from '../kube/versions.ts';
import { homePaths } from '../profile/paths.ts';
import { DevclusterError, isDevclusterError } from '../ui/errors.ts';
import type { Output } from '../ui/output.ts';
import { describeProgress } from '../image/progress.ts';
import type { OpenProfile } from './profile-context.ts';

function guestArch(): string {
  const arch = goArch(process.arch);
  if (arch === undefined) {
    throw new DevclusterError('HOST_UNSUPPORTED', `Kubernetes node bundles exist for amd64 and arm64 guests; this host is ${process.arch}`, {
      advice: 'Run devcluster on an x86_64 or arm64 machine.',
    });
  }
  return arch;
}

/**
 * The version a start installs: the one an existing cluster was created
 * with, else the kubernetes-version setting resolved ("stable" online).
 * Offline, the bundle must already be cached; both are checked before the
 * start writes anything.
 */
export async function resolveStartVersion(p: OpenProfile, signal: AbortSignal): Promise<string> {
  const created = p.state.state?.created?.kubernetesVersion;
  const offline = p.settings['offline'] === true;
  const version = created ?? (await resolveKubernetesVersion(String(p.settings['kubernetes-version']), { releaseUrl: releaseUrlsFrom(p.settings).kubernetes, offline, signal }));
  if (offline && (await findBundle(p.home, version)) === undefined) throw refuseOffline('the node bundle', version);
  return version;
}

/** How a start gets its bundle, decided before anything is written. */
export type BundleSource = { kind: 'cached' } | { kind: 'download'; published: PublishedChecksums };

export interface BundlePlanOptions {
  out: Output;
  signal: AbortSignal;
  env?: NodeJS.ProcessEnv;
  /** Tests: whether a person can answer a question (default: a TTY on stdin and text output). */
  interactive?: boolean;
  /** Tests: the answer to "build it now?" (default: asks). */
  confirmBuild?: (message: string) => Promise<boolean>;
}

/**
 * The bundle is cached, or its release servers answer: every checksum file
 * is read now, so a machine that cannot reach dl.k8s.io or GitHub learns it
 * before the profile exists. There, a person at a terminal on a host that
 * can build the bundle from the Go module proxy is offered the build, as a
 * missing guest image offers its own; anyone else gets the commands that
 * bring a bundle here.
 */
export async function planBundle(p: OpenProfile, version: string, options: BundlePlanOptions): Promise<BundleSource> {
  if ((await findBundle(p.home, version)) !== undefined) return { kind: 'cached' };
  const offline = p.settings['offline'] === true;
  const env = options.env ?? process.env;
  try {
    const published = await publishedChecksums({ version, arch: guestArch(), urls: releaseUrlsFrom(p.settings), offline, signal: options.signal, env });
    return { kind: 'download', published };
  } catch (e) {
    if (!isDevclusterError(e) || (e.id !== 'KUBE_DOWNLOAD_FAILED' && e.id !== 'KUBE_CHECKSUM_FILE_INVALID')) throw e;
    const { bundleBuildHost, checkBundleBuildHost } = await import('../kube/bundle-build.ts');
    const buildRefusal = checkBundleBuildHost(await bundleBuildHost(env));
    const build = `devcluster bundle build --kubernetes-version ${version}`;
    const instead = buildRefusal === undefined
      ? `Or build it here from the Go module proxy (about an hour the first time, minutes with Go's caches): \`${build}\`, then start again.`
      : `Or build it from the Go module proxy with \`${build}\` (${buildRefusal.message.replace(/\s+/g, ' ')}), or on another Linux machine and bring it here: \`devcluster bundle import <dir|archive>\`.`;
    const interactive = options.interactive ?? (process.stdin.isTTY === true && options.out.format === 'text');
    if (buildRefusal === undefined && interactive) {
      const ask = options.confirmBuild ?? (async (message: string) => (await import('@inquirer/prompts')).confirm({ message, default: true }, { signal: options.signal }));
      options.out.warn(`The Kubernetes ${version} node bundle cannot be downloaded: ${e.message}`);
      if (await ask(`Build the ${version} node bundle here from the Go module proxy instead (about an hour the first time)?`)) {
        const { buildBundle } = await import('../kube/bundle-build.ts');
        await buildBundle({ home: p.home, version, env, signal: options.signal, onStatus: (m) => options.out.info(m), onOutput: (line) => options.out.debug(line) });
        return { kind: 'cached' };
      }
    }
    throw new DevclusterError(e.id, `the Kubernetes ${version} node bundle is not cached and cannot be downloaded: ${e.message}`, {
      advice: `${e.advice ?? ''} ${instead}`.trim(),
      details: e.details,
      cause: e,
    });
  }
}

/** A cached bundle with the medium that hands it to the guest. */
export interface PreparedBundle extends FoundBundle {
  readonly medium: BundleMedium;
}

/**
 * The cached bundle for `version` (downloaded from the release URLs, verified
 * and resumable, when there is none) and its medium, written when missing.
 */
export async function ensureBundle(p: OpenProfile, version: string, source: BundleSource, signal: AbortSignal, update: (detail: string) => void): Promise<PreparedBundle> {
  const bundle = (await findBundle(p.home, version)) ?? (await downloadToCache(p, version, source.kind === 'download' ? source.published : undefined, signal, update));
  update(`preparing the guest medium ${bundleMediumPath(p.home, version)}`);
  const medium = await ensureBundleMedium(p.home, bundle, signal);
  update(`cached in ${bundle.dir}${medium.written ? ', guest medium written' : ''}`);
  return { ...bundle, medium };
}

async function downloadToCache(p: OpenProfile, version: string, published: PublishedChecksums | undefined, signal: AbortSignal, update: (detail: string) => void): Promise<FoundBundle> {
  const urls = releaseUrlsFrom(p.settings);
  const staging = await createBundleStaging(p.home);
  try {
    await downloadBundle({
      version,
      arch: guestArch(),
      urls,
      stagingDir: staging,
      partDir: join(homePaths(p.home).kubernetesCache, '.downloads'),
      offline: p.settings['offline'] === true,
      ...(published === undefined ? {} : { published }),
      signal,
      onProgress: (e) => {
        if (e.kind === 'download') update(describeProgress(`downloading ${e.artifact} (${e.index}/${e.count})`, e.progress));
        else if (e.kind === 'reused') update(`${e.artifact} already downloaded (${e.index}/${e.count})`);
        else if (e.kind === 'extract') update('unpacking');
        else update(`reading ${e.count} checksum files`);
      },
    });
  } catch (e) {
    // Verified artifacts wait in .downloads for the next try; the half-made bundle goes.
    await rm(staging, { recursive: true, force: true });
    throw e;
  }
  const installed = await installBundle(p.home, staging, 'download', { origin: urls.kubernetes, signal, onStatus: update });
  return { dir: installed.dir, manifest: installed.manifest, manifestSha256: installed.manifestSha256 };
}
