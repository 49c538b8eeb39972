import { availableParallelism, arch, platform, release, totalmem, freemem, hostname, version } from 'node:os';

/** Facts about the machine devcluster runs on, read once per process. */
export interface HostFacts {
  platform: NodeJS.Platform;
  arch: string;
  release: string;
  osVersion: string;
  hostname: string;
  cpus: number;
  totalMemoryMiB: number;
  freeMemoryMiB: number;
}

let cached: HostFacts | undefined;

export function hostFacts(): HostFacts {
  if (cached === undefined) {
    cached = {
      platform: platform(),
      arch: arch(),
      release: release(),
      osVersion: version(),
      hostname: hostname(),
      cpus: overrideNumber('DEVCLUSTER_HOST_CPUS') ?? availableParallelism(),
      totalMemoryMiB: overrideNumber('DEVCLUSTER_HOST_MEMORY_MIB') ?? Math.floor(totalmem() / 1024 / 1024),
      freeMemoryMiB: Math.floor(freemem() / 1024 / 1024),
    };
  }
  return cached;
}

/**
 * Tests set these to exercise limits deterministically on any machine; they
 * are documented in docs/configuration.md as test hooks, not user settings.
 */
function overrideNumber(name: string): number | undefined {
  const raw = process.env[name];
  if (raw === undefined || !/^\d+$/.test(raw)) return undefined;
  return Number(raw);
}
