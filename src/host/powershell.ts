import { DevclusterError } from '../ui/errors.ts';
import type { Exec } from './process.ts';

/**
 * The one way devcluster runs PowerShell: a script run as
 * `powershell.exe -NoLogo -NoProfile -NonInteractive -ExecutionPolicy Bypass
 * -EncodedCommand <base64 utf16le>` (no quoting through cmd.exe or the
 * command line), its result printed as JSON between markers so profile
 * banners and warnings cannot corrupt it.
 */
const BEGIN = '<<<DEVCLUSTER-JSON';
const END = 'DEVCLUSTER-JSON>>>';

export function encodePowerShell(script: string): string {
  return Buffer.from(script, 'utf16le').toString('base64');
}

export function decodePowerShell(encoded: string): string {
  return Buffer.from(encoded, 'base64').toString('utf16le');
}

/** Wraps a pipeline whose output is converted to JSON between the markers. */
export function jsonScript(pipeline: string): string {
  return [
    "$ErrorActionPreference = 'Stop'",
    '$ProgressPreference = \'SilentlyContinue\'',
    `$result = ${pipeline}`,
    `Write-Output '${BEGIN}'`,
    'ConvertTo-Json -InputObject $result -Depth 4 -Compress',
    `Write-Output '${END}'`,
  ].join('\n');
}

export function powershellArgs(script: string): string[] {
  return ['-NoLogo', '-NoProfile', '-NonInteractive', '-ExecutionPolicy', 'Bypass', '-EncodedCommand', encodePowerShell(script)];
}

/** The JSON text between the markers; undefined when they are missing. */
export function extractJson(stdout: string): string | undefined {
  const start = stdout.indexOf(BEGIN);
  const end = stdout.indexOf(END, start + BEGIN.length);
  if (start < 0 || end < 0) return undefined;
  return stdout.slice(start + BEGIN.length, end).trim();
}

/** The JSON text a pipeline printed. */
export async function powershellJsonText(exec: Exec, pipeline: string, timeoutMs = 20_000): Promise<string> {
  const result = await exec('powershell.exe', powershellArgs(jsonScript(pipeline)), { timeoutMs, parse: true });
  const json = extractJson(result.stdout);
  if (json === undefined) {
    throw new DevclusterError('HOST_COMMAND_FAILED', 'PowerShell printed no result', { details: { stdoutTail: result.stdout.slice(-500), stderrTail: result.stderr.slice(-500) } });
  }
  return json;
}

export async function powershellJson<T>(exec: Exec, pipeline: string, timeoutMs = 20_000): Promise<T> {
  const json = await powershellJsonText(exec, pipeline, timeoutMs);
  return (json === '' ? null : JSON.parse(json)) as T;
}
