import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { downloadBundle, refuseOffline } from '../kube/bundle-download.ts';
import { bundleMediumPath, ensureBundleMedium } from '../kube/bundle-medium.ts';
import type { BundleMedium } from '../kube/bundle-medium.ts';
import { createBundleStaging, findBundle, installBundle } from '../kube/bundle-store.ts';
import type { FoundBundle } from '../kube/bundle-store.ts';
import { goArch, releaseUrlsFrom } from '../kube/release-urls.ts';
import { resolveKubernetesVersion } from '../kube/versions.ts';
import { homePaths } from '../profile/paths.ts';
import { DevclusterError } from '../ui/errors.ts';
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

/** A cached bundle with the medium that hands it to the guest. */
export interface PreparedBundle extends FoundBundle {
  readonly medium: BundleMedium;
}

/**
 * The cached bundle for `version` (downloaded from the release URLs, verified
 * and resumable, when there is none) and its medium, written when missing.
 */
export async function ensureBundle(p: OpenProfile, version: string, signal: AbortSignal, update: (detail: string) => void): Promise<PreparedBundle> {
  const bundle = (await findBundle(p.home, version)) ?? (await downloadToCache(p, version, signal, update));
  update(`preparing the guest medium ${bundleMediumPath(p.home, version)}`);
  const medium = await ensureBundleMedium(p.home, bundle, signal);
  update(`cached in ${bundle.dir}${medium.written ? ', guest medium written' : ''}`);
  return { ...bundle, medium };
}

async function downloadToCache(p: OpenProfile, version: string, signal: AbortSignal, update: (detail: string) => void): Promise<FoundBundle> {
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
