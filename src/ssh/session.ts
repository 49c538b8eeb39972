import { tail } from '../host/exec.ts';
import { randomBytes } from 'node:crypto';
import type { EventEmitter } from 'node:events';
import { readFile } from 'node:fs/promises';
import { posix } from 'node:path';
import { NodeSSH } from 'node-ssh';
import { writeFileAtomic } from '../profile/atomic.ts';
import { commandLog, logLine } from '../ui/context.ts';
import { DevclusterError } from '../ui/errors.ts';
import { redact, redactArgs } from '../ui/redact.ts';
import { formatDuration } from './errors.ts';
import { parsePublicKeyLine } from './keys.ts';
import type { ParsedPublicKey } from './keys.ts';
import { sshHostKeyFingerprint } from './known-hosts.ts';
import { quoteArgv } from '../host/posix-quote.ts';

/**
 * SSH sessions to the guest over node-ssh (ssh2). The host key is checked
 * against the key pinned for the profile before anything is sent; commands
 * have time limits and cancellation; file uploads land atomically.
 */

export interface ConnectOptions {
  host: string;
  port: number;
  username: string;
  privateKeyPath: string;
  /** The pinned guest host key, `ssh-ed25519 AAAA...` (a comment is allowed). */
  expectedHostKey: string;
  signal?: AbortSignal;
  /** Limit for TCP connect + handshake + login. */
  readyTimeoutMs?: number;
}

export interface ExecOptions {
  timeoutMs?: number;
  /** Sent to the command's stdin, which is then closed. */
  input?: string | Uint8Array;
  signal?: AbortSignal;
  /** Strings that must not reach the log (tokens in the command line). */
  secrets?: readonly string[];
}

export interface RunOptions extends ExecOptions {
  /** Non-zero exit codes that are answers rather than failures. */
  okExitCodes?: readonly number[];
}

export interface ExecResult {
  stdout: string;
  stderr: string;
  /** The remote exit code; -1 when the command was killed by a signal. */
  code: number;
  /** The signal name (e.g. SIGKILL) when the command was killed by one. */
  signal?: string;
  durationMs: number;
}

export const DEFAULT_EXEC_TIMEOUT_MS = 60_000;
export const DEFAULT_READY_TIMEOUT_MS = 20_000;
const KEEPALIVE_INTERVAL_MS = 10_000;

// The parts of ssh2's objects this module uses (ssh2 ships no types).
interface Channel extends EventEmitter {
  readonly stderr: EventEmitter;
  end(data?: string | Uint8Array): void;
  close(): void;
}

interface Client extends EventEmitter {
  exec(command: string, callback: (err: Error | undefined, channel: Channel) => void): boolean;
  destroy(): void;
}

type Callback<T = void> = (err: Error | null | undefined, value: T) => void;
interface Sftp {
  fastPut(local: string, remote: string, options: { mode?: number }, cb: Callback): void;
  writeFile(path: string, data: Buffer, options: { mode?: number }, cb: Callback): void;
  readFile(path: string, cb: Callback<Buffer>): void;
  chmod(path: string, mode: number, cb: Callback): void;
  rename(from: string, to: string, cb: Callback): void;
  ext_openssh_rename(from: string, to: string, cb: Callback): void;
  unlink(path: string, cb: Callback): void;
  end(): void;
}

interface SshLibraryError extends Error {
  level?: string;
  code?: string | number;
}

/**
 * Opens an SSH session. The server must present exactly the pinned host key
 * (only that key type is offered in the handshake), otherwise the connection
 * is refused with GUEST_HOST_KEY_MISMATCH before authentication.
 */
export async function connect(options: ConnectOptions): Promise<SshSession> {
  const { host, port, username, signal } = options;
  const endpoint = `${username}@${host}:${port}`;
  const readyTimeout = options.readyTimeoutMs ?? DEFAULT_READY_TIMEOUT_MS;
  let expected: ParsedPublicKey;
  try {
    expected = parsePublicKeyLine(options.expectedHostKey);
  } catch (e) {
    throw new DevclusterError('SSH_KEY_INVALID', `The pinned host key for ${host}:${port} is not usable: ${(e as Error).message}`, {
      advice: 'The profile\'s known_hosts file or state is damaged; delete and recreate the profile (devcluster delete, devcluster start).',
    });
  }
  const privateKey = await readPrivateKey(options.privateKeyPath);
  throwIfAborted(signal, `Connecting to ${endpoint}`);

  let presented: Buffer | undefined;
  const ssh = new NodeSSH();
  logLine('debug', `ssh: connecting to ${endpoint}, expecting host key ${sshHostKeyFingerprint(expected.blob)}`);
  const connecting = ssh.connect({
    host,
    port,
    username,
    privateKey,
    readyTimeout,
    keepaliveInterval: KEEPALIVE_INTERVAL_MS,
    keepaliveCountMax: 3,
    // Offering only the pinned type makes the server show that key, not another one it also has.
    algorithms: { serverHostKey: [expected.type] },
    hostVerifier: (key: Buffer) => {
      presented = Buffer.from(key);
      return presented.equals(expected.blob);
    },
  });
  // node-ssh creates the ssh2 client synchronously inside connect(), unless it rejected the config first.
  const client = ssh.connection as unknown as Client | null;
  if (client === null) {
    await connecting;
    throw new Error('node-ssh did not create a connection');
  }
  const session = new SshSession(ssh, client, endpoint);
  const onAbort = (): void => client.destroy();
  signal?.addEventListener('abort', onAbort, { once: true });
  try {
    await connecting;
  } catch (e) {
    client.destroy();
    throw connectError(e as SshLibraryError, { endpoint, host, port, username, readyTimeout, expected, presented, signal });
  } finally {
    signal?.removeEventListener('abort', onAbort);
  }
  logLine('debug', `ssh: connected to ${endpoint}`);
  return session;
}

export class SshSession {
  /** `user@host:port`, for messages. */
  readonly endpoint: string;
  private readonly ssh: NodeSSH;
  private readonly client: Client;
  private closed = false;
  private lastError: Error | undefined;

  constructor(ssh: NodeSSH, client: Client, endpoint: string) {
    this.ssh = ssh;
    this.client = client;
    this.endpoint = endpoint;
    // Each running command listens for 'close'; many may run at once.
    client.setMaxListeners(0);
    // ssh2 emits 'error' after login too (keepalive timeout, reset); unhandled it would crash the process.
    client.on('error', (e: Error) => {
      this.lastError = e;
    });
    client.on('close', () => {
      this.closed = true;
    });
  }

  get connected(): boolean {
    return !this.closed;
  }

  /**
   * Runs a command in the guest. An array is quoted for the remote POSIX shell
   * so each element arrives as one argument; a string is a shell command line.
   * Resolves with the exit code whatever it is; see run() for checked calls.
   */
  async exec(command: readonly string[] | string, options: ExecOptions = {}): Promise<ExecResult> {
    const text = typeof command === 'string' ? command : quoteArgv(command);
    const secrets = options.secrets ?? [];
    const shown = typeof command === 'string' ? (redactArgs([command], secrets)[0] ?? '') : quoteArgv(redactArgs(command, secrets));
    const timeoutMs = options.timeoutMs ?? DEFAULT_EXEC_TIMEOUT_MS;
    commandLog()?.persist();
    logLine('exec', `ssh ${this.endpoint} $ ${shown}`);
    throwIfAborted(options.signal, `Running ${shown} in the guest`);

    const started = performance.now();
    const outcome = await this.runChannel(text, timeoutMs, options.input, options.signal);
    const durationMs = Math.round(performance.now() - started);
    const stdout = outcome.stdout.toString('utf8');
    const stderr = outcome.stderr.toString('utf8');
    const status = outcome.kind === 'exit' ? (outcome.signal === undefined ? String(outcome.code) : `signal ${outcome.signal}`) : outcome.kind;
    logLine('exec', `  exit=${status} ${durationMs}ms`);
    if (stderr.trim() !== '') logLine('exec', `  stderr: ${redact(tail(stderr, 10))}`);

    const details = { endpoint: this.endpoint, command: shown, durationMs, stderrTail: redact(tail(stderr, 20)) };
    switch (outcome.kind) {
      case 'aborted':
        throw new DevclusterError('INTERRUPTED', `${shown} in the guest was cancelled`, { details });
      case 'timeout':
        throw new DevclusterError('GUEST_COMMAND_TIMEOUT', `${shown} did not finish within ${formatDuration(timeoutMs)} in the guest (${this.endpoint})`, {
          advice: 'The guest may be overloaded or the command is stuck; devcluster ssh lets you look inside.',
          details,
        });
      case 'lost':
        throw new DevclusterError('GUEST_SSH_DISCONNECTED', `The SSH connection to ${this.endpoint} closed while running ${shown}${this.lastError === undefined ? '' : ` (${this.lastError.message})`}`, {
          advice: 'The guest may have rebooted, stopped or run out of memory; the serial log in the profile\'s logs directory shows what happened.',
          details,
        });
      case 'exit':
        return { stdout, stderr, code: outcome.code ?? -1, ...(outcome.signal === undefined ? {} : { signal: outcome.signal }), durationMs };
    }
  }

  /** exec(), but a non-zero exit code (other than okExitCodes) throws GUEST_COMMAND_FAILED. */
  async run(command: readonly string[] | string, options: RunOptions = {}): Promise<ExecResult> {
    const result = await this.exec(command, options);
    if (result.code !== 0 && !(options.okExitCodes ?? []).includes(result.code)) {
      const shown = typeof command === 'string' ? (redactArgs([command], options.secrets ?? [])[0] ?? '') : quoteArgv(redactArgs(command, options.secrets ?? []));
      const last = tail(result.stderr, 1) || tail(result.stdout, 1);
      const how = result.signal === undefined ? `exited with code ${result.code}` : `was killed by signal ${result.signal}`;
      throw new DevclusterError('GUEST_COMMAND_FAILED', `${shown} ${how} in the guest${last === '' ? '' : `: ${redact(last)}`}`, {
        details: { endpoint: this.endpoint, command: shown, exitCode: result.code, stderrTail: redact(tail(result.stderr, 20)) },
      });
    }
    return result;
  }

  /** Uploads a local file; it appears at `remotePath` complete, with `mode`, or not at all. */
  async putFile(localPath: string, remotePath: string, mode = 0o644): Promise<void> {
    logLine('exec', `sftp ${this.endpoint} put ${localPath} -> ${remotePath} (mode ${octal(mode)})`);
    await this.withSftp(`upload ${localPath} to ${remotePath}`, async (sftp) => {
      await this.placeAtomically(sftp, remotePath, mode, (tmp) => call<void>((cb) => sftp.fastPut(localPath, tmp, { mode }, cb)));
    });
  }

  /** Writes `content` to `remotePath` in the guest, atomically, with `mode`. Content is never logged. */
  async putContent(content: string | Uint8Array, remotePath: string, mode = 0o644): Promise<void> {
    const data = typeof content === 'string' ? Buffer.from(content, 'utf8') : Buffer.from(content);
    logLine('exec', `sftp ${this.endpoint} write ${remotePath} (${data.length} bytes, mode ${octal(mode)})`);
    await this.withSftp(`write ${remotePath}`, async (sftp) => {
      await this.placeAtomically(sftp, remotePath, mode, (tmp) => call<void>((cb) => sftp.writeFile(tmp, data, { mode }, cb)));
    });
  }

  /** Downloads a guest file to `localPath` (atomic local write; 0600 unless told, since guest files are often credentials). */
  async getFile(remotePath: string, localPath: string, mode = 0o600): Promise<void> {
    logLine('exec', `sftp ${this.endpoint} get ${remotePath} -> ${localPath}`);
    const data = await this.withSftp(`download ${remotePath}`, (sftp) => call<Buffer>((cb) => sftp.readFile(remotePath, cb)));
    await writeFileAtomic(localPath, data, { mode });
  }

  /** Closes the connection. Safe to call more than once. */
  dispose(): void {
    this.closed = true;
    this.ssh.dispose();
  }

  private runChannel(command: string, timeoutMs: number, input: string | Uint8Array | undefined, signal: AbortSignal | undefined): Promise<ChannelOutcome> {
    return new Promise((resolve) => {
      const stdout: Buffer[] = [];
      const stderr: Buffer[] = [];
      let channel: Channel | undefined;
      let stopped: 'timeout' | 'aborted' | 'lost' | undefined;
      let code: number | null = null;
      let exitSignal: string | undefined;
      let settled = false;

      const finish = (): void => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        signal?.removeEventListener('abort', onAbort);
        this.client.removeListener('close', onClientClose);
        const out = { stdout: Buffer.concat(stdout), stderr: Buffer.concat(stderr), code, signal: exitSignal };
        // OpenSSH always reports exit-status or exit-signal; neither means the connection went away.
        const kind = stopped ?? (code === null && exitSignal === undefined ? 'lost' : 'exit');
        resolve({ kind, ...out });
      };
      const stop = (why: 'timeout' | 'aborted' | 'lost'): void => {
        stopped ??= why;
        if (channel === undefined) return finish();
        // SSH "signal" requests did not stop commands under OpenSSH 9.2 (and ssh2 sends none once
        // stdin is closed), so the remote command may run on; closing the channel stops the wait.
        channel.close();
        // sshd confirms the close only once the command ends: do not wait for that.
        finish();
      };
      const onAbort = (): void => stop('aborted');
      const onClientClose = (): void => stop('lost');
      const timer = setTimeout(() => stop('timeout'), timeoutMs);
      signal?.addEventListener('abort', onAbort, { once: true });
      this.client.on('close', onClientClose);
      if (this.closed) return stop('lost');

      try {
        this.client.exec(command, (err, ch) => {
          if (err !== undefined && err !== null) {
            this.lastError = err;
            return stop('lost');
          }
          if (settled) return ch.close();
          channel = ch;
          ch.on('data', (d: Buffer) => stdout.push(d));
          ch.stderr.on('data', (d: Buffer) => stderr.push(d));
          ch.on('exit', (c: number | null, s?: string) => {
            code = typeof c === 'number' ? c : null;
            exitSignal = typeof s === 'string' ? s : undefined;
          });
          ch.on('error', (e: Error) => {
            this.lastError = e;
          });
          ch.on('close', finish);
          ch.end(input === undefined ? undefined : typeof input === 'string' ? input : Buffer.from(input));
        });
      } catch (e) {
        this.lastError = e as Error;
        stop('lost');
      }
    });
  }

  private async withSftp<T>(what: string, fn: (sftp: Sftp) => Promise<T>): Promise<T> {
    let sftp: Sftp;
    try {
      sftp = (await this.ssh.requestSFTP()) as unknown as Sftp;
    } catch (e) {
      throw transferError(this.endpoint, what, e as SshLibraryError, 'The guest\'s sshd must offer the sftp subsystem (Subsystem sftp in sshd_config).');
    }
    try {
      return await fn(sftp);
    } catch (e) {
      throw transferError(this.endpoint, what, e as SshLibraryError);
    } finally {
      sftp.end();
    }
  }

  /** Writes through a temporary name next to the target, then renames over it. */
  private async placeAtomically(sftp: Sftp, remotePath: string, mode: number, write: (tmp: string) => Promise<void>): Promise<void> {
    const tmp = posix.join(posix.dirname(remotePath), `.${posix.basename(remotePath)}.devcluster-${randomBytes(4).toString('hex')}.tmp`);
    try {
      await write(tmp);
      // The server applies its umask at creation; chmod makes the mode exact.
      await call<void>((cb) => sftp.chmod(tmp, mode, cb));
      await renameOver(sftp, tmp, remotePath);
    } catch (e) {
      await call<void>((cb) => sftp.unlink(tmp, cb)).catch(() => undefined);
      throw e;
    }
  }
}

type ChannelOutcome = {
  kind: 'exit' | 'timeout' | 'aborted' | 'lost';
  stdout: Buffer;
  stderr: Buffer;
  code: number | null;
  signal: string | undefined;
};

async function renameOver(sftp: Sftp, from: string, to: string): Promise<void> {
  try {
    // posix-rename@openssh.com replaces the target in one step.
    await call<void>((cb) => sftp.ext_openssh_rename(from, to, cb));
    return;
  } catch (e) {
    if (!/does not support/i.test((e as Error).message)) throw e;
  }
  // Plain SFTP rename refuses to overwrite: remove the old file first.
  await call<void>((cb) => sftp.unlink(to, cb)).catch(() => undefined);
  await call<void>((cb) => sftp.rename(from, to, cb));
}

function call<T>(start: (cb: Callback<T>) => void): Promise<T> {
  return new Promise((resolve, reject) => {
    try {
      start((err, value) => (err === undefined || err === null ? resolve(value) : reject(err)));
    } catch (e) {
      reject(e as Error);
    }
  });
}

async function readPrivateKey(path: string): Promise<string> {
  try {
    return await readFile(path, 'utf8');
  } catch (e) {
    throw new DevclusterError('SSH_KEY_INVALID', `The SSH private key ${path} cannot be read: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`, {
      advice: 'The profile\'s keys directory is incomplete; devcluster start recreates missing keys only before the VM exists, so delete and recreate the profile.',
      cause: e,
    });
  }
}

interface ConnectContext {
  endpoint: string;
  host: string;
  port: number;
  username: string;
  readyTimeout: number;
  expected: ParsedPublicKey;
  presented: Buffer | undefined;
  signal: AbortSignal | undefined;
}

function connectError(e: SshLibraryError, c: ConnectContext): DevclusterError {
  const reason = describeNetworkError(e);
  const details = { endpoint: c.endpoint, reason };
  if (c.signal?.aborted === true) return new DevclusterError('INTERRUPTED', `Connecting to ${c.endpoint} was cancelled`, { details });
  const expectedFingerprint = sshHostKeyFingerprint(c.expected.blob);
  const hostKeyAdvice =
    `Either the VM was recreated outside devcluster (its disk or seed replaced, so it has a new host key), ` +
    `or another program answers on ${c.host}:${c.port}. devcluster sent it no login and no command. ` +
    `Check which program listens on port ${c.port}; if the VM is yours, recreate the profile (devcluster delete, then devcluster start) to pin a new key.`;
  if (c.presented !== undefined && !c.presented.equals(c.expected.blob)) {
    const presentedFingerprint = sshHostKeyFingerprint(c.presented);
    return new DevclusterError(
      'GUEST_HOST_KEY_MISMATCH',
      `The SSH server at ${c.host}:${c.port} presented host key ${presentedFingerprint}, but this profile pinned ${expectedFingerprint}`,
      { advice: hostKeyAdvice, details: { ...details, expectedFingerprint, presentedFingerprint }, cause: e },
    );
  }
  if (/no matching host key/i.test(e.message)) {
    return new DevclusterError(
      'GUEST_HOST_KEY_MISMATCH',
      `The SSH server at ${c.host}:${c.port} has no ${c.expected.type} host key, but this profile pinned ${expectedFingerprint}`,
      { advice: hostKeyAdvice, details: { ...details, expectedFingerprint }, cause: e },
    );
  }
  if (e.level === 'client-authentication') {
    return new DevclusterError('GUEST_SSH_AUTH_FAILED', `The guest at ${c.host}:${c.port} refused the profile's SSH key for user ${c.username}`, {
      advice: `The guest has not installed the profile's public key (keys/id_ed25519.pub) for ${c.username} yet, or the VM was created with another key.`,
      details,
      cause: e,
    });
  }
  const message =
    e.level === 'client-timeout'
      ? `The SSH handshake with ${c.endpoint} did not complete within ${formatDuration(c.readyTimeout)}`
      : `Could not open an SSH connection to ${c.endpoint}: ${reason}`;
  return new DevclusterError('GUEST_SSH_UNREACHABLE', message, {
    advice: 'Check that the VM is running (devcluster status) and that nothing else uses its SSH port.',
    details,
    cause: e,
  });
}

/** A short reason for a socket-level failure, for messages and progress. */
export function describeNetworkError(e: { code?: string | number; message: string }): string {
  switch (e.code) {
    case 'ECONNREFUSED':
      return 'connection refused';
    case 'ECONNRESET':
      return 'connection reset';
    case 'ETIMEDOUT':
      return 'timed out';
    case 'EHOSTUNREACH':
    case 'ENETUNREACH':
      return 'host unreachable';
    default:
      return e.message;
  }
}

function transferError(endpoint: string, what: string, e: SshLibraryError, advice?: string): DevclusterError {
  if (e instanceof DevclusterError) return e;
  // SFTP status codes (draft-ietf-secsh-filexfer-02): 2 no such file, 3 permission denied.
  const hint =
    advice ??
    (e.code === 3
      ? 'The login user cannot write there: upload to a directory it owns (e.g. /tmp) and move the file with sudo.'
      : e.code === 2
        ? 'The directory does not exist in the guest; create it first.'
        : undefined);
  return new DevclusterError('GUEST_FILE_TRANSFER_FAILED', `Could not ${what} on ${endpoint}: ${e.message}`, {
    ...(hint === undefined ? {} : { advice: hint }),
    details: { endpoint },
    cause: e,
  });
}

function throwIfAborted(signal: AbortSignal | undefined, what: string): void {
  if (signal?.aborted === true) throw new DevclusterError('INTERRUPTED', `${what} was cancelled`);
}

function octal(mode: number): string {
  return `0${mode.toString(8)}`;
}
