import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { connect } from '../ssh/session.ts';
import type { SshSession } from '../ssh/session.ts';
import { CLIENT_KEY_FILE, HOST_KEY_FILE, ensureProfileKeys } from '../ssh/keys.ts';
import { isDevclusterError } from '../ui/errors.ts';
import type { GuestAccessor } from '../doctor/types.ts';
import type { LifecycleOptions } from './profile-context.ts';

export interface GuestEndpoint {
  host: string;
  port: number;
  user: string;
  privateKeyPath: string;
  /** The pinned host key line (ssh-ed25519 AAAA...). */
  expectedHostKey: string;
}

/**
 * The doctor's guest access over SSH: connects on the first command, reuses
 * the session, and closes it with close(). A failed connection is reported
 * by each exec (the SSH check shows it).
 */
export function sshGuestAccessor(endpoint: GuestEndpoint, signal?: AbortSignal): GuestAccessor {
  let session: Promise<SshSession> | undefined;
  const open = () => {
    session ??= connect({ host: endpoint.host, port: endpoint.port, username: endpoint.user, privateKeyPath: endpoint.privateKeyPath, expectedHostKey: endpoint.expectedHostKey, readyTimeoutMs: 10_000, ...(signal === undefined ? {} : { signal }) });
    return session;
  };
  return {
    target: `${endpoint.user}@${endpoint.host}:${endpoint.port}`,
    async exec(argv, options = {}) {
      const s = await open();
      const r = await s.exec(argv, { ...(options.timeoutMs === undefined ? {} : { timeoutMs: options.timeoutMs }), ...(options.signal === undefined ? {} : { signal: options.signal }) });
      return { stdout: r.stdout, stderr: r.stderr, exitCode: r.code };
    },
    close() {
      void session?.then((s) => s.dispose()).catch(() => undefined);
    },
  };
}

/**
 * Guest access for the doctor when the profile's VM runs; otherwise the
 * reason there is none, which the guest checks show when they skip.
 */
export async function doctorGuestAccessor(options: LifecycleOptions): Promise<{ guest?: GuestAccessor; problem?: string }> {
  const { sshTarget } = await import('./ssh-access.ts');
  let target;
  try {
    target = await sshTarget(options);
  } catch (e) {
    return { problem: isDevclusterError(e) || e instanceof Error ? e.message : String(e) };
  }
  return profileGuestAccessor(target, options.signal);
}

/** SSH access to a guest with the profile's existing keys (never created here), or why there is none. */
export async function profileGuestAccessor(target: { host: string; port: number; user: string; privateKeyPath: string }, signal?: AbortSignal): Promise<{ guest?: GuestAccessor; problem?: string }> {
  const keysDir = join(target.privateKeyPath, '..');
  if (!existsSync(join(keysDir, CLIENT_KEY_FILE)) || !existsSync(join(keysDir, HOST_KEY_FILE))) {
    return { problem: `the profile has no SSH keys in ${keysDir}` };
  }
  const keys = await ensureProfileKeys(keysDir);
  return { guest: sshGuestAccessor({ host: target.host, port: target.port, user: target.user, privateKeyPath: target.privateKeyPath, expectedHostKey: keys.hostPublicKey }, signal) };
}
