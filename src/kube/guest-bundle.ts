import { createHash } from 'node:crypto';
import { quoteShellArg } from '../host/posix-quote.ts';
import type { SshSession } from '../ssh/session.ts';
import { DevclusterError } from '../ui/errors.ts';
import type { BundleFile, BundleImage, BundleManifest } from './bundle-manifest.ts';
import { CRI_NAMESPACE, GUEST_BIN_DIR, GUEST_CNI_BIN_DIR, GUEST_SBIN_DIR } from './node-files.ts';
import type { GuestFile } from './node-files.ts';
import './bootstrap-errors.ts';

/** Where the bundle's medium is mounted while it is installed (a tmpfs: gone after a reboot). */
export const GUEST_MEDIUM_MOUNT = '/run/devcluster/bundle';
const LEGACY_STAGING = '/var/lib/devcluster/bundle/staging';
/** Written last: the installed bundle's manifest digest. Its presence means every binary is in place. */
export const GUEST_BUNDLE_MARKER = '/var/lib/devcluster/bundle/installed.json';
/** Image imports at once: one `ctr import` leaves a second vCPU mostly idle (two at once took 77 s instead of 119 s for the seven images on two emulated vCPUs). */
const IMPORT_CONCURRENCY = 2;

export interface InstalledBundleMarker {
  kubernetesVersion: string;
  manifestSha256: string;
}

/** Where each part of the bundle goes in the guest; components/ and versions/ stay on the host. */
export function guestDestination(path: string): string | undefined {
  const [dir, name, ...rest] = path.split('/');
  if (name === undefined || rest.length > 0) return undefined;
  if (dir === 'bin') return name === 'runc' ? `${GUEST_SBIN_DIR}/runc` : `${GUEST_BIN_DIR}/${name}`;
  if (dir === 'cni') return `${GUEST_CNI_BIN_DIR}/${name}`;
  return undefined;
}

/** The bundle files the guest needs: binaries, CNI plugins and the image archives. */
export function filesForGuest(manifest: BundleManifest): BundleFile[] {
  const images = new Set(manifest.images.map((i) => i.file));
  return manifest.files.filter((f) => guestDestination(f.path) !== undefined || images.has(f.path));
}

/** The medium's name for a bundle path: the ISO writer makes flat volumes, so the directory joins the name. */
export function mediumFileName(bundlePath: string): string {
  return bundlePath.replaceAll('/', '.');
}

export interface InstallProgress {
  (detail: string): void;
}

/** A shell script run as root in the guest. */
export function sudo(script: string): string {
  return `sudo sh -c ${quoteShellArg(script)}`;
}

async function readMarker(ssh: SshSession): Promise<InstalledBundleMarker | undefined> {
  const r = await ssh.exec(sudo(`cat ${GUEST_BUNDLE_MARKER} 2>/dev/null`));
  if (r.code !== 0) return undefined;
  try {
    return JSON.parse(r.stdout) as InstalledBundleMarker;
  } catch {
    return undefined;
  }
}

/** `sha256sum` output as path -> digest (files it could not read are absent). */
function parseSha256sum(stdout: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const line of stdout.split('\n')) {
    const m = /^([0-9a-f]{64}) [ *](.+)$/.exec(line);
    if (m !== null) out.set(m[2] as string, m[1] as string);
  }
  return out;
}

/** Finds the bundle's medium by its label and mounts it read-only; idempotent. */
export async function mountBundleMedium(ssh: SshSession, medium: { label: string; manifestSha256: string }): Promise<void> {
  const m = GUEST_MEDIUM_MOUNT;
  const script = [
    `dev=$(blkid -L ${quoteShellArg(medium.label)}) || { echo absent; exit 0; }`,
    `mkdir -p ${m}`,
    `mountpoint -q ${m} || mount -t iso9660 -o ro,nosuid,nodev "$dev" ${m} || exit 1`,
    `sha256sum ${m}/manifest.json`,
  ].join('\n');
  const r = await ssh.run(sudo(script));
  if (r.stdout.trim() === 'absent') {
    throw new DevclusterError('KUBE_BUNDLE_MEDIUM_MISSING', `the guest sees no disk labelled ${medium.label}, the ISO that carries the node bundle`, {
      advice: [
        'Either the hypervisor did not attach it, or an earlier devcluster made this VM: it copied the bundle over SSH and attached no medium.',
        '    Such a VM starts as long as the bundle installed in it matches the cached one. This start needs an install because the cached bundle changed, or an image is missing from containerd.',
        '    To keep the cluster, put back the bundle it was made with (`devcluster bundle import`). Otherwise recreate the VM with `devcluster delete`, then `devcluster start`; delete removes the cluster and everything in it.',
      ].join('\n'),
    });
  }
  const digest = parseSha256sum(r.stdout).get(`${m}/manifest.json`);
  if (digest !== medium.manifestSha256) {
    await ssh.exec(sudo(`umount ${m}`));
    throw new DevclusterError('KUBE_BUNDLE_MEDIUM_STALE', `the bundle medium the VM has attached holds another bundle (manifest sha256 ${digest ?? 'unreadable'}) than the one this start installs (${medium.manifestSha256})`, {
      advice: 'The cached bundle was replaced while the VM ran. Run `devcluster stop`, then `devcluster start`, so the VM boots with the current medium.',
    });
  }
}

/** Mounts the medium once, the first time something needs it. */
export type MediumMount = () => Promise<void>;

/**
 * Installs the bundle's binaries from the mounted medium. Idempotent: an
 * installed bundle with the same manifest is left as it is.
 */
export async function installBundleInGuest(
  ssh: SshSession,
  manifest: BundleManifest,
  mount: MediumMount,
  progress: InstallProgress,
  manifestSha256: string,
): Promise<'installed' | 'unchanged'> {
  const marker = await readMarker(ssh);
  if (marker?.manifestSha256 === manifestSha256) return 'unchanged';
  await mount();
  progress('installing binaries');
  const placements = filesForGuest(manifest).flatMap((f) => {
    const to = guestDestination(f.path);
    return to === undefined ? [] : [`install -D -m 0755 ${GUEST_MEDIUM_MOUNT}/${mediumFileName(f.path)} ${to}`];
  });
  // Earlier devcluster versions copied the bundle into this staging directory over SSH; an interrupted copy left it there.
  await ssh.run(sudo(['set -e', ...placements, `rm -rf ${LEGACY_STAGING}`].join('\n')), { timeoutMs: 5 * 60_000 });
  return 'installed';
}

/** After the images are imported: the marker says the bundle is in place, and the medium is let go. */
export async function finishBundleInstall(ssh: SshSession, manifest: BundleManifest, manifestSha256: string): Promise<void> {
  const marker: InstalledBundleMarker = { kubernetesVersion: manifest.kubernetesVersion, manifestSha256 };
  await writeGuestFiles(ssh, [{ path: GUEST_BUNDLE_MARKER, content: `${JSON.stringify(marker)}\n`, mode: 0o644 }]);
}

export async function unmountBundleMedium(ssh: SshSession): Promise<void> {
  await ssh.run(sudo(`if mountpoint -q ${GUEST_MEDIUM_MOUNT}; then umount ${GUEST_MEDIUM_MOUNT}; fi`));
}

/** Images in containerd's CRI namespace, as ref@digest. */
async function presentImages(ssh: SshSession): Promise<Set<string>> {
  const listed = await ssh.run(sudo(`${GUEST_BIN_DIR}/ctr -n ${CRI_NAMESPACE} images ls`));
  const present = new Set<string>();
  for (const line of listed.stdout.split('\n').slice(1)) {
    const [ref, , digest] = line.trim().split(/\s+/);
    if (ref !== undefined && digest !== undefined) present.add(`${ref}@${digest}`);
  }
  return present;
}

/**
 * Imports the bundle's images into containerd's CRI namespace from the
 * medium, skipping those already there with the manifest's digest, then
 * checks each landed with that digest (containerd verifies every blob
 * against it, so this proves the content).
 */
export async function importBundleImages(ssh: SshSession, manifest: BundleManifest, mount: MediumMount, progress: InstallProgress): Promise<number> {
  const present = await presentImages(ssh);
  const missing = manifest.images.filter((i) => !present.has(`${i.ref}@${i.manifestDigest}`));
  if (missing.length === 0) return 0;
  await mount();
  // Largest first, so the parallel imports end close together.
  const size = (i: BundleImage): number => manifest.files.find((f) => f.path === i.file)?.size ?? 0;
  const queue = [...missing].sort((a, b) => size(b) - size(a));
  let started = 0;
  let failed = false;
  const worker = async (): Promise<void> => {
    // After one import failed, the other worker starts no new one: the start is failing anyway.
    for (let image = queue.shift(); image !== undefined && !failed; image = queue.shift()) {
      started++;
      progress(`importing ${image.ref} (${started}/${missing.length})`);
      await ssh.run(sudo(`${GUEST_BIN_DIR}/ctr -n ${CRI_NAMESPACE} images import --platform linux/${manifest.platform.architecture} ${GUEST_MEDIUM_MOUNT}/${mediumFileName(image.file)}`), {
        timeoutMs: 15 * 60_000,
      }).catch((e: unknown) => {
        failed = true;
        throw e;
      });
    }
  };
  await Promise.all(Array.from({ length: Math.min(IMPORT_CONCURRENCY, missing.length) }, worker));
  const after = await presentImages(ssh);
  const wrong = missing.filter((i) => !after.has(`${i.ref}@${i.manifestDigest}`));
  if (wrong.length > 0) {
    throw new Error(`after the import, containerd does not hold ${wrong.map((i) => `${i.ref}@${i.manifestDigest}`).join(', ')}`);
  }
  return missing.length;
}

/**
 * Writes files as root, each only when its content differs (one sha256sum
 * over all of them first, then one command for every change: each command
 * costs about a second in an emulated guest). Returns the paths that
 * changed, so the caller restarts only what must be restarted.
 */
export async function writeGuestFiles(ssh: SshSession, files: readonly GuestFile[]): Promise<string[]> {
  if (files.length === 0) return [];
  const present = await ssh.exec(sudo(`sha256sum -- ${files.map((f) => quoteShellArg(f.path)).join(' ')} 2>/dev/null`));
  const digests = parseSha256sum(present.stdout);
  const changed = files.filter((f) => digests.get(f.path) !== createHash('sha256').update(f.content).digest('hex'));
  if (changed.length === 0) return [];
  // Contents travel as base64 on stdin, one line per file, so no quoting can break them.
  // The temp file may hold a private key: it goes however the script ends.
  const script = ['set -e', 't=$(mktemp)', 'trap \'rm -f "$t"\' EXIT', ...changed.map((f) => `read -r b64; printf '%s' "$b64" | base64 -d >"$t"; install -D -m ${f.mode.toString(8)} "$t" ${quoteShellArg(f.path)}`)].join('\n');
  const input = changed.map((f) => `${Buffer.from(f.content).toString('base64')}\n`).join('');
  await ssh.run(sudo(script), { input });
  return changed.map((f) => f.path);
}
