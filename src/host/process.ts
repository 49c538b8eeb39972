import { spawn } from 'node:child_process';
import { closeSync, openSync, readFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import { run } from './exec.ts';
import type { RunOptions, RunResult } from './exec.ts';
import { powershellJson } from './powershell.ts';
import { logLine } from '../ui/context.ts';
import { displayArg } from '../ui/redact.ts';

/**
 * Everything devcluster knows about processes it did not keep a handle on
 * (QEMU, dnsmasq, lock holders). A pid file can outlive its process and the
 * pid then belong to anything, so no signal is sent to a pid until
 * provedOurs() has matched the live process's command line.
 */

export type Exec = (command: string, args: readonly string[], options?: RunOptions) => Promise<RunResult>;

/** A pid file holds one positive decimal number (QEMU and dnsmasq add a newline). */
export function parsePid(text: string): number | undefined {
  const t = text.trim();
  if (!/^[0-9]{1,10}$/.test(t)) return undefined;
  const pid = Number(t);
  return pid > 0 && pid <= 0x7fffffff ? pid : undefined;
}

export async function readPidFile(pidFile: string): Promise<number | undefined> {
  const text = await readFile(pidFile, 'utf8').catch(() => undefined);
  return text === undefined ? undefined : parsePid(text);
}

/**
 * True while a process with this pid exists (a zombie included). EPERM means
 * it exists but belongs to another user. pid 0 and negative pids name process
 * groups for kill(), so they are never "a process".
 */
export function processAlive(pid: number): boolean {
  if (!Number.isSafeInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code !== 'ESRCH';
  }
}

export interface ChildExit {
  code: number | null;
  signal: NodeJS.Signals | null;
}

/**
 * Starts a program that must outlive devcluster (a hypervisor), its output
 * appended to `logFile`. The caller polls the returned function while it
 * waits for the program to come up: it says how the child ended, if it did.
 */
export function spawnDetached(binary: string, args: readonly string[], logFile: string): () => ChildExit | undefined {
  logLine('exec', `$ ${[binary, ...args].map(displayArg).join(' ')} (detached)`);
  let exited: ChildExit | undefined;
  const fd = openSync(logFile, 'a', 0o600);
  try {
    const child = spawn(binary, [...args], { detached: true, stdio: ['ignore', fd, fd], windowsHide: true });
    child.on('exit', (code, signal) => {
      exited = { code, signal };
    });
    child.on('error', (e) => {
      exited = { code: -1, signal: null };
      logLine('error', `${binary} failed to start: ${e.message}`);
    });
    child.unref();
  } finally {
    closeSync(fd);
  }
  return () => exited;
}

/** Whether the process ended within the time, polling; `signal` ends the wait early. */
export async function waitForExit(pid: number, timeoutMs: number, signal?: AbortSignal): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (!processAlive(pid)) return true;
    signal?.throwIfAborted();
    await sleep(200);
  }
  return !processAlive(pid);
}

/** /proc/<pid>/cmdline: arguments separated and terminated by NUL. */
export function parseProcCmdline(raw: string): string[] {
  const argv = raw.split('\0');
  if (argv.at(-1) === '') argv.pop();
  return argv;
}

/**
 * A Windows command line split as CommandLineToArgvW does: 2n backslashes
 * before a quote are n backslashes and the quote toggles quoting; 2n+1 are n
 * backslashes and a literal quote; other backslashes are literal.
 */
export function splitWindowsCommandLine(text: string): string[] {
  const argv: string[] = [];
  let i = 0;
  while (i < text.length) {
    while (text[i] === ' ' || text[i] === '\t') i++;
    if (i >= text.length) break;
    let arg = '';
    let quoted = false;
    for (; i < text.length; i++) {
      const c = text[i];
      if (!quoted && (c === ' ' || c === '\t')) break;
      if (c === '\\') {
        let n = 0;
        while (text[i + n] === '\\') n++;
        if (text[i + n] === '"') {
          arg += '\\'.repeat(Math.floor(n / 2));
          if (n % 2 === 1) arg += '"';
          else quoted = !quoted;
          i += n;
        } else {
          arg += '\\'.repeat(n);
          i += n - 1;
        }
      } else if (c === '"') {
        if (quoted && text[i + 1] === '"') {
          arg += '"';
          i++;
        } else {
          quoted = !quoted;
        }
      } else {
        arg += c;
      }
    }
    argv.push(arg);
  }
  return argv;
}

/**
 * macOS `ps -o command=` joins the arguments with spaces, so an argument that
 * itself holds a space cannot be told apart: split on whitespace, which makes
 * a program path with a space fail the program match (refused, never wrongly
 * accepted).
 */
export function splitPsCommand(text: string): string[] {
  return text.trim().split(/\s+/).filter((a) => a !== '');
}

const QUERY_MS = 20_000;

/**
 * The command line of a live process, as arguments; undefined when the
 * process is gone or its command line cannot be read (a zombie has none).
 */
export async function processCommandLine(pid: number, options: { platform?: NodeJS.Platform; exec?: Exec } = {}): Promise<string[] | undefined> {
  if (!Number.isSafeInteger(pid) || pid <= 0) return undefined;
  const platform = options.platform ?? process.platform;
  const exec = options.exec ?? run;
  try {
    if (platform === 'win32') {
      const text = await powershellJson<string | null>(
        exec,
        `(Get-CimInstance -ClassName Win32_Process -Filter 'ProcessId=${pid}').CommandLine`,
        QUERY_MS,
      );
      return typeof text === 'string' && text !== '' ? splitWindowsCommandLine(text) : undefined;
    }
    if (platform === 'darwin') {
      const r = await exec('ps', ['-ww', '-o', 'command=', '-p', String(pid)], { parse: true, timeoutMs: QUERY_MS, okExitCodes: [1] });
      const argv = r.exitCode === 0 ? splitPsCommand(r.stdout) : [];
      return argv.length > 0 ? argv : undefined;
    }
    const argv = parseProcCmdline(await readFile(`/proc/${pid}/cmdline`, 'utf8'));
    return argv.length > 0 ? argv : undefined;
  } catch {
    return undefined;
  }
}

/** Linux /proc/<pid>/stat: the state letter (Z for a zombie) and the start time in clock ticks. */
export function parseProcStat(stat: string): { state: string; startTime: string } | undefined {
  // The command name (field 2) may hold spaces and parentheses: count after the last ')'.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const state = fields[0];
  const startTime = fields[19];
  return state === undefined || startTime === undefined || state === '' ? undefined : { state, startTime };
}

/** Linux only; undefined elsewhere or when the process is gone. */
export function procStat(pid: number): { state: string; startTime: string } | undefined {
  try {
    return parseProcStat(readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return undefined;
  }
}

function baseName(path: string): string {
  return path.split(/[\\/]/).pop() ?? '';
}

const BEFORE = new Set(['', ' ', '"', "'", '=', ',', ':']);
const AFTER = new Set(['', ' ', '"', "'", ',', '/', '\\']);

/**
 * `needle` occurs in the command line as a whole path or a path prefix, not
 * as part of a longer name: /p/dev matches /p/dev/qemu.pid and file=/p/dev,
 * never /p/dev2.
 */
export function commandLineIncludes(argv: readonly string[], needle: string): boolean {
  if (needle === '') return false;
  const text = argv.join(' ');
  for (let at = text.indexOf(needle); at >= 0; at = text.indexOf(needle, at + 1)) {
    if (BEFORE.has(text.charAt(at - 1)) && AFTER.has(text.charAt(at + needle.length))) return true;
  }
  return false;
}

export interface OwnershipClaim {
  pidFile: string;
  /** Matched against the executable's file name, e.g. /^qemu-system-\w+(\.exe)?$/. */
  program: RegExp;
  /** Strings the command line must contain as paths (the pid file, the profile directory). */
  mustInclude: readonly string[];
}

export type Ownership =
  | { ours: true; pid: number; argv: string[] }
  | { ours: false; reason: string; pid?: number };

/**
 * Whether the pid in a pid file is still the process devcluster started: the
 * file parses, the process lives, its executable matches `program` and its
 * command line names every `mustInclude` path. The same test on every
 * platform: being alive is never enough.
 */
export async function provedOurs(claim: OwnershipClaim, options: { platform?: NodeJS.Platform; exec?: Exec } = {}): Promise<Ownership> {
  const pid = await readPidFile(claim.pidFile);
  if (pid === undefined) return { ours: false, reason: `${claim.pidFile} is missing or holds no pid` };
  if (!processAlive(pid)) return { ours: false, pid, reason: `process ${pid} is not running` };
  const argv = await processCommandLine(pid, options);
  if (argv === undefined) return { ours: false, pid, reason: `the command line of process ${pid} cannot be read` };
  const program = baseName(argv[0] ?? '');
  if (!claim.program.test(program)) return { ours: false, pid, reason: `process ${pid} is ${program || 'unnamed'}, not ${claim.program.source}` };
  const missing = claim.mustInclude.filter((s) => !commandLineIncludes(argv, s));
  if (missing.length > 0) return { ours: false, pid, reason: `the command line of process ${pid} does not name ${missing.join(', ')}` };
  return { ours: true, pid, argv };
}
