import { execa } from 'execa';
import { DevclusterError } from '../ui/errors.ts';
import { commandLog, logLine } from '../ui/context.ts';
import { displayArg, redact, redactArgs } from '../ui/redact.ts';

export interface RunOptions {
  /** Every call has a limit; the default suits quick queries. */
  timeoutMs?: number;
  signal?: AbortSignal;
  /** Output will be parsed: force the C locale so messages are stable. */
  parse?: boolean;
  env?: Record<string, string | undefined>;
  input?: string | Uint8Array;
  cwd?: string;
  /** Non-zero exit codes that are answers rather than failures. */
  okExitCodes?: readonly number[];
  /** Strings that must never reach the log (passwords, tokens). */
  secrets?: readonly string[];
  /** Each line of stdout and stderr as it comes, for a long program whose progress is shown (a build). */
  onLine?: (line: string) => void;
}

export interface RunResult {
  command: string;
  args: readonly string[];
  stdout: string;
  stderr: string;
  exitCode: number;
  durationMs: number;
}

export const DEFAULT_TIMEOUT_MS = 60_000;

/** okExitCodes for a program whose every failure is an answer to read (sudo -n, sysctl, defaults). */
export const ANY_EXIT_CODE: readonly number[] = Array.from({ length: 255 }, (_, i) => i + 1);

const TAIL_LINES = 20;

export function tail(text: string, lines = TAIL_LINES): string {
  const all = text.trimEnd().split('\n');
  return all.slice(-lines).join('\n');
}

/**
 * The single way devcluster runs an external program: an argument array (no
 * shell), a time limit, cancellation, a log line with the redacted command,
 * its exit code and duration, and a typed error on failure.
 */
export async function run(command: string, args: readonly string[], options: RunOptions = {}): Promise<RunResult> {
  const timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  const shown = [command, ...redactArgs(args, options.secrets ?? [])].map(displayArg).join(' ');
  commandLog()?.persist();
  logLine('exec', `$ ${shown}`);
  const started = performance.now();
  const env: Record<string, string | undefined> = { ...options.env };
  if (options.parse === true) {
    env['LANG'] = 'C';
    env['LC_ALL'] = 'C';
  }
  const result = await execa(command, [...args], {
    reject: false,
    timeout: timeoutMs,
    ...(options.signal === undefined ? {} : { cancelSignal: options.signal }),
    env,
    extendEnv: true,
    ...(options.input === undefined ? { stdin: 'ignore' as const } : { input: options.input }),
    ...(options.cwd === undefined ? {} : { cwd: options.cwd }),
    stripFinalNewline: false,
    encoding: 'utf8',
    maxBuffer: 64 * 1024 * 1024,
    ...(options.onLine === undefined ? {} : { stdout: passLines(options.onLine), stderr: passLines(options.onLine) }),
  });
  const durationMs = Math.round(performance.now() - started);
  const stdout = String(result.stdout ?? '');
  const stderr = String(result.stderr ?? '');
  const exitCode = result.exitCode ?? -1;
  logLine('exec', `  exit=${result.timedOut ? 'timeout' : result.isCanceled ? 'canceled' : exitCode} ${durationMs}ms`);
  if (stderr.trim() !== '') logLine('exec', `  stderr: ${redact(tail(stderr, 10))}`);

  const base = { command, args, stdout, stderr, exitCode, durationMs };
  const details = { command: shown, exitCode, durationMs, stderrTail: redact(tail(stderr)) };
  if (result.exitCode === undefined && (result as { code?: string }).code === 'ENOENT') {
    throw new DevclusterError('HOST_COMMAND_NOT_FOUND', `${command} was not found on PATH`, {
      advice: `Install ${command} or add its directory to PATH.`,
      details,
    });
  }
  if (result.isCanceled) {
    throw new DevclusterError('INTERRUPTED', `${command} was cancelled`, { details });
  }
  if (result.timedOut) {
    throw new DevclusterError('HOST_COMMAND_TIMEOUT', `${shown} did not finish within ${formatDuration(timeoutMs)}`, { details });
  }
  if (exitCode !== 0 && !(options.okExitCodes ?? []).includes(exitCode)) {
    const last = tail(stderr, 1) || tail(stdout, 1);
    throw new DevclusterError('HOST_COMMAND_FAILED', `${command} exited with code ${exitCode}${last === '' ? '' : `: ${redact(last)}`}`, { details });
  }
  return base;
}

/** A line transform that hands each line on and keeps it in the result. */
function passLines(onLine: (line: string) => void) {
  return function* (line: string) {
    onLine(line);
    yield line;
  };
}

/** True when `command` can be started (found on PATH). */
export async function commandExists(command: string): Promise<boolean> {
  try {
    await run(command, ['--version'], { timeoutMs: 10_000, okExitCodes: [1, 2, 64, 255] });
    return true;
  } catch (e) {
    return !(e instanceof DevclusterError && e.id === 'HOST_COMMAND_NOT_FOUND');
  }
}

function formatDuration(ms: number): string {
  return ms < 1000 ? `${ms}ms` : `${Math.round(ms / 100) / 10}s`;
}
