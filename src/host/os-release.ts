import { readFile } from 'node:fs/promises';

/** The file every systemd-era distribution ships (os-release(5)); /usr/lib/os-release is its fallback. */
export const OS_RELEASE_PATHS = ['/etc/os-release', '/usr/lib/os-release'] as const;

/** KEY=value lines of os-release(5); quotes removed, comments and malformed lines ignored. */
export function parseOsRelease(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const line of text.split('\n')) {
    const m = /^([A-Z0-9_]+)=(.*)$/.exec(line.trim());
    if (m === null) continue;
    out[m[1] as string] = (m[2] ?? '').replace(/^"(.*)"$/, '$1').replace(/^'(.*)'$/, '$1');
  }
  return out;
}

/** The first os-release file that can be read, parsed, with its path; undefined when none can. */
export async function readOsRelease(paths: readonly string[] = OS_RELEASE_PATHS): Promise<{ path: string; text: string; fields: Record<string, string> } | undefined> {
  for (const path of paths) {
    try {
      const text = await readFile(path, 'utf8');
      return { path, text, fields: parseOsRelease(text) };
    } catch {
      // try the next one
    }
  }
  return undefined;
}

/** Distribution families that share a package manager and package names. */
export type LinuxFamily = 'debian' | 'fedora' | 'arch' | 'suse';

/**
 * The family of a distribution from ID and ID_LIKE. RHEL and CentOS are
 * left out on purpose: their QEMU package installs no qemu-system-* binary.
 */
export function linuxFamily(osRelease: Record<string, string>): LinuxFamily | undefined {
  const ids = `${osRelease['ID'] ?? ''} ${osRelease['ID_LIKE'] ?? ''}`.toLowerCase().split(/\s+/).filter((x) => x !== '');
  if (ids.includes('debian') || ids.includes('ubuntu')) return 'debian';
  if (ids.includes('fedora') && !ids.includes('rhel') && !ids.includes('centos')) return 'fedora';
  if (ids.includes('arch')) return 'arch';
  if (ids.some((id) => id === 'suse' || id.startsWith('opensuse'))) return 'suse';
  return undefined;
}
