import { randomBytes } from 'node:crypto';
import { mkdir, open, rename, rm } from 'node:fs/promises';
import type { FileHandle } from 'node:fs/promises';
import { readTextIfExists } from '../host/read-if-exists.ts';
import { dirname, basename, join } from 'node:path';
import { DevclusterError } from '../ui/errors.ts';

export interface AtomicWriteOptions {
  /** File mode; secrets use 0o600. */
  mode?: number;
}

/**
 * Writes a file so that readers see either the old or the new content, never a
 * half-written one: temp file in the same directory, fsync, rename.
 */
export async function writeFileAtomic(path: string, data: string | Uint8Array, options: AtomicWriteOptions = {}): Promise<void> {
  await writeFileAtomicWith(path, (handle) => handle.writeFile(data), options);
}

/** writeFileAtomic for content too large to hold in memory: `write` fills the temp file. */
export async function writeFileAtomicWith(path: string, write: (handle: FileHandle) => Promise<void>, options: AtomicWriteOptions = {}): Promise<void> {
  try {
    await writeFileAtomicOrThrow(path, write, options);
  } catch (e) {
    throw permissionError(e) ?? e;
  }
}

async function writeFileAtomicOrThrow(path: string, write: (handle: FileHandle) => Promise<void>, options: AtomicWriteOptions): Promise<void> {
  const dir = dirname(path);
  await mkdir(dir, { recursive: true });
  const tmp = join(dir, `.${basename(path)}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`);
  const mode = options.mode ?? 0o644;
  const handle = await open(tmp, 'wx', mode);
  try {
    await write(handle);
    // open() applies the umask; chmod makes 0600 exact for secrets.
    await handle.chmod(mode);
    await handle.sync();
  } catch (e) {
    await handle.close();
    await rm(tmp, { force: true });
    throw e;
  }
  await handle.close();
  try {
    await rename(tmp, path);
  } catch (e) {
    await rm(tmp, { force: true });
    throw e;
  }
}

export async function writeJsonAtomic(path: string, value: unknown, options: AtomicWriteOptions = {}): Promise<void> {
  await writeFileAtomic(path, `${JSON.stringify(value, null, 2)}\n`, options);
}

/** Reads a JSON file; undefined when it does not exist. Read and parse errors propagate as they are. */
export async function readJsonIfExists(path: string): Promise<unknown> {
  const text = await readTextIfExists(path);
  return text === undefined ? undefined : (JSON.parse(text) as unknown);
}

export interface ReadJsonOptions {
  /** Advice for a file that is not JSON (how to recover depends on what the file is). */
  corruptAdvice?: string;
  /** A hand-edited file is the user's input: no log file is kept for it. */
  input?: boolean;
}

const ERRNO_TEXT: Readonly<Record<string, string>> = {
  EACCES: 'permission denied',
  EPERM: 'operation not permitted',
  EISDIR: 'it is a directory',
  ENOTDIR: 'a part of its path is a file, not a directory',
  ELOOP: 'too many levels of symbolic links',
  EIO: 'input/output error',
  EROFS: 'read-only file system',
};

/** "permission denied (EACCES)": what a user can look up, in words first. */
export function describeErrno(e: unknown): string {
  const code = (e as NodeJS.ErrnoException).code ?? 'unknown error';
  const text = ERRNO_TEXT[code];
  return text === undefined ? `${(e as Error).message} (${code})` : `${text} (${code})`;
}

/**
 * Why a file cannot be used, in words alone, for a sentence that already
 * names the file ("state.json cannot be used: permission denied"): a denial
 * is one whether the system says EACCES or EPERM (Windows), a directory is
 * said to be one where a file was expected, and a parse error is not valid
 * JSON. Messages that name the errno use describeErrno.
 */
export function unreadableReason(e: unknown): string {
  if (e instanceof SyntaxError) return `not valid JSON (${e.message})`;
  const code = (e as NodeJS.ErrnoException).code;
  if (code === 'EACCES' || code === 'EPERM') return 'permission denied';
  if (code === 'EISDIR') return 'it is a directory, not a file';
  return (code === undefined ? undefined : ERRNO_TEXT[code]) ?? (e instanceof Error ? e.message : String(e));
}

/**
 * Reads one of devcluster's JSON files (config, state): undefined when it does
 * not exist, FILE_UNREADABLE when it is there but cannot be read (naming the
 * errno), CONFIG_FILE_CORRUPT when it is not JSON. The three need different
 * fixes, so they never share an ID.
 */
export async function readJsonFile(path: string, options: ReadJsonOptions = {}): Promise<unknown> {
  const text = await readTextFile(path);
  if (text === undefined) return undefined;
  try {
    return JSON.parse(text) as unknown;
  } catch (e) {
    throw new DevclusterError('CONFIG_FILE_CORRUPT', `${path} is not valid JSON: ${(e as Error).message}`, {
      advice: options.corruptAdvice ?? 'Fix the file by hand, or remove it to return to the defaults.',
      input: options.input ?? false,
    });
  }
}

/** A UTF-8 file's text; undefined when it does not exist, FILE_UNREADABLE when it cannot be read. */
export async function readTextFile(path: string): Promise<string | undefined> {
  try {
    return await readTextIfExists(path);
  } catch (e) {
    throw unreadableFile(path, e);
  }
}

function unreadableFile(path: string, e: unknown): DevclusterError {
  const code = (e as NodeJS.ErrnoException).code;
  const denied = code === 'EACCES' || code === 'EPERM';
  return new DevclusterError('FILE_UNREADABLE', `cannot read ${path}: ${describeErrno(e)}`, {
    advice: denied
      ? `Check its owner and mode (\`ls -l ${path}\`): a file made by \`sudo devcluster …\` belongs to root; give it back to your user with \`sudo chown\`, or run devcluster as that user.`
      : `Move ${path} out of the way if it is not devcluster's, then run the command again.`,
    details: { path, errno: code },
    cause: e,
  });
}

/**
 * A write refused by the system (permission, read-only file system) as
 * HOST_PERMISSION_DENIED naming the path; undefined for any other failure.
 */
export function permissionError(e: unknown, advice?: string): DevclusterError | undefined {
  const err = e as NodeJS.ErrnoException;
  if (err.code !== 'EACCES' && err.code !== 'EPERM' && err.code !== 'EROFS') return undefined;
  const what = err.path === undefined ? err.message : `cannot write ${err.path} (${err.syscall ?? 'access'})`;
  return new DevclusterError('HOST_PERMISSION_DENIED', `${what}: ${describeErrno(e)}`, {
    advice: advice ?? 'devcluster keeps its files under $DEVCLUSTER_HOME (default ~/.devcluster): make it writable for your user, or point DEVCLUSTER_HOME at a directory you own.',
    details: { ...(err.path === undefined ? {} : { path: err.path }), errno: err.code },
    cause: e,
  });
}
