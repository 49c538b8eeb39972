import { readFile } from 'node:fs/promises';
import { run } from './exec.ts';
import type { Exec } from './process.ts';
import { powershellJson } from './powershell.ts';

/** `sysctl -n kern.boottime`: "{ sec = 1764000000, usec = 123456 } Mon Nov 24 ..." -> "1764000000.123456". */
export function parseKernBoottime(text: string): string | undefined {
  const m = /sec\s*=\s*(\d+),\s*usec\s*=\s*(\d+)/.exec(text);
  return m === null ? undefined : `${m[1]}.${m[2]}`;
}

/**
 * A string that changes at every boot of this host and only then: what
 * holds "until reboot" (a hypervisor probe's verdict) is keyed by it.
 * Undefined when it cannot be read, and then nothing should be cached.
 */
export async function hostBootId(platform: NodeJS.Platform = process.platform, exec: Exec = run): Promise<string | undefined> {
  try {
    if (platform === 'linux') {
      const id = (await readFile('/proc/sys/kernel/random/boot_id', 'utf8')).trim();
      return id === '' ? undefined : `linux:${id}`;
    }
    if (platform === 'darwin') {
      const r = await exec('sysctl', ['-n', 'kern.boottime'], { parse: true, timeoutMs: 10_000 });
      const t = parseKernBoottime(r.stdout);
      return t === undefined ? undefined : `darwin:${t}`;
    }
    if (platform === 'win32') {
      const t = await powershellJson<string | null>(exec, "(Get-CimInstance -ClassName Win32_OperatingSystem).LastBootUpTime.ToUniversalTime().ToString('o')");
      return typeof t === 'string' && t !== '' ? `win32:${t}` : undefined;
    }
  } catch {
    return undefined;
  }
  return undefined;
}
