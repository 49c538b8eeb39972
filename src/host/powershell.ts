import { randomBytes } from 'node:crypto';
import { rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DevclusterError, errorDef, registerErrors } from '../ui/errors.ts';
import { ANY_EXIT_CODE, tail } from './exec.ts';
import type { Exec } from './process.ts';

registerErrors({
  POWERSHELL_SCRIPT_FAILED: errorDef('hypervisor', 68, 'A PowerShell script devcluster ran stopped with an error; its FullyQualifiedErrorId and exception type say which.'),
});

/**
 * The one way devcluster runs PowerShell: a script run as
 * `powershell.exe -NoLogo -NoProfile -NonInteractive -ExecutionPolicy Bypass
 * -EncodedCommand <base64 utf16le>` (no quoting through cmd.exe or the
 * command line), or from a temporary .ps1 with -File when it is too long
 * for a command line. Its result is printed as JSON between markers so
 * profile banners and warnings cannot corrupt it; a failure is printed as
 * the error record's FullyQualifiedErrorId and exception type between other
 * markers, matched by callers instead of the localized message.
 */
export const RESULT_BEGIN = '<<<DEVCLUSTER-JSON';
export const RESULT_END = 'DEVCLUSTER-JSON>>>';
export const ERROR_BEGIN = '<<<DEVCLUSTER-ERROR';
export const ERROR_END = 'DEVCLUSTER-ERROR>>>';

/** Windows' limit for a whole command line (CreateProcess), in UTF-16 units. */
export const COMMAND_LINE_LIMIT = 32_767;

const FLAGS = ['-NoLogo', '-NoProfile', '-NonInteractive', '-ExecutionPolicy', 'Bypass'] as const;

/** The quote characters PowerShell's tokenizer accepts besides ': the Unicode single quotes U+2018..U+201B. */
const SINGLE_QUOTES = /['\u2018\u2019\u201A\u201B]/g;

/**
 * A PowerShell single-quoted string literal holding exactly `value`: each
 * quote character is doubled, which is the only escape inside single quotes
 * (no `$()`, backtick or variable expansion happens there). The only way a
 * user's value enters a generated script.
 */
export function psString(value: string): string {
  return `'${value.replace(SINGLE_QUOTES, (q) => q + q)}'`;
}

export function encodePowerShell(script: string): string {
  return Buffer.from(script, 'utf16le').toString('base64');
}

export function decodePowerShell(encoded: string): string {
  return Buffer.from(encoded, 'base64').toString('utf16le');
}

/** Statements every script starts with: stop at the first error, no progress bars, UTF-8 output for non-ASCII names. */
export const PRELUDE = [
  "$ErrorActionPreference = 'Stop'",
  "$ProgressPreference = 'SilentlyContinue'",
  // Setting the encoding fails when there is no console at all; the output is still ours to read then.
  'try { [Console]::OutputEncoding = [System.Text.UTF8Encoding]::new($false) } catch { $null = $_ }',
].join('\n');

/** Prints the failing error record as JSON between the error markers and exits 1. */
const CATCH = [
  '} catch {',
  '  $devclusterRecord = $_',
  `  Microsoft.PowerShell.Utility\\Write-Output '${ERROR_BEGIN}'`,
  '  Microsoft.PowerShell.Utility\\ConvertTo-Json -Compress -InputObject ([ordered]@{ fullyQualifiedErrorId = [string]$devclusterRecord.FullyQualifiedErrorId; exceptionType = [string]$devclusterRecord.Exception.GetType().FullName; category = [string]$devclusterRecord.CategoryInfo.Category; message = [string]$devclusterRecord.Exception.Message })',
  `  Microsoft.PowerShell.Utility\\Write-Output '${ERROR_END}'`,
  '  exit 1',
  '}',
].join('\n');

export interface ScriptOptions {
  /** A stable first line, `# devcluster-op: <name>`, that names the operation in logs and to test doubles. */
  op?: string;
  /** ConvertTo-Json -Depth. */
  depth?: number;
}

function header(op: string | undefined): string[] {
  return op === undefined ? [] : [`# devcluster-op: ${op}`];
}

/**
 * A script whose statements' output is the result: everything `body`
 * writes to the pipeline is collected with @(...) and printed as one JSON
 * array (an empty array when it writes nothing, never a bare object).
 */
export function arrayScript(body: string, options: ScriptOptions = {}): string {
  return [
    ...header(options.op),
    PRELUDE,
    'try {',
    '  $devclusterResult = @(',
    body,
    '  )',
    `  Microsoft.PowerShell.Utility\\Write-Output '${RESULT_BEGIN}'`,
    `  Microsoft.PowerShell.Utility\\ConvertTo-Json -Compress -Depth ${options.depth ?? 5} -InputObject $devclusterResult`,
    `  Microsoft.PowerShell.Utility\\Write-Output '${RESULT_END}'`,
    CATCH,
  ].join('\n');
}

/** A script printing one value (a boolean, an object, an array as it is): the doctor's queries. */
export function jsonScript(pipeline: string, options: ScriptOptions = {}): string {
  return [
    ...header(options.op),
    PRELUDE,
    'try {',
    `  $devclusterResult = ${pipeline}`,
    `  Microsoft.PowerShell.Utility\\Write-Output '${RESULT_BEGIN}'`,
    `  Microsoft.PowerShell.Utility\\ConvertTo-Json -InputObject $devclusterResult -Depth ${options.depth ?? 4} -Compress`,
    `  Microsoft.PowerShell.Utility\\Write-Output '${RESULT_END}'`,
    CATCH,
  ].join('\n');
}

/** The arguments that run `script` inline. */
export function powershellArgs(script: string): string[] {
  return [...FLAGS, '-EncodedCommand', encodePowerShell(script)];
}

/**
 * powershell.exe itself. A 32-bit process on 64-bit Windows is redirected
 * from System32 to the 32-bit SysWOW64, where the Hyper-V module does not
 * exist: Sysnative names the real System32 for such a process.
 */
export function powershellExecutable(env: NodeJS.ProcessEnv = process.env, platform: NodeJS.Platform = process.platform, arch: string = process.arch): string {
  if (platform !== 'win32') return 'powershell.exe';
  const root = env['SystemRoot'] ?? env['SYSTEMROOT'] ?? 'C:\\Windows';
  const wow64 = arch === 'ia32' && env['PROCESSOR_ARCHITEW6432'] !== undefined;
  return `${root}\\${wow64 ? 'Sysnative' : 'System32'}\\WindowsPowerShell\\v1.0\\powershell.exe`;
}

/** How CreateProcess would quote the arguments (only spaces matter for a length estimate). */
function commandLineLength(executable: string, args: readonly string[]): number {
  return [executable, ...args].reduce((n, a) => n + a.length + (/\s/.test(a) ? 3 : 1), 0);
}

/** Whether a script fits on the command line as -EncodedCommand. */
export function fitsCommandLine(executable: string, script: string): boolean {
  return commandLineLength(executable, powershellArgs(script)) <= COMMAND_LINE_LIMIT;
}

/** The JSON text between the result markers (CR and banners around it ignored); undefined when they are missing. */
export function extractJson(stdout: string): string | undefined {
  return between(stdout, RESULT_BEGIN, RESULT_END);
}

function between(stdout: string, begin: string, end: string): string | undefined {
  const start = stdout.indexOf(begin);
  if (start < 0) return undefined;
  const stop = stdout.indexOf(end, start + begin.length);
  if (stop < 0) return undefined;
  return stdout.slice(start + begin.length, stop).replaceAll('\r', '').trim();
}

/** A failure reported by the script's catch block. */
export interface PowerShellFailure {
  fullyQualifiedErrorId: string;
  exceptionType: string;
  category: string;
  message: string;
}

export function extractFailure(stdout: string): PowerShellFailure | undefined {
  const text = between(stdout, ERROR_BEGIN, ERROR_END);
  if (text === undefined) return undefined;
  try {
    const o = JSON.parse(text) as Record<string, unknown>;
    const s = (k: string) => (typeof o[k] === 'string' ? (o[k] as string) : '');
    return { fullyQualifiedErrorId: s('fullyQualifiedErrorId'), exceptionType: s('exceptionType'), category: s('category'), message: s('message') };
  } catch {
    return { fullyQualifiedErrorId: '', exceptionType: '', category: '', message: text };
  }
}

/**
 * A script's failure: callers decide on `failure.fullyQualifiedErrorId`
 * and `failure.exceptionType`, never on the (localized) message.
 */
export class PowerShellError extends DevclusterError {
  readonly failure: PowerShellFailure;
  readonly op: string;

  constructor(op: string, failure: PowerShellFailure) {
    super('POWERSHELL_SCRIPT_FAILED', `PowerShell (${op}) failed: ${failure.message || failure.fullyQualifiedErrorId} [${failure.fullyQualifiedErrorId}; ${failure.exceptionType}]`, {
      details: { op, ...failure },
    });
    this.failure = failure;
    this.op = op;
  }

  /** The FullyQualifiedErrorId starts with `id` ("InvalidParameter" matches "InvalidParameter,Microsoft.HyperV...GetVM"). */
  idIs(id: string): boolean {
    const full = this.failure.fullyQualifiedErrorId;
    return full === id || full.startsWith(`${id},`);
  }
}

export interface RunScriptOptions {
  exec: Exec;
  /** powershell.exe, or an injected double. */
  executable?: string;
  op: string;
  timeoutMs?: number;
  signal?: AbortSignal;
  /** Where a script too long for the command line is written (the OS temp directory by default). */
  tempDir?: string;
}

/** Runs a complete script (from arrayScript or jsonScript) and returns the JSON text between the markers. */
export async function runPowerShellScript(script: string, options: RunScriptOptions): Promise<string> {
  const executable = options.executable ?? powershellExecutable();
  let file: string | undefined;
  let args: string[];
  if (fitsCommandLine(executable, script)) {
    args = powershellArgs(script);
  } else {
    // Windows PowerShell 5.1 reads a .ps1 without a BOM in the ANSI code page, which would garble non-ASCII names.
    file = join(options.tempDir ?? tmpdir(), `devcluster-${options.op.replace(/[^a-z0-9-]/gi, '')}-${randomBytes(6).toString('hex')}.ps1`);
    await writeFile(file, `\uFEFF${script}`, { encoding: 'utf8', mode: 0o600, flag: 'wx' });
    args = [...FLAGS, '-File', file];
  }
  try {
    const r = await options.exec(executable, args, {
      timeoutMs: options.timeoutMs ?? 60_000,
      parse: true,
      okExitCodes: ANY_EXIT_CODE,
      ...(options.signal === undefined ? {} : { signal: options.signal }),
    });
    const failure = extractFailure(r.stdout);
    if (failure !== undefined) throw new PowerShellError(options.op, failure);
    const json = extractJson(r.stdout);
    if (json === undefined || r.exitCode !== 0) {
      throw new DevclusterError('HOST_COMMAND_FAILED', `PowerShell (${options.op}) ${r.exitCode !== 0 ? `exited with code ${r.exitCode}` : 'printed no result'}: ${tail(`${r.stderr}`, 1) || tail(r.stdout, 1)}`, {
        details: { op: options.op, exitCode: r.exitCode, stdoutTail: r.stdout.slice(-500), stderrTail: r.stderr.slice(-500) },
      });
    }
    return json;
  } finally {
    if (file !== undefined) await rm(file, { force: true });
  }
}

/** Runs a script from arrayScript(): its result, always an array. */
export async function runPowerShellArray(script: string, options: RunScriptOptions): Promise<unknown[]> {
  const text = await runPowerShellScript(script, options);
  const value: unknown = text === '' ? [] : JSON.parse(text);
  if (value === null || value === undefined) return [];
  return Array.isArray(value) ? value : [value];
}

/** The JSON text a pipeline printed. */
export async function powershellJsonText(exec: Exec, pipeline: string, timeoutMs = 20_000): Promise<string> {
  return runPowerShellScript(jsonScript(pipeline), { exec, op: 'query', timeoutMs });
}

export async function powershellJson<T>(exec: Exec, pipeline: string, timeoutMs = 20_000): Promise<T> {
  const json = await powershellJsonText(exec, pipeline, timeoutMs);
  return (json === '' ? null : JSON.parse(json)) as T;
}
