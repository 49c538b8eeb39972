import { createHash } from 'node:crypto';
import { quoteShellArg } from '../host/posix-quote.ts';
import type { SshSession } from '../ssh/session.ts';
import { DevclusterError } from '../ui/errors.ts';
import type { BundleFile, BundleImage, BundleManifest } from './bundle-manifest.ts';
import { CONTAINERD_ROOT, CRI_NAMESPACE, GUEST_BIN_DIR, GUEST_CNI_BIN_DIR, GUEST_SBIN_DIR } from './node-files.ts';
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

/** The bundle files the guest needs: binaries, CNI plugins, the image archives and the preload. */
export function filesForGuest(manifest: BundleManifest): BundleFile[] {
  const wanted = new Set(manifest.images.map((i) => i.file));
  if (manifest.preload !== undefined) wanted.add(manifest.preload.file);
  return manifest.files.filter((f) => guestDestination(f.path) !== undefined || wanted.has(f.path));
}

/**
 * Shell lines that extract a preload archive into containerd's root, only
 * when that root does not exist (a containerd that ever ran has state of its
 * own, and its images are then imported instead). The archive is extracted
 * beside the root and renamed into place when whole, so an interrupted
 * extraction never looks like a containerd state. Runs in the background
 * (the binaries are copied meanwhile, on the other vCPU); `preload_wait`
 * waits for it and prints "preloaded" when it ran.
 */
export function preloadScript(archive: string, root: string): string[] {
  const [from, into, staging] = [archive, root, `${root}.devcluster-preload`].map(quoteShellArg);
  return [
    'preload_pid=',
    // A script that fails while the extraction runs stops it: a later start removes what it left.
    'trap \'[ -z "$preload_pid" ] || kill "$preload_pid" 2>/dev/null\' EXIT',
    `if [ ! -e ${into} ]; then`,
    `  rm -rf ${staging}`,
    `  mkdir -p ${staging}`,
    // Every attribute: overlay's opaque-directory markers are trusted.* attributes, which tar restores only when asked.
    `  tar --extract --file ${from} --directory ${staging} --numeric-owner --same-permissions --xattrs --xattrs-include='*' &`,
    '  preload_pid=$!',
    'fi',
    'preload_wait() {',
    '  [ -n "$preload_pid" ] || return 0',
    '  wait "$preload_pid"',
    '  preload_pid=',
    // containerd makes its root 0711 (an archive's "." entry may say otherwise): other users may reach the snapshots it hands to containers, not list them.
    `  chmod 0711 ${staging}`,
    `  mv ${staging} ${into}`,
    // Flushed before the bundle marker can say the node is ready.
    `  sync -f ${into}`,
    '  echo preloaded',
    '}',
  ];
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

/** `sha256sum` output as path -> digest (files it could not read are absent). */
function parseSha256sum(stdout: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const line of stdout.split('\n')) {
    const m = /^([0-9a-f]{64}) [ *](.+)$/.exec(line);
    if (m !== null) out.set(m[2] as string, m[1] as string);
  }
  return out;
}

/** Shell lines that find the bundle's medium by its label and mount it read-only (idempotent), then print its manifest's sha256, or "absent". */
function mountLines(label: string): string[] {
  const m = GUEST_MEDIUM_MOUNT;
  return [
    `dev=$(blkid -L ${quoteShellArg(label)}) || { echo absent; exit 0; }`,
    `mkdir -p ${m}`,
    `mountpoint -q ${m} || mount -t iso9660 -o ro,nosuid,nodev "$dev" ${m} || exit 1`,
    `sha256sum ${m}/manifest.json`,
  ];
}

/** What mountLines printed: the medium is there and holds this bundle, or an error says which is not so. */
async function checkMounted(ssh: SshSession, stdout: string, medium: { label: string; manifestSha256: string }): Promise<void> {
  const m = GUEST_MEDIUM_MOUNT;
  if (stdout.trim() === 'absent') {
    throw new DevclusterError('KUBE_BUNDLE_MEDIUM_MISSING', `the guest sees no disk labelled ${medium.label}, the ISO that carries the node bundle`, {
      advice: [
        'Either the hypervisor did not attach it, or an earlier devcluster made this VM: it copied the bundle over SSH and attached no medium.',
        '    Such a VM starts as long as the bundle installed in it matches the cached one. This start needs an install because the cached bundle changed, or an image is missing from containerd.',
        '    To keep the cluster, put back the bundle it was made with (`devcluster bundle import`). Otherwise recreate the VM with `devcluster delete`, then `devcluster start`; delete removes the cluster and everything in it.',
      ].join('\n'),
    });
  }
  const digest = parseSha256sum(stdout).get(`${m}/manifest.json`);
  if (digest !== medium.manifestSha256) {
    await ssh.exec(sudo(`umount ${m}`));
    throw new DevclusterError('KUBE_BUNDLE_MEDIUM_STALE', `the bundle medium the VM has attached holds another bundle (manifest sha256 ${digest ?? 'unreadable'}) than the one this start installs (${medium.manifestSha256})`, {
      advice: 'The cached bundle was replaced while the VM ran. Run `devcluster stop`, then `devcluster start`, so the VM boots with the current medium.',
    });
  }
}

/** Finds the bundle's medium by its label and mounts it read-only; idempotent. */
export async function mountBundleMedium(ssh: SshSession, medium: { label: string; manifestSha256: string }): Promise<void> {
  const r = await ssh.run(sudo(mountLines(medium.label).join('\n')));
  await checkMounted(ssh, r.stdout, medium);
}

/**
 * The medium, as the install uses it: `ready()` mounts it when it is not yet
 * and waits for the host's check of its bytes; nothing is read from it before.
 */
export interface MediumAccess {
  readonly label: string;
  readonly manifestSha256: string;
  /** Set once the guest has it mounted. */
  mounted: boolean;
  ready(): Promise<void>;
}

export interface GuestInstall {
  bundle: 'installed' | 'unchanged';
  /** The images arrived as the bundle's preloaded containerd state (they are then not imported). */
  preloaded: boolean;
}

/**
 * Installs the bundle's binaries from the mounted medium and, on a node
 * whose containerd never ran, extracts the bundle's preload. Idempotent: an
 * installed bundle with the same manifest is left as it is.
 */
export async function installBundleInGuest(ssh: SshSession, manifest: BundleManifest, medium: MediumAccess, progress: InstallProgress): Promise<GuestInstall> {
  // One command: the marker says whether this bundle is installed; when not, the medium is mounted at once.
  const installed = `"manifestSha256":"${medium.manifestSha256}"`;
  const first = await ssh.run(sudo([`if grep -qF ${quoteShellArg(installed)} ${GUEST_BUNDLE_MARKER} 2>/dev/null; then echo unchanged; exit 0; fi`, ...mountLines(medium.label)].join('\n')));
  if (first.stdout.trim() === 'unchanged') return { bundle: 'unchanged', preloaded: false };
  await checkMounted(ssh, first.stdout, medium);
  medium.mounted = true;
  await medium.ready();
  const { preload } = manifest;
  progress(preload === undefined ? 'installing binaries' : 'installing binaries (and, on a new node, the preloaded images)');
  const placements = filesForGuest(manifest).flatMap((f) => {
    const to = guestDestination(f.path);
    return to === undefined ? [] : [`install -D -m 0755 ${GUEST_MEDIUM_MOUNT}/${mediumFileName(f.path)} ${to}`];
  });
  const script = [
    'set -e',
    ...(preload === undefined ? ['preload_wait() { :; }'] : preloadScript(`${GUEST_MEDIUM_MOUNT}/${mediumFileName(preload.file)}`, CONTAINERD_ROOT)),
    ...placements,
    // Earlier devcluster versions copied the bundle into this staging directory over SSH; an interrupted copy left it there.
    `rm -rf ${LEGACY_STAGING}`,
    'preload_wait',
  ];
  const r = await ssh.run(sudo(script.join('\n')), { timeoutMs: 10 * 60_000 });
  return { bundle: 'installed', preloaded: r.stdout.split('\n').includes('preloaded') };
}

/**
 * After the images are in containerd: the marker says the bundle is in place
 * (when it was installed now), and the medium is let go. One command.
 */
export async function finishBundleInstall(ssh: SshSession, installed: InstalledBundleMarker | undefined): Promise<void> {
  const m = GUEST_MEDIUM_MOUNT;
  const marker = installed === undefined ? [] : [
    `mkdir -p ${quoteShellArg(GUEST_BUNDLE_MARKER.slice(0, GUEST_BUNDLE_MARKER.lastIndexOf('/')))}`,
    // Written beside the marker and renamed, so the marker is never half there.
    `printf '%s\\n' ${quoteShellArg(JSON.stringify(installed))} >${GUEST_BUNDLE_MARKER}.tmp`,
    `chmod 0644 ${GUEST_BUNDLE_MARKER}.tmp`,
    `mv ${GUEST_BUNDLE_MARKER}.tmp ${GUEST_BUNDLE_MARKER}`,
  ];
  await ssh.run(sudo(['set -e', ...marker, `if mountpoint -q ${m}; then umount ${m}; fi`].join('\n')));
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
export async function importBundleImages(ssh: SshSession, manifest: BundleManifest, medium: MediumAccess, progress: InstallProgress): Promise<number> {
  const present = await presentImages(ssh);
  const missing = manifest.images.filter((i) => !present.has(`${i.ref}@${i.manifestDigest}`));
  if (missing.length === 0) return 0;
  await medium.ready();
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
