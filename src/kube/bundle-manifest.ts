import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { lstat, readdir } from 'node:fs/promises';
import { isAbsolute, join, relative, sep } from 'node:path';

/**
 * manifest.json at the root of a Kubernetes node bundle, as
 * images/kubernetes/bundletool writes it (manifest.go there has the same
 * shape; change both together). Paths are relative, slash-separated.
 */
export interface BundleManifest {
  readonly schemaVersion: 1;
  readonly kubernetesVersion: string;
  readonly platform: { readonly os: 'linux'; readonly architecture: string };
  /** The Go toolchain of a bundle built from source; a downloaded bundle has none. */
  readonly goVersion?: string;
  /** kubernetes, etcd, containerd, runc, crictl, cni-plugins, coredns, pause: the version each was built at. */
  readonly components: Readonly<Record<string, string>>;
  readonly images: readonly BundleImage[];
  /** containerd's state holding the images unpacked, when the bundle was built with one (build.sh's preload part). */
  readonly preload?: BundlePreload;
  readonly files: readonly BundleFile[];
}

/**
 * A tar of containerd's content store, metadata and snapshots, made by the
 * bundle's own containerd from the bundle's images. The guest extracts it
 * into a containerd that never ran instead of importing the images.
 */
export interface BundlePreload {
  /** One of files. */
  readonly file: string;
  /** The guest's snapshotter and CRI namespace: a state made for others would be unusable there. */
  readonly snapshotter: 'overlayfs';
  readonly namespace: 'k8s.io';
}

export interface BundleImage {
  /** The name containerd gives the image on import, e.g. registry.k8s.io/pause:3.10.2. */
  readonly ref: string;
  /** The OCI layout archive, one of files. */
  readonly file: string;
  readonly manifestDigest: string;
}

export interface BundleFile {
  readonly path: string;
  readonly size: number;
  /** Permission bits, four octal digits. */
  readonly mode: string;
  readonly sha256: string;
}

/** The outcome of a check: the value, or every problem found (each a sentence naming the field or file). */
export type Checked<T> = { readonly ok: true; readonly value: T } | { readonly ok: false; readonly problems: readonly string[] };

const KUBE_VERSION = /^v1\.\d+\.\d+$/;
const SHA256 = /^[0-9a-f]{64}$/;
const DIGEST = /^sha256:[0-9a-f]{64}$/;
const MODE = /^0[0-7]{3}$/;
const COMPONENT = /^[a-z][a-z0-9-]*$/;
// registry/name[:port]/path:tag, no digest: what kubeadm lists and containerd keeps verbatim.
const IMAGE_REF = /^[a-z0-9.-]+(?::\d+)?\/[a-z0-9._/-]+:[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$/;
export const REQUIRED_COMPONENTS = ['kubernetes', 'etcd', 'containerd', 'runc', 'crictl', 'cni-plugins', 'coredns', 'pause'] as const;

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** A relative path that stays inside the bundle directory. */
function isInsidePath(p: string): boolean {
  return p !== '' && !isAbsolute(p) && !p.includes('\\') && !p.split('/').some((s) => s === '' || s === '.' || s === '..');
}

/** Checks the shape of a parsed manifest.json; says every problem, not just the first. */
export function parseBundleManifest(raw: unknown): Checked<BundleManifest> {
  const problems: string[] = [];
  if (!isRecord(raw)) return { ok: false, problems: ['the manifest must be a JSON object'] };
  if (raw['schemaVersion'] !== 1) problems.push(`schemaVersion must be 1, not ${JSON.stringify(raw['schemaVersion'])}`);
  const kubernetesVersion = raw['kubernetesVersion'];
  if (typeof kubernetesVersion !== 'string' || !KUBE_VERSION.test(kubernetesVersion)) problems.push('kubernetesVersion must look like v1.37.2');
  const platform = raw['platform'];
  if (!isRecord(platform) || platform['os'] !== 'linux' || typeof platform['architecture'] !== 'string' || platform['architecture'] === '') {
    problems.push('platform must be { os: "linux", architecture: <name> }');
  }
  const goVersion = raw['goVersion'];
  if (goVersion !== undefined && (typeof goVersion !== 'string' || !goVersion.startsWith('go'))) problems.push('goVersion, when present, must name a Go toolchain such as go1.26.8');

  const components: Record<string, string> = {};
  if (!isRecord(raw['components'])) {
    problems.push('components must be an object of name: version');
  } else {
    for (const [name, v] of Object.entries(raw['components'])) {
      if (!COMPONENT.test(name) || typeof v !== 'string' || v === '') problems.push(`components.${name} must be a non-empty version string`);
      else components[name] = v;
    }
    for (const name of REQUIRED_COMPONENTS) if (!(name in components)) problems.push(`components.${name} is missing`);
    if (typeof kubernetesVersion === 'string' && components['kubernetes'] !== undefined && components['kubernetes'] !== kubernetesVersion) {
      problems.push(`components.kubernetes (${components['kubernetes']}) differs from kubernetesVersion (${kubernetesVersion})`);
    }
  }

  const files: BundleFile[] = [];
  if (!Array.isArray(raw['files'])) {
    problems.push('files must be an array');
  } else {
    const seen = new Set<string>();
    raw['files'].forEach((f: unknown, i) => {
      if (!isRecord(f)) return void problems.push(`files[${i}] must be an object`);
      const { path, size, mode, sha256 } = f;
      if (typeof path !== 'string' || !isInsidePath(path)) return void problems.push(`files[${i}].path must be a relative path inside the bundle`);
      if (path === 'manifest.json') return void problems.push('files must not list manifest.json itself');
      if (seen.has(path)) return void problems.push(`files lists ${path} twice`);
      seen.add(path);
      if (typeof size !== 'number' || !Number.isSafeInteger(size) || size < 0) return void problems.push(`files[${i}] (${path}): size must be a whole number of bytes`);
      if (typeof mode !== 'string' || !MODE.test(mode)) return void problems.push(`files[${i}] (${path}): mode must be four octal digits such as 0755`);
      if (typeof sha256 !== 'string' || !SHA256.test(sha256)) return void problems.push(`files[${i}] (${path}): sha256 must be 64 lowercase hex digits`);
      files.push({ path, size, mode, sha256 });
    });
  }

  const images: BundleImage[] = [];
  if (!Array.isArray(raw['images'])) {
    problems.push('images must be an array');
  } else {
    const listed = new Set(files.map((f) => f.path));
    raw['images'].forEach((img: unknown, i) => {
      if (!isRecord(img)) return void problems.push(`images[${i}] must be an object`);
      const { ref, file, manifestDigest } = img;
      if (typeof ref !== 'string' || !IMAGE_REF.test(ref)) return void problems.push(`images[${i}].ref must be a full reference registry/name:tag`);
      if (typeof file !== 'string' || !listed.has(file)) return void problems.push(`images[${i}] (${ref}): file must be one of the listed files`);
      if (typeof manifestDigest !== 'string' || !DIGEST.test(manifestDigest)) return void problems.push(`images[${i}] (${ref}): manifestDigest must be sha256:<64 hex digits>`);
      images.push({ ref, file, manifestDigest });
    });
  }

  const preload = raw['preload'];
  if (preload !== undefined) {
    const listed = new Set(files.map((f) => f.path));
    if (!isRecord(preload)) problems.push('preload, when present, must be an object');
    else {
      if (typeof preload['file'] !== 'string' || !listed.has(preload['file'])) problems.push('preload.file must be one of the listed files');
      if (preload['snapshotter'] !== 'overlayfs') problems.push(`preload.snapshotter must be "overlayfs" (the guest's), not ${JSON.stringify(preload['snapshotter'])}`);
      if (preload['namespace'] !== 'k8s.io') problems.push(`preload.namespace must be "k8s.io" (the CRI's), not ${JSON.stringify(preload['namespace'])}`);
    }
  }

  if (problems.length > 0) return { ok: false, problems };
  return {
    ok: true,
    value: {
      schemaVersion: 1,
      kubernetesVersion: kubernetesVersion as string,
      platform: { os: 'linux', architecture: (platform as Record<string, string>)['architecture'] as string },
      ...(typeof goVersion === 'string' ? { goVersion } : {}),
      components,
      images,
      ...(preload === undefined ? {} : { preload: { file: (preload as Record<string, string>)['file'] as string, snapshotter: 'overlayfs' as const, namespace: 'k8s.io' as const } }),
      files,
    },
  };
}

async function sha256File(path: string, signal?: AbortSignal): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(path, signal === undefined ? {} : { signal })) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

async function listFiles(dir: string, base: string = dir): Promise<string[]> {
  const out: string[] = [];
  for (const d of await readdir(dir, { withFileTypes: true })) {
    const full = join(dir, d.name);
    if (d.isDirectory()) out.push(...(await listFiles(full, base)));
    else out.push(relative(base, full).split(sep).join('/'));
  }
  return out;
}

/**
 * Checks a bundle directory against its manifest: every listed file present
 * as a regular file with its size, mode and sha256, and nothing on disk that
 * the manifest does not list. Reads every byte; changes nothing.
 */
export async function verifyBundleFiles(dir: string, manifest: BundleManifest, signal?: AbortSignal): Promise<Checked<BundleManifest>> {
  const problems: string[] = [];
  const listed = new Set(manifest.files.map((f) => f.path));
  for (const path of (await listFiles(dir)).sort()) {
    if (path !== 'manifest.json' && !listed.has(path)) problems.push(`${path} is not in the manifest`);
  }
  for (const f of manifest.files) {
    const full = join(dir, ...f.path.split('/'));
    const st = await lstat(full).catch(() => undefined);
    if (st === undefined) { problems.push(`${f.path} is missing`); continue; }
    if (!st.isFile()) { problems.push(`${f.path} is not a regular file`); continue; }
    if (st.size !== f.size) { problems.push(`${f.path} is ${st.size} bytes, the manifest says ${f.size}`); continue; }
    // Windows files have no permission bits to compare; the guest install takes each mode from the manifest.
    const mode = (st.mode & 0o7777).toString(8).padStart(4, '0');
    if (process.platform !== 'win32' && mode !== f.mode) problems.push(`${f.path} has mode ${mode}, the manifest says ${f.mode}`);
    const actual = await sha256File(full, signal);
    if (actual !== f.sha256) problems.push(`${f.path} has sha256 ${actual}, the manifest says ${f.sha256}`);
  }
  return problems.length > 0 ? { ok: false, problems } : { ok: true, value: manifest };
}
