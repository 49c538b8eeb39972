import { createHash } from 'node:crypto';
import { chmod, lstat, mkdir } from 'node:fs/promises';
import { posix, win32 } from 'node:path';
import { DevclusterError } from '../../src/ui/errors.ts';
import './errors.ts';

/**
 * Where QEMU's monitor (QMP) listens: always a unix socket, on Windows too
 * (QEMU 7.1+ speaks AF_UNIX there). Never a TCP port: QMP has no
 * authentication and any local user could drive the VM, or QEMU itself.
 */
export interface MonitorAddress {
  path: string;
  /** A directory devcluster must create (mode 0700) before QEMU binds the socket. */
  privateDir?: string;
}

/** sizeof(sockaddr_un.sun_path), the terminating NUL included. */
export const SUN_PATH_BYTES: Readonly<Partial<Record<NodeJS.Platform, number>>> = { darwin: 104, freebsd: 104, linux: 108, win32: 108 };

function fits(path: string, platform: NodeJS.Platform): boolean {
  return Buffer.byteLength(path, 'utf8') < (SUN_PATH_BYTES[platform] ?? 104);
}

/**
 * The monitor socket of a profile: <profile>/qmp.sock when the path fits in
 * sun_path, else <home>/run/<hash of the profile dir>.sock in a private
 * directory (never a guessable name in a shared /tmp), else an error asking
 * for a shorter DEVCLUSTER_HOME.
 */
export function monitorAddress(profileDir: string, home: string, platform: NodeJS.Platform = process.platform): MonitorAddress {
  const path = platform === 'win32' ? win32 : posix;
  const inProfile = path.join(profileDir, 'qmp.sock');
  if (fits(inProfile, platform)) return { path: inProfile };
  const runDir = path.join(home, 'run');
  const id = createHash('sha256').update(profileDir).digest('hex').slice(0, 16);
  const inRun = path.join(runDir, `${id}.sock`);
  if (fits(inRun, platform)) return { path: inRun, privateDir: runDir };
  const limit = (SUN_PATH_BYTES[platform] ?? 104) - 1;
  throw new DevclusterError('QEMU_MONITOR_PATH_TOO_LONG', `the QEMU monitor socket ${inRun} is ${Buffer.byteLength(inRun, 'utf8')} bytes long; a unix socket path on ${platform} holds at most ${limit}`, {
    advice: `Set DEVCLUSTER_HOME to a shorter directory (at most ${limit - 26} bytes, e.g. ${platform === 'win32' ? 'C:\\dc' : '~/.dc'}) and run the command again.`,
    details: { profileDir, home },
  });
}

/**
 * Creates the private socket directory when the address needs one, and
 * refuses one that another user owns or that is not a plain directory: a
 * socket there could be replaced by someone else's.
 */
export async function prepareMonitorAddress(address: MonitorAddress, platform: NodeJS.Platform = process.platform): Promise<void> {
  const dir = address.privateDir;
  if (dir === undefined) return;
  await mkdir(dir, { recursive: true, mode: 0o700 }).catch((e: unknown) => {
    // A file in the way is judged below like any other unsafe entry.
    if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
  });
  if (platform === 'win32') return; // the directory inherits the user profile's ACL
  const st = await lstat(dir);
  const uid = process.getuid?.();
  if (!st.isDirectory() || (uid !== undefined && st.uid !== uid)) {
    throw new DevclusterError('QEMU_MONITOR_DIR_UNSAFE', `${dir} is ${st.isDirectory() ? `owned by uid ${st.uid}` : 'not a directory'}; devcluster keeps QEMU monitor sockets only in a private directory of its own`, {
      advice: `Remove ${dir} (devcluster recreates it) and run the command again.`,
    });
  }
  if ((st.mode & 0o077) !== 0) await chmod(dir, 0o700);
}
