import { connect as netConnect } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { logLine } from '../ui/context.ts';
import { DevclusterError, isDevclusterError } from '../ui/errors.ts';
import { formatDuration } from './errors.ts';
import { quoteShellArg } from '../host/posix-quote.ts';
import { connect, describeNetworkError } from './session.ts';
import type { SshSession } from './session.ts';

/**
 * Waits until a freshly started guest is usable, in three stages with their
 * own time limits and errors, because each stage failing points at a
 * different cause:
 *   banner  an SSH server greets on the port (a TCP connect alone proves
 *           nothing: QEMU's user networking accepts before the guest listens)
 *   command a command runs over SSH with the pinned host key and our key
 *   marker  the guest's readiness marker file exists (provisioning finished)
 */

export type ReadinessStage = 'banner' | 'command' | 'marker';

export interface ReadinessProgress {
  attempt: number;
  /** Why the previous attempt did not succeed. */
  lastError?: string;
}

export interface WaitForSshOptions {
  host: string;
  port: number;
  username: string;
  privateKeyPath: string;
  /** The pinned guest host key line. */
  expectedHostKey: string;
  /** Absolute path of the file the guest creates when provisioning is done. */
  marker: string;
  /** When set, the marker must hold exactly this (a per-boot nonce), so a stale marker never counts. */
  markerContent?: string;
  signal?: AbortSignal;
  /** Per-stage limits in milliseconds, each counted from the start of its stage. */
  timeouts: { banner: number; command: number; marker: number };
  /** Pause between attempts (default 1000 ms). */
  pollMs?: number;
  /** How long one banner attempt waits for the greeting (default 5000 ms). */
  probeTimeoutMs?: number;
  /** Where the user can see the guest boot: named in every error's advice. */
  hint?: { serialLog?: string; extra?: string };
  onProgress?: (stage: ReadinessStage, elapsedMs: number, progress: ReadinessProgress) => void;
}

export interface ReadinessResult {
  /** The server's identification line, e.g. SSH-2.0-OpenSSH_9.2p1. */
  banner: string;
  bannerMs: number;
  commandMs: number;
  markerMs: number;
  totalMs: number;
}

const DEFAULT_POLL_MS = 1000;
const DEFAULT_PROBE_TIMEOUT_MS = 5000;
// The last banner attempt gets at least this long, so it can still see a greeting.
const MIN_PROBE_MS = 200;
// One attempt of the command and marker stages never waits longer than this.
const ATTEMPT_LIMIT_MS = 15_000;

export async function waitForSsh(options: WaitForSshOptions): Promise<ReadinessResult> {
  const started = performance.now();
  const banner = await waitForBanner(options);
  const bannerDone = performance.now();
  const session = await waitForCommand(options);
  const commandDone = performance.now();
  await waitForMarker(options, session);
  const done = performance.now();
  return {
    banner,
    bannerMs: Math.round(bannerDone - started),
    commandMs: Math.round(commandDone - bannerDone),
    markerMs: Math.round(done - commandDone),
    totalMs: Math.round(done - started),
  };
}

export type BannerProbe =
  | { ok: true; banner: string }
  | { ok: false; kind: 'refused' | 'closed' | 'silent' | 'not-ssh' | 'error' | 'aborted'; message: string };

const MAX_GREETING_BYTES = 8192;

/**
 * Connects once and reads the server's identification line. Servers may send
 * other lines before it (RFC 4253 section 4.2); the first line starting with
 * "SSH-" decides.
 */
export function probeSshBanner(host: string, port: number, timeoutMs: number, signal?: AbortSignal): Promise<BannerProbe> {
  return new Promise((resolve) => {
    let received = '';
    let connected = false;
    let settled = false;
    const socket = netConnect({ host, port });
    const done = (result: BannerProbe): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      signal?.removeEventListener('abort', onAbort);
      socket.destroy();
      resolve(result);
    };
    const onAbort = (): void => done({ ok: false, kind: 'aborted', message: 'cancelled' });
    const timer = setTimeout(
      () =>
        done(
          connected
            ? { ok: false, kind: 'silent', message: `connected, but no SSH greeting within ${formatDuration(timeoutMs)}` }
            : { ok: false, kind: 'error', message: `TCP connect did not complete within ${formatDuration(timeoutMs)}` },
        ),
      timeoutMs,
    );
    if (signal?.aborted === true) return onAbort();
    signal?.addEventListener('abort', onAbort, { once: true });
    socket.on('connect', () => {
      connected = true;
    });
    socket.setEncoding('latin1');
    socket.on('data', (chunk: string) => {
      received += chunk;
      const lines = received.split('\n');
      // The last element is an unfinished line.
      for (const raw of lines.slice(0, -1)) {
        const line = raw.replace(/\r$/, '');
        if (!line.startsWith('SSH-')) continue;
        if (line.startsWith('SSH-2.0-') || line.startsWith('SSH-1.99-')) return done({ ok: true, banner: line });
        return done({ ok: false, kind: 'not-ssh', message: `the server speaks an unsupported SSH version (${printable(line)})` });
      }
      if (received.length > MAX_GREETING_BYTES || (lines.length > 1 && !/^SSH-/.test(received) && looksLikeOtherProtocol(received))) {
        done({ ok: false, kind: 'not-ssh', message: `something other than an SSH server answered ("${printable(lines[0] ?? '')}")` });
      }
    });
    socket.on('error', (e: NodeJS.ErrnoException) => {
      done({ ok: false, kind: e.code === 'ECONNREFUSED' ? 'refused' : 'error', message: describeNetworkError(e) });
    });
    socket.on('close', () => {
      done(
        received === ''
          ? { ok: false, kind: 'closed', message: 'the connection was accepted and closed without an SSH greeting' }
          : { ok: false, kind: 'not-ssh', message: `the server closed the connection after "${printable(received.split('\n')[0] ?? '')}"` },
      );
    });
  });
}

async function waitForBanner(o: WaitForSshOptions): Promise<string> {
  const started = performance.now();
  const pollMs = o.pollMs ?? DEFAULT_POLL_MS;
  const probeTimeout = o.probeTimeoutMs ?? DEFAULT_PROBE_TIMEOUT_MS;
  let last: BannerProbe | undefined;
  // Another protocol answering once is the most telling failure, even if later attempts only time out.
  let foreign: BannerProbe | undefined;
  for (let attempt = 1; ; attempt++) {
    const elapsed = performance.now() - started;
    o.onProgress?.('banner', Math.round(elapsed), progress(attempt, last?.ok === false ? last.message : undefined));
    last = await probeSshBanner(o.host, o.port, Math.min(probeTimeout, Math.max(MIN_PROBE_MS, o.timeouts.banner - elapsed)), o.signal);
    if (last.ok) {
      logLine('debug', `ssh: ${o.host}:${o.port} greets with ${last.banner} (attempt ${attempt})`);
      return last.banner;
    }
    if (last.kind === 'aborted') throw interrupted('Waiting for the guest\'s SSH server');
    if (last.kind === 'not-ssh') foreign = last;
    logLine('debug', `ssh: banner attempt ${attempt} on ${o.host}:${o.port}: ${last.message}`);
    const left = o.timeouts.banner - (performance.now() - started);
    if (left <= 0) throw bannerError(o, foreign?.ok === false ? foreign : last, attempt);
    await pause(Math.min(pollMs, left), o.signal, 'Waiting for the guest\'s SSH server');
  }
}

function bannerError(o: WaitForSshOptions, last: Extract<BannerProbe, { ok: false }>, attempts: number): DevclusterError {
  const where = `${o.host}:${o.port}`;
  const limit = formatDuration(o.timeouts.banner);
  const serial = serialHint(o);
  let message: string;
  let advice: string;
  switch (last.kind) {
    case 'refused':
      message = `Nothing accepted connections on ${where} within ${limit}`;
      advice = `The VM is not running or its SSH port forward is missing. How far the guest booted: see ${serial}.`;
      break;
    case 'not-ssh':
      message = `${where} is answered by something that is not the guest's SSH server: ${last.message}`;
      advice = `Another program uses port ${o.port}: stop it, or give this profile another SSH port.`;
      break;
    default:
      message = `No SSH server answered on ${where} within ${limit} (${last.message})`;
      advice = `The guest did not start sshd (it is still booting, or the boot failed): see ${serial}.`;
  }
  return new DevclusterError('GUEST_SSH_BANNER_TIMEOUT', message, {
    advice: withExtra(advice, o),
    details: { stage: 'banner', endpoint: where, attempts, lastError: last.message, timeoutMs: o.timeouts.banner, ...serialDetail(o) },
  });
}

async function waitForCommand(o: WaitForSshOptions): Promise<SshSession> {
  const started = performance.now();
  const pollMs = o.pollMs ?? DEFAULT_POLL_MS;
  let last: DevclusterError | undefined;
  for (let attempt = 1; ; attempt++) {
    const elapsed = performance.now() - started;
    o.onProgress?.('command', Math.round(elapsed), progress(attempt, last?.message));
    const limit = attemptLimit(o.timeouts.command - elapsed);
    let session: SshSession | undefined;
    try {
      session = await connect({ ...connectOptions(o), readyTimeoutMs: limit });
      const result = await session.exec(['true'], { timeoutMs: limit, ...(o.signal === undefined ? {} : { signal: o.signal }) });
      if (result.code === 0) return session;
      last = new DevclusterError('GUEST_SSH_COMMAND_TIMEOUT', `true exited with code ${result.code}${result.stderr.trim() === '' ? '' : `: ${result.stderr.trim()}`}`);
      session.dispose();
    } catch (e) {
      session?.dispose();
      if (!retryable(e)) throw e;
      last = e;
    }
    logLine('debug', `ssh: command attempt ${attempt} on ${o.host}:${o.port}: ${last.message}`);
    const left = o.timeouts.command - (performance.now() - started);
    if (left <= 0) throw commandError(o, last, attempt);
    await pause(Math.min(pollMs, left), o.signal, 'Waiting for SSH login to the guest');
  }
}

function commandError(o: WaitForSshOptions, last: DevclusterError, attempts: number): DevclusterError {
  const where = `${o.host}:${o.port}`;
  const limit = formatDuration(o.timeouts.command);
  const details = { stage: 'command', endpoint: where, attempts, lastError: last.message, timeoutMs: o.timeouts.command, ...serialDetail(o) };
  if (last.id === 'GUEST_SSH_AUTH_FAILED') {
    return new DevclusterError('GUEST_SSH_AUTH_FAILED', `The guest at ${where} still refused the profile's SSH key for user ${o.username} after ${limit}`, {
      advice: withExtra(
        `cloud-init installs the key at first boot and did not (or the VM was created with other keys): see cloud-init's output in ${serialHint(o)}. ` +
          'If the VM is older than this profile\'s keys, recreate it (devcluster delete, then devcluster start).',
        o,
      ),
      details,
      cause: last,
    });
  }
  return new DevclusterError('GUEST_SSH_COMMAND_TIMEOUT', `sshd on ${where} answered, but no command could be run over SSH within ${limit} (last error: ${last.message})`, {
    advice: withExtra(`The guest may be overloaded, or sshd keeps restarting while the guest configures itself: see ${serialHint(o)}.`, o),
    details,
    cause: last,
  });
}

async function waitForMarker(o: WaitForSshOptions, first: SshSession): Promise<void> {
  const started = performance.now();
  const pollMs = o.pollMs ?? DEFAULT_POLL_MS;
  const check =
    o.markerContent === undefined
      ? ['test', '-f', o.marker]
      : `test "$(cat ${quoteShellArg(o.marker)} 2>/dev/null)" = ${quoteShellArg(o.markerContent)}`;
  let session: SshSession | undefined = first;
  let last: string | undefined;
  try {
    for (let attempt = 1; ; attempt++) {
      const elapsed = performance.now() - started;
      o.onProgress?.('marker', Math.round(elapsed), progress(attempt, last));
      const limit = attemptLimit(o.timeouts.marker - elapsed);
      try {
        // The guest may restart sshd while it provisions: reconnect when the session dropped.
        if (session === undefined || !session.connected) {
          session?.dispose();
          session = undefined;
          session = await connect({ ...connectOptions(o), readyTimeoutMs: limit });
        }
        const result = await session.exec(check, { timeoutMs: limit, ...(o.signal === undefined ? {} : { signal: o.signal }) });
        if (result.code === 0) {
          logLine('debug', `ssh: readiness marker ${o.marker} found (attempt ${attempt})`);
          return;
        }
        last = result.code === 1 ? `${o.marker} ${o.markerContent === undefined ? 'does not exist' : 'is missing or holds another boot\'s value'} yet` : `the check exited with code ${result.code}: ${result.stderr.trim()}`;
      } catch (e) {
        if (!retryable(e)) throw e;
        session?.dispose();
        session = undefined;
        last = e.message;
      }
      const left = o.timeouts.marker - (performance.now() - started);
      if (left <= 0) throw markerError(o, last, attempt);
      await pause(Math.min(pollMs, left), o.signal, 'Waiting for the guest to finish provisioning');
    }
  } finally {
    session?.dispose();
  }
}

function markerError(o: WaitForSshOptions, last: string, attempts: number): DevclusterError {
  return new DevclusterError('GUEST_READINESS_TIMEOUT', `The guest did not finish provisioning within ${formatDuration(o.timeouts.marker)}: ${last}`, {
    advice: withExtra(
      `cloud-init is still running or failed: see ${serialHint(o)}. Inside the guest (devcluster ssh), "cloud-init status --long" says where it stopped.`,
      o,
    ),
    details: { stage: 'marker', endpoint: `${o.host}:${o.port}`, marker: o.marker, attempts, lastError: last, timeoutMs: o.timeouts.marker, ...serialDetail(o) },
  });
}

function connectOptions(o: WaitForSshOptions): Parameters<typeof connect>[0] {
  return {
    host: o.host,
    port: o.port,
    username: o.username,
    privateKeyPath: o.privateKeyPath,
    expectedHostKey: o.expectedHostKey,
    ...(o.signal === undefined ? {} : { signal: o.signal }),
  };
}

/** Failures that may clear up as the guest boots; the others are final. */
function retryable(e: unknown): e is DevclusterError {
  if (!isDevclusterError(e)) return false;
  return ['GUEST_SSH_UNREACHABLE', 'GUEST_SSH_DISCONNECTED', 'GUEST_SSH_AUTH_FAILED', 'GUEST_COMMAND_TIMEOUT'].includes(e.id);
}

function attemptLimit(remainingMs: number): number {
  return Math.max(1000, Math.min(ATTEMPT_LIMIT_MS, Math.round(remainingMs)));
}

async function pause(ms: number, signal: AbortSignal | undefined, what: string): Promise<void> {
  try {
    await sleep(Math.max(0, ms), undefined, signal === undefined ? {} : { signal });
  } catch (e) {
    if ((e as Error).name === 'AbortError') throw interrupted(what);
    throw e;
  }
}

function interrupted(what: string): DevclusterError {
  return new DevclusterError('INTERRUPTED', `${what} was cancelled`);
}

function progress(attempt: number, lastError: string | undefined): ReadinessProgress {
  return lastError === undefined ? { attempt } : { attempt, lastError };
}

function serialHint(o: WaitForSshOptions): string {
  return o.hint?.serialLog === undefined ? 'the VM\'s console' : `the serial log ${o.hint.serialLog}`;
}

function serialDetail(o: WaitForSshOptions): Record<string, string> {
  return o.hint?.serialLog === undefined ? {} : { serialLog: o.hint.serialLog };
}

function withExtra(advice: string, o: WaitForSshOptions): string {
  return o.hint?.extra === undefined ? advice : `${advice} ${o.hint.extra}`;
}

function looksLikeOtherProtocol(text: string): boolean {
  return /^(HTTP\/|<|\{|220 |\+OK|\* OK)/.test(text);
}

function printable(text: string): string {
  // eslint-disable-next-line no-control-regex
  return text.replace(/[\u0000-\u001f\u007f-\uffff]/g, '?').slice(0, 80);
}
