import { ANY_EXIT_CODE } from './exec.ts';
import type { Exec } from './process.ts';

/**
 * One value from `reg query <key> /v <name>` output:
 *
 *     HKEY_LOCAL_MACHINE\SOFTWARE\WOW6432Node\VMware, Inc.\VMware Workstation
 *         InstallPath    REG_SZ    C:\Program Files (x86)\VMware\VMware Workstation\
 *
 * Name, type and data are separated by four spaces; names and data may hold
 * single spaces. Names match without regard to case, as the registry's do.
 */
export function parseRegQueryValue(text: string, name: string): string | undefined {
  for (const line of text.split(/\r?\n/)) {
    const m = /^\s+(.+?) {4}(REG_[A-Z_]+) {4}(.*)$/.exec(line);
    if (m !== null && (m[1] as string).toLowerCase() === name.toLowerCase()) return (m[3] as string).trimEnd();
  }
  return undefined;
}

export interface RegistryValue {
  key: string;
  value: string;
  data: string;
}

/**
 * Reads one registry value with reg.exe; undefined when the key or value is
 * absent, empty, or reg.exe cannot run (a lookup that finds nothing is not an
 * error for the callers: each falls back to other places).
 */
export async function readRegistryValue(exec: Exec, key: string, value: string): Promise<RegistryValue | undefined> {
  const r = await exec('reg', ['query', key, '/v', value], { timeoutMs: 10_000, parse: true, okExitCodes: ANY_EXIT_CODE }).catch(() => undefined);
  if (r === undefined || r.exitCode !== 0) return undefined;
  const data = parseRegQueryValue(r.stdout, value);
  return data === undefined || data === '' ? undefined : { key, value, data };
}
