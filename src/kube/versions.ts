import { DevclusterError, inputError } from '../ui/errors.ts';
import type { FetchText } from '../image/fetch-text.ts';

/**
 * The Kubernetes releases devcluster installs: the newest patch release the
 * Go module proxy serves (`go list -m -versions k8s.io/kubernetes`) and the
 * newest patch of the minor before it. Each pins what its node bundle carries
 * besides Kubernetes, and the image tags its kubeadm asks for, so a bundle is
 * the same set of versions whether it is downloaded, built or imported.
 *
 * Loaded by the settings parser: no imports beyond the error catalog here
 * (the HTTP client is loaded only when "stable" is resolved).
 */
export interface KubernetesRelease {
  /** v1.37.2 */
  readonly version: string;
  /** Release tags of the runtime parts, as their projects publish them. */
  readonly containerd: string;
  readonly runc: string;
  readonly crictl: string;
  readonly cniPlugins: string;
  /** The tags in kubeadm's cmd/kubeadm/app/constants/constants.go for this release (DefaultEtcdVersion, CoreDNSVersion, PauseVersion). */
  readonly kubeadmImages: { readonly etcd: string; readonly coredns: string; readonly pause: string };
}

export const KUBERNETES_RELEASES: readonly KubernetesRelease[] = [
  {
    version: 'v1.37.2',
    // images/kubernetes/versions.env (the built bundle's versions; a test keeps the two equal).
    containerd: 'v2.4.2',
    runc: 'v1.5.3',
    crictl: 'v1.37.0',
    cniPlugins: 'v1.10.0',
    kubeadmImages: { etcd: '3.7.0-0', coredns: 'v1.14.6', pause: '3.10.2' },
  },
  {
    version: 'v1.36.3',
    // containerd's RELEASES.md lists 1.36 with 2.3.0+ and 2.2.0+; v2.3.7 is the newest 2.3 patch.
    // containerd v2.3.7 tests with runc v1.5.2 (script/setup/runc-version); v1.5.3 is that line's newest patch.
    // cri-tools releases track Kubernetes minors; v1.36.0 is the only 1.36 release.
    containerd: 'v2.3.7',
    runc: 'v1.5.3',
    crictl: 'v1.36.0',
    cniPlugins: 'v1.10.0',
    kubeadmImages: { etcd: '3.6.8-0', coredns: 'v1.14.2', pause: '3.10.2' },
  },
];

export const DEFAULT_KUBERNETES_VERSION = 'v1.37.2';
export const SUPPORTED_KUBERNETES_VERSIONS: readonly string[] = KUBERNETES_RELEASES.map((r) => r.version);

export function kubernetesRelease(version: string): KubernetesRelease | undefined {
  return KUBERNETES_RELEASES.find((r) => r.version === version);
}

/** "v1.37.2 (the default) or v1.36.3", for messages. */
export function supportedVersionsText(): string {
  const names = SUPPORTED_KUBERNETES_VERSIONS.map((v) => (v === DEFAULT_KUBERNETES_VERSION ? `${v} (the default)` : v));
  return names.length <= 1 ? names.join('') : `${names.slice(0, -1).join(', ')} or ${names.at(-1) as string}`;
}

/**
 * The manifest's components for a release: what its bundle carries and the
 * versions of the images kubeadm runs, written as images/kubernetes/build.sh
 * writes them (etcd's image tag 3.7.0-0 is etcd v3.7.0).
 */
export function bundleComponents(release: KubernetesRelease): Record<string, string> {
  return {
    'cni-plugins': release.cniPlugins,
    containerd: release.containerd,
    coredns: release.kubeadmImages.coredns,
    crictl: release.crictl,
    etcd: `v${release.kubeadmImages.etcd.replace(/-\d+$/, '')}`,
    kubernetes: release.version,
    pause: release.kubeadmImages.pause,
    runc: release.runc,
  };
}

export function unsupportedVersionError(version: string, origin: string): DevclusterError {
  return inputError('KUBERNETES_VERSION_UNSUPPORTED', `${origin}: Kubernetes ${version} is not one devcluster installs; supported: ${supportedVersionsText()}`, {
    advice: `Choose one of ${SUPPORTED_KUBERNETES_VERSIONS.join(', ')}, e.g. --kubernetes-version ${DEFAULT_KUBERNETES_VERSION}.`,
    details: { version, supported: SUPPORTED_KUBERNETES_VERSIONS },
  });
}

const CHANNELS = { stable: 'stable.txt', latest: 'latest.txt' } as const;

export interface ResolveOptions {
  /** The kubernetes-release-url setting, e.g. https://dl.k8s.io/release. */
  readonly releaseUrl: string;
  readonly offline: boolean;
  /** Default: fetchText from src/image/fetch-text.ts. */
  readonly fetchText?: FetchText;
  readonly signal?: AbortSignal;
  readonly env?: NodeJS.ProcessEnv;
}

/**
 * The version to install for a kubernetes-version value: a supported pinned
 * version as is; "stable" or "latest" read from <releaseUrl>/stable.txt
 * (latest.txt) and accepted only when devcluster supports what it names.
 */
export async function resolveKubernetesVersion(value: string, options: ResolveOptions): Promise<string> {
  const v = value.trim();
  if (v !== 'stable' && v !== 'latest') {
    if (kubernetesRelease(v) === undefined) throw unsupportedVersionError(v, 'kubernetes-version');
    return v;
  }
  const url = `${options.releaseUrl.replace(/\/+$/, '')}/${CHANNELS[v]}`;
  const pinInstead = `Pin a version instead: --kubernetes-version ${DEFAULT_KUBERNETES_VERSION} (supported: ${SUPPORTED_KUBERNETES_VERSIONS.join(', ')}).`;
  if (options.offline) {
    throw new DevclusterError('KUBERNETES_VERSION_UNRESOLVED', `kubernetes-version "${v}" needs ${url}, and offline is set`, {
      advice: pinInstead,
      details: { url, supported: SUPPORTED_KUBERNETES_VERSIONS },
    });
  }
  const fetch = options.fetchText ?? (await import('../image/fetch-text.ts')).fetchText;
  let text: string;
  try {
    text = await fetch(url, { ...(options.signal === undefined ? {} : { signal: options.signal }), ...(options.env === undefined ? {} : { env: options.env }) });
  } catch (e) {
    if (options.signal?.aborted === true) throw e;
    throw new DevclusterError('KUBERNETES_VERSION_UNRESOLVED', `kubernetes-version "${v}": ${(e as Error).message}`, {
      advice: `${pinInstead} Or point kubernetes-release-url at a mirror that serves ${CHANNELS[v]}.`,
      details: { url, supported: SUPPORTED_KUBERNETES_VERSIONS },
      cause: e,
    });
  }
  const named = text.trim();
  if (!/^v\d+\.\d+\.\d+(?:-[0-9A-Za-z.-]+)?$/.test(named)) {
    throw new DevclusterError('KUBERNETES_VERSION_UNRESOLVED', `kubernetes-version "${v}": ${url} does not hold a version (it starts with ${JSON.stringify(named.slice(0, 40))})`, {
      advice: `${pinInstead} Check kubernetes-release-url: it should serve the layout of https://dl.k8s.io/release.`,
      details: { url },
    });
  }
  if (kubernetesRelease(named) === undefined) throw unsupportedVersionError(named, `kubernetes-version "${v}" (${url})`);
  return named;
}
