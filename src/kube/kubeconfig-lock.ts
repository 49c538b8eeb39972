import { mkdir, open, rm, stat } from 'node:fs/promises';
import { dirname } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { permissionError } from '../profile/atomic.ts';
import { DevclusterError } from '../ui/errors.ts';
import { formatDuration } from '../ssh/errors.ts';
import './errors.ts';

/**
 * kubectl's kubeconfig lock (client-go clientcmd lockFile): before it
 * changes kubeconfig files, kubectl creates "<file>.lock" with
 * O_CREATE|O_EXCL for every file it reads, in sorted order, and removes them
 * afterwards. Taking the same files the same way is what keeps devcluster
 * and a concurrent kubectl, kind or minikube-style tool from losing each
 * other's entries. kubectl gives up at once when a lock exists; devcluster
 * waits a bounded time, because its own parallel starts contend too.
 */
export interface KubeconfigLockOptions {
  /** How long to wait for a lock another program holds; default 10 s. */
  waitMs?: number;
  /** Pause between attempts; default 50 ms. */
  pollMs?: number;
  /** Called the first time each lock is found taken, so a caller can say what it waits for. */
  onWait?: (lockPath: string) => void;
}

export const DEFAULT_KUBECONFIG_LOCK_WAIT_MS = 10_000;

export function kubeconfigLockPath(file: string): string {
  return `${file}.lock`;
}

const LOCK_ADVICE = 'Check the directory\'s owner and mode: kubectl needs to create "<file>.lock" beside a kubeconfig file to change it, and so does devcluster.';

/**
 * Runs fn while holding the locks of files (sorted, as kubectl takes them, so
 * two writers never wait on each other in a cycle). The directory of each
 * file must exist. On timeout, the locks already taken are released and
 * KUBECONFIG_LOCKED names the lock that stayed taken; a lock that is not
 * ours is never removed.
 */
export async function withKubeconfigLocks<T>(files: readonly string[], options: KubeconfigLockOptions, fn: () => Promise<T>): Promise<T> {
  const waitMs = options.waitMs ?? DEFAULT_KUBECONFIG_LOCK_WAIT_MS;
  const pollMs = options.pollMs ?? 50;
  const held: string[] = [];
  try {
    for (const file of [...new Set(files)].sort()) {
      const lock = kubeconfigLockPath(file);
      await acquire(lock, waitMs, pollMs, options.onWait);
      held.push(lock);
    }
    return await fn();
  } finally {
    for (const lock of held.reverse()) await rm(lock, { force: true });
  }
}

async function acquire(lock: string, waitMs: number, pollMs: number, onWait: ((lockPath: string) => void) | undefined): Promise<void> {
  const deadline = Date.now() + waitMs;
  let told = false;
  for (;;) {
    try {
      const handle = await open(lock, 'wx', 0o600);
      await handle.close();
      return;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw permissionError(e, LOCK_ADVICE) ?? e;
    }
    if (Date.now() >= deadline) throw await lockedError(lock, waitMs);
    if (!told) {
      told = true;
      onWait?.(lock);
    }
    await sleep(pollMs);
  }
}

async function lockedError(lock: string, waitMs: number): Promise<DevclusterError> {
  let age = '';
  try {
    age = ` (created ${formatDuration(Math.max(0, Date.now() - (await stat(lock)).mtimeMs))} ago)`;
  } catch {
    // Released just now: the message still holds for the wait that ended.
  }
  return new DevclusterError('KUBECONFIG_LOCKED', `${lock} stayed locked for ${formatDuration(waitMs)}${age}: another program is changing ${lock.slice(0, -'.lock'.length)}`, {
    advice: `Wait for the kubectl, kind or devcluster command that is running to finish, then run this again. If none is running, the lock was left by one that crashed: remove ${lock}.`,
    details: { lock, dir: dirname(lock) },
  });
}

/** Creates a kubeconfig file's directory the way kubectl does before it locks the file (0755). */
export async function ensureKubeconfigDir(file: string): Promise<void> {
  try {
    await mkdir(dirname(file), { recursive: true, mode: 0o755 });
  } catch (e) {
    throw permissionError(e, LOCK_ADVICE) ?? e;
  }
}
