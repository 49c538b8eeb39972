import { link, mkdir, open, rm, rename } from 'node:fs/promises';
import { readTextIfExists } from '../host/read-if-exists.ts';
import { randomBytes } from 'node:crypto';
import { processAlive, procStat } from '../host/process.ts';
import { hostname } from 'node:os';
import { setTimeout as sleep } from 'node:timers/promises';
import { DevclusterError } from '../ui/errors.ts';
import { dirname } from 'node:path';

/**
 * A per-profile lock that works across processes: a file created with O_EXCL
 * holding the owner's pid, command and process start time. A lock whose owner
 * is gone (or whose pid now belongs to another process) is stale and taken over.
 */
export interface LockOwner {
  pid: number;
  command: string;
  hostname: string;
  startedAt: string;
  /** Linux: the owner's start time in clock ticks, to detect pid reuse. */
  procStart?: string;
}

export interface LockOptions {
  command: string;
  /** Wait for the lock instead of failing fast. */
  wait?: boolean;
  /** With wait: give up after this long (default: wait until cancelled). */
  waitTimeoutMs?: number;
  signal?: AbortSignal;
  pollMs?: number;
}

export interface ProfileLock {
  readonly path: string;
  release(): Promise<void>;
}

function procStartOf(pid: number): string | undefined {
  return procStat(pid)?.startTime;
}

function isAlive(owner: LockOwner): boolean {
  if (owner.hostname !== hostname()) return true; // cannot tell: a shared home on another machine
  if (!processAlive(owner.pid)) return false;
  if (owner.procStart !== undefined) {
    const now = procStartOf(owner.pid);
    if (now !== undefined && now !== owner.procStart) return false;
  }
  return true;
}

async function readOwner(path: string): Promise<LockOwner | undefined | 'unreadable'> {
  const text = await readTextIfExists(path);
  if (text === undefined) return undefined;
  try {
    const owner = JSON.parse(text) as LockOwner;
    return typeof owner.pid === 'number' ? owner : 'unreadable';
  } catch {
    return 'unreadable';
  }
}

/**
 * The owner is written to a private temp file first and then hard-linked to
 * the lock path: link() fails if the path exists, and a reader never sees an
 * empty or half-written lock (which it would take for stale).
 */
async function tryCreate(path: string, owner: LockOwner): Promise<boolean> {
  const tmp = `${path}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`;
  const handle = await open(tmp, 'wx', 0o600);
  try {
    await handle.writeFile(JSON.stringify(owner));
    await handle.sync();
  } finally {
    await handle.close();
  }
  try {
    await link(tmp, path);
    return true;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'EEXIST') return false;
    throw e;
  } finally {
    await rm(tmp, { force: true });
  }
}

/**
 * Removes a stale lock. A short-lived guard file serialises takeovers, so two
 * processes that both saw the same stale lock cannot both remove a fresh one.
 */
async function takeOverStale(path: string, stale: LockOwner | 'unreadable'): Promise<void> {
  const guard = `${path}.takeover`;
  const me: LockOwner = selfOwner('takeover');
  if (!(await tryCreate(guard, me))) {
    const g = await readOwner(guard);
    if (g !== undefined && g !== 'unreadable' && !isAlive(g)) await rm(guard, { force: true });
    return;
  }
  try {
    const again = await readOwner(path);
    if (again !== undefined && JSON.stringify(again) === JSON.stringify(stale)) {
      await rename(path, `${path}.stale`);
      await rm(`${path}.stale`, { force: true });
    }
  } finally {
    await rm(guard, { force: true });
  }
}

function selfOwner(command: string): LockOwner {
  const procStart = procStartOf(process.pid);
  return {
    pid: process.pid,
    command,
    hostname: hostname(),
    startedAt: new Date().toISOString(),
    ...(procStart === undefined ? {} : { procStart }),
  };
}

export async function acquireProfileLock(profile: string, path: string, options: LockOptions): Promise<ProfileLock> {
  await mkdir(dirname(path), { recursive: true });
  const owner = selfOwner(options.command);
  const deadline = options.waitTimeoutMs === undefined ? Infinity : Date.now() + options.waitTimeoutMs;
  for (;;) {
    if (await tryCreate(path, owner)) {
      let released = false;
      return {
        path,
        async release() {
          if (released) return;
          released = true;
          const current = await readOwner(path);
          if (current !== undefined && current !== 'unreadable' && current.pid === owner.pid && current.startedAt === owner.startedAt) {
            await rm(path, { force: true });
          }
        },
      };
    }
    const holder = await readOwner(path);
    if (holder === undefined) continue; // released between our attempt and the read
    if (holder === 'unreadable' || !isAlive(holder)) {
      await takeOverStale(path, holder);
      continue;
    }
    if (options.wait !== true) {
      throw new DevclusterError('PROFILE_BUSY', `profile ${profile} is busy (pid ${holder.pid}, command ${holder.command})`, {
        advice: `Wait for that command to finish, or run this one again with --wait-lock to wait for it. If no such command runs (a crash on another machine sharing this home), remove ${path}.`,
        details: { lock: path, ...holder },
      });
    }
    if (Date.now() > deadline) {
      throw new DevclusterError('LOCK_TIMEOUT', `gave up waiting for profile ${profile} (held by pid ${holder.pid}, command ${holder.command})`);
    }
    options.signal?.throwIfAborted();
    await sleep(options.pollMs ?? 200, undefined, options.signal === undefined ? {} : { signal: options.signal });
  }
}
