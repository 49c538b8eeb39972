import type { KubernetesRelease } from './versions.ts';

/**
 * Where the official release artifacts of a node bundle are, in each
 * project's own URL layout, below a base URL that is a setting (so an
 * internal mirror of the same layout works). Each artifact comes with the
 * checksum file its project publishes beside it, and the name that file
 * lists it under.
 */
export interface ReleaseUrls {
  readonly kubernetes: string;
  readonly containerd: string;
  readonly runc: string;
  readonly cniPlugins: string;
  readonly criTools: string;
}

/** The settings that hold the base URLs, with their defaults (the projects' own download locations). */
export const RELEASE_URL_SETTINGS: Readonly<Record<keyof ReleaseUrls, { readonly key: string; readonly defaultUrl: string }>> = {
  kubernetes: { key: 'kubernetes-release-url', defaultUrl: 'https://dl.k8s.io/release' },
  containerd: { key: 'containerd-release-url', defaultUrl: 'https://github.com/containerd/containerd/releases/download' },
  runc: { key: 'runc-release-url', defaultUrl: 'https://github.com/opencontainers/runc/releases/download' },
  cniPlugins: { key: 'cni-plugins-release-url', defaultUrl: 'https://github.com/containernetworking/plugins/releases/download' },
  criTools: { key: 'cri-tools-release-url', defaultUrl: 'https://github.com/kubernetes-sigs/cri-tools/releases/download' },
};

export const DEFAULT_RELEASE_URLS: ReleaseUrls = {
  kubernetes: RELEASE_URL_SETTINGS.kubernetes.defaultUrl,
  containerd: RELEASE_URL_SETTINGS.containerd.defaultUrl,
  runc: RELEASE_URL_SETTINGS.runc.defaultUrl,
  cniPlugins: RELEASE_URL_SETTINGS.cniPlugins.defaultUrl,
  criTools: RELEASE_URL_SETTINGS.criTools.defaultUrl,
};

/** The base URLs from resolved setting values (settingValues() of a profile's config). */
export function releaseUrlsFrom(values: Readonly<Record<string, unknown>>): ReleaseUrls {
  const pick = (k: keyof ReleaseUrls): string => {
    const v = values[RELEASE_URL_SETTINGS[k].key];
    return typeof v === 'string' && v !== '' ? v : RELEASE_URL_SETTINGS[k].defaultUrl;
  };
  return { kubernetes: pick('kubernetes'), containerd: pick('containerd'), runc: pick('runc'), cniPlugins: pick('cniPlugins'), criTools: pick('criTools') };
}

export const BUNDLE_ARCHITECTURES = ['amd64', 'arm64'] as const;
export type BundleArchitecture = (typeof BUNDLE_ARCHITECTURES)[number];

/** Node's process.arch as the Go architecture names every release uses; undefined when no release exists for it. */
export function goArch(nodeArch: string): BundleArchitecture | undefined {
  if (nodeArch === 'x64') return 'amd64';
  if (nodeArch === 'arm64') return 'arm64';
  return undefined;
}

export type ArtifactName = 'kubeadm' | 'kubelet' | 'kubectl' | 'containerd' | 'runc' | 'cni-plugins' | 'crictl';

export interface ReleaseArtifact {
  readonly name: ArtifactName;
  readonly url: string;
  readonly checksumUrl: string;
  /** The artifact's file name: what a multi-line checksum file lists it under, and what it is saved as. */
  readonly fileName: string;
  /** The setting whose base URL this comes from, for messages. */
  readonly setting: string;
  /** Which files of the artifact go where in the bundle: archive member (or '' for the file itself) to bundle path. */
  readonly contents: ReadonlyArray<{ readonly member: string; readonly path: string }>;
}

function base(url: string): string {
  return url.replace(/\/+$/, '');
}

function kubernetesBinary(name: 'kubeadm' | 'kubelet' | 'kubectl', version: string, arch: string, urls: ReleaseUrls): ReleaseArtifact {
  const url = `${base(urls.kubernetes)}/${version}/bin/linux/${arch}/${name}`;
  return { name, url, checksumUrl: `${url}.sha256`, fileName: name, setting: RELEASE_URL_SETTINGS.kubernetes.key, contents: [{ member: '', path: `bin/${name}` }] };
}

/** The seven artifacts of a node bundle for one release and architecture, in download order. */
export function bundleArtifacts(release: KubernetesRelease, arch: BundleArchitecture, urls: ReleaseUrls): ReleaseArtifact[] {
  const v = release.version;
  // containerd names its archives without the v: containerd-2.4.2-linux-amd64.tar.gz under tag v2.4.2.
  const ctdFile = `containerd-${release.containerd.replace(/^v/, '')}-linux-${arch}.tar.gz`;
  const ctdUrl = `${base(urls.containerd)}/${release.containerd}/${ctdFile}`;
  const runcFile = `runc.${arch}`;
  const cniFile = `cni-plugins-linux-${arch}-${release.cniPlugins}.tgz`;
  const cniUrl = `${base(urls.cniPlugins)}/${release.cniPlugins}/${cniFile}`;
  const crictlFile = `crictl-${release.crictl}-linux-${arch}.tar.gz`;
  const crictlUrl = `${base(urls.criTools)}/${release.crictl}/${crictlFile}`;
  return [
    kubernetesBinary('kubeadm', v, arch, urls),
    kubernetesBinary('kubelet', v, arch, urls),
    kubernetesBinary('kubectl', v, arch, urls),
    {
      name: 'containerd', url: ctdUrl, checksumUrl: `${ctdUrl}.sha256sum`, fileName: ctdFile, setting: RELEASE_URL_SETTINGS.containerd.key,
      contents: ['containerd', 'ctr', 'containerd-shim-runc-v2'].map((b) => ({ member: `bin/${b}`, path: `bin/${b}` })),
    },
    {
      // One runc.sha256sum for every architecture's binary and the source tarball.
      name: 'runc', url: `${base(urls.runc)}/${release.runc}/${runcFile}`, checksumUrl: `${base(urls.runc)}/${release.runc}/runc.sha256sum`,
      fileName: runcFile, setting: RELEASE_URL_SETTINGS.runc.key, contents: [{ member: '', path: 'bin/runc' }],
    },
    {
      name: 'cni-plugins', url: cniUrl, checksumUrl: `${cniUrl}.sha256`, fileName: cniFile, setting: RELEASE_URL_SETTINGS.cniPlugins.key,
      contents: ['bridge', 'host-local', 'loopback', 'portmap'].map((p) => ({ member: p, path: `cni/${p}` })),
    },
    {
      name: 'crictl', url: crictlUrl, checksumUrl: `${crictlUrl}.sha256`, fileName: crictlFile, setting: RELEASE_URL_SETTINGS.criTools.key,
      contents: [{ member: 'crictl', path: 'bin/crictl' }],
    },
  ];
}

export type HostOs = 'linux' | 'darwin' | 'windows';

/** Node's process.platform as the release's OS directory name. */
export function hostOs(platform: NodeJS.Platform): HostOs | undefined {
  if (platform === 'win32') return 'windows';
  if (platform === 'darwin' || platform === 'linux') return platform;
  return undefined;
}

/** kubectl for the host: <k8s>/vX/bin/<os>/<arch>/kubectl, kubectl.exe on Windows, each with its .sha256. */
export function hostKubectlArtifact(version: string, os: HostOs, arch: BundleArchitecture, urls: ReleaseUrls): ReleaseArtifact {
  const fileName = os === 'windows' ? 'kubectl.exe' : 'kubectl';
  const url = `${base(urls.kubernetes)}/${version}/bin/${os}/${arch}/${fileName}`;
  return { name: 'kubectl', url, checksumUrl: `${url}.sha256`, fileName, setting: RELEASE_URL_SETTINGS.kubernetes.key, contents: [{ member: '', path: fileName }] };
}
