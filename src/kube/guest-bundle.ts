import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { quoteShellArg } from '../host/posix-quote.ts';
import type { SshSession } from '../ssh/session.ts';
import { DevclusterError } from '../ui/errors.ts';
import type { BundleFile, BundleManifest } from './bundle-manifest.ts';
import { CRI_NAMESPACE, GUEST_BIN_DIR, GUEST_CNI_BIN_DIR, GUEST_SBIN_DIR } from './node-files.ts';
import type { GuestFile } from './node-files.ts';
import './bootstrap-errors.ts';

/** Bundle files on their way into the guest; removed once everything is installed. */
const GUEST_STAGING = '/var/lib/devcluster/bundle/staging';
/** Written last: the installed bundle's manifest digest. Its presence means every binary is in place. */
export const GUEST_BUNDLE_MARKER = '/var/lib/devcluster/bundle/installed.json';

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

/** sha256 of each staged file that exists, keyed by its bundle path. */
async function stagedDigests(ssh: SshSession, files: readonly BundleFile[]): Promise<Map<string, string>> {
  const r = await ssh.exec(`cd ${GUEST_STAGING} 2>/dev/null && sha256sum -- ${files.map((f) => quoteShellArg(f.path)).join(' ')} 2>/dev/null`, { timeoutMs: 10 * 60_000 });
  return parseSha256sum(r.stdout);
}

/** The digest the guest's marker records: the bundle's manifest.json bytes. */
export async function bundleManifestSha256(dir: string): Promise<string> {
  return createHash('sha256').update(await readFile(join(dir, 'manifest.json'))).digest('hex');
}

/**
 * Copies the bundle into the guest and installs it, verifying every file's
 * sha256 in the guest before anything is placed. Idempotent: an installed
 * bundle with the same manifest is left as it is, and files already staged
 * by an interrupted start are not sent again.
 */
export async function installBundleInGuest(
  ssh: SshSession,
  bundle: { dir: string; manifest: BundleManifest },
  progress: InstallProgress,
  manifestSha256: string,
): Promise<'installed' | 'unchanged'> {
  const marker = await readMarker(ssh);
  if (marker?.manifestSha256 === manifestSha256) return 'unchanged';

  const files = filesForGuest(bundle.manifest);
  const user = (await ssh.run('id -un')).stdout.trim();
  const dirs = [...new Set(files.map((f) => f.path.split('/')[0] as string))];
  await ssh.run(sudo(`install -d -m 0755 -o ${quoteShellArg(user)} ${GUEST_STAGING} ${dirs.map((d) => `${GUEST_STAGING}/${d}`).join(' ')}`));

  const staged = await stagedDigests(ssh, files);
  const missing = files.filter((f) => staged.get(f.path) !== f.sha256);
  const total = missing.reduce((n, f) => n + f.size, 0);
  let sent = 0;
  for (const f of missing) {
    progress(`copying ${f.path} (${Math.round(sent / 1048576)}/${Math.round(total / 1048576)} MiB)`);
    await ssh.putFile(join(bundle.dir, ...f.path.split('/')), `${GUEST_STAGING}/${f.path}`, Number.parseInt(f.mode, 8));
    sent += f.size;
  }

  progress(`verifying ${files.length} files in the guest`);
  const sums = files.map((f) => `${f.sha256}  ${f.path}\n`).join('');
  const check = await ssh.exec(`cd ${GUEST_STAGING} && sha256sum --quiet -c -`, { input: sums, timeoutMs: 10 * 60_000 });
  if (check.code !== 0) {
    throw new DevclusterError('KUBE_BUNDLE_GUEST_CORRUPT', `the node bundle's files differ from its manifest after the copy into the guest: ${check.stdout.trim().split('\n').slice(0, 3).join('; ')}`, {
      advice: 'Run `devcluster start` again: the damaged files are copied anew. If it repeats, the guest disk may be full (`devcluster ssh -- df -h`).',
    });
  }

  progress('installing binaries');
  const placements = files.flatMap((f) => {
    const to = guestDestination(f.path);
    return to === undefined ? [] : [`install -D -m 0755 ${GUEST_STAGING}/${f.path} ${to}`];
  });
  await ssh.run(sudo(['set -e', ...placements].join('\n')), { timeoutMs: 5 * 60_000 });
  return 'installed';
}

/** After the images are imported: the staging copy goes, and the marker says the bundle is in place. */
export async function finishBundleInstall(ssh: SshSession, manifest: BundleManifest, manifestSha256: string): Promise<void> {
  const marker: InstalledBundleMarker = { kubernetesVersion: manifest.kubernetesVersion, manifestSha256 };
  await writeGuestFiles(ssh, [{ path: GUEST_BUNDLE_MARKER, content: `${JSON.stringify(marker)}\n`, mode: 0o644 }]);
  await ssh.run(sudo(`rm -rf ${GUEST_STAGING}`));
}

/**
 * Imports the bundle's images into containerd's CRI namespace, skipping those
 * already there with the manifest's digest.
 */
export async function importBundleImages(ssh: SshSession, manifest: BundleManifest, progress: InstallProgress): Promise<number> {
  const listed = await ssh.run(sudo(`${GUEST_BIN_DIR}/ctr -n ${CRI_NAMESPACE} images ls`));
  const present = new Set<string>();
  for (const line of listed.stdout.split('\n').slice(1)) {
    const [ref, , digest] = line.trim().split(/\s+/);
    if (ref !== undefined && digest !== undefined) present.add(`${ref}@${digest}`);
  }
  let imported = 0;
  for (const image of manifest.images) {
    if (present.has(`${image.ref}@${image.manifestDigest}`)) continue;
    progress(`importing ${image.ref}`);
    await ssh.run(sudo(`${GUEST_BIN_DIR}/ctr -n ${CRI_NAMESPACE} images import --platform linux/${manifest.platform.architecture} ${GUEST_STAGING}/${image.file}`), {
      timeoutMs: 15 * 60_000,
    });
    imported++;
  }
  return imported;
}

/**
 * Writes files as root, each only when its content differs (one sha256sum
 * over all of them first, so an unchanged node costs one command). Returns
 * the paths that changed, so the caller restarts only what must be restarted.
 */
export async function writeGuestFiles(ssh: SshSession, files: readonly GuestFile[]): Promise<string[]> {
  if (files.length === 0) return [];
  const present = await ssh.exec(sudo(`sha256sum -- ${files.map((f) => quoteShellArg(f.path)).join(' ')} 2>/dev/null`));
  const digests = parseSha256sum(present.stdout);
  const changed = files.filter((f) => digests.get(f.path) !== createHash('sha256').update(f.content).digest('hex'));
  for (const f of changed) {
    const path = quoteShellArg(f.path);
    await ssh.run(sudo(`t=$(mktemp) && cat >"$t" && install -D -m ${f.mode.toString(8)} "$t" ${path} && rm -f "$t"`), { input: f.content });
  }
  return changed.map((f) => f.path);
}
