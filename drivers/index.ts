import { DRIVER_DESCRIPTORS, findDriver } from './names.ts';
import type { DriverDescriptor } from './names.ts';
import type { Driver } from './driver.ts';
import { DevclusterError, errorDef, registerErrors } from '../src/ui/errors.ts';

registerErrors({
  DRIVER_UNAVAILABLE: errorDef('hypervisor', 69, 'The chosen driver cannot run on this host, or is not part of this build.'),
  DRIVER_NONE_AVAILABLE: errorDef('hypervisor', 65, 'No driver that devcluster supports is available on this host.'),
  DRIVER_MISMATCH: errorDef('usage', 2, 'The profile was created with another driver.'),
});

/**
 * The registry: which drivers this build ships and how to load each. A driver
 * module is imported only when it is used, so commands that need no
 * hypervisor never load one.
 */
const LOADERS: Readonly<Record<string, () => Promise<Driver>>> = {
  qemu: async () => (await import('./qemu/index.ts')).qemuDriver,
};

export function shippedDrivers(): DriverDescriptor[] {
  return DRIVER_DESCRIPTORS.filter((d) => d.name in LOADERS);
}

export async function loadDriver(name: string, platform: NodeJS.Platform = process.platform): Promise<Driver> {
  const descriptor = findDriver(name);
  if (descriptor === undefined) throw new DevclusterError('DRIVER_UNAVAILABLE', `unknown driver ${JSON.stringify(name)}`, { input: true });
  const loader = LOADERS[descriptor.name];
  if (loader === undefined) {
    throw new DevclusterError('DRIVER_UNAVAILABLE', `the ${descriptor.displayName} driver is not part of this build of devcluster`, {
      advice: `Drivers in this build: ${shippedDrivers().map((d) => d.name).join(', ')}. Use --driver=${shippedDrivers()[0]?.name ?? 'qemu'}.`,
      input: true,
    });
  }
  if (!descriptor.platforms.includes(platform)) {
    throw new DevclusterError('DRIVER_UNAVAILABLE', `the ${descriptor.displayName} driver does not run on ${platform}`, {
      advice: `It runs on: ${descriptor.platforms.join(', ')}.`,
      input: true,
    });
  }
  return loader();
}

export interface DriverChoice {
  driver: Driver;
  reason: string;
}

/**
 * With no --driver: the highest-priority shipped driver for this platform
 * that reports itself available; the reason is printed to the user.
 */
export async function chooseDriver(requested: string, platform: NodeJS.Platform = process.platform): Promise<DriverChoice> {
  if (requested !== 'auto') {
    const driver = await loadDriver(requested, platform);
    const available = await driver.available();
    if (!available.ok) {
      throw new DevclusterError('DRIVER_UNAVAILABLE', `the ${driver.info.displayName} driver cannot be used: ${available.reason}`, {
        advice: 'Run `devcluster doctor --driver ' + driver.info.name + '` for details.',
      });
    }
    return { driver, reason: 'chosen with --driver or the driver setting' };
  }
  const candidates = shippedDrivers()
    .filter((d) => d.platforms.includes(platform))
    .sort((a, b) => (b.priority[platform] ?? 0) - (a.priority[platform] ?? 0));
  const refused: string[] = [];
  for (const d of candidates) {
    const driver = await loadDriver(d.name, platform);
    const available = await driver.available();
    if (available.ok) {
      return { driver, reason: `auto-selected: the preferred driver available on ${platform}${refused.length > 0 ? ` (${refused.join('; ')})` : ''}` };
    }
    refused.push(`${d.name}: ${available.reason}`);
  }
  throw new DevclusterError('DRIVER_NONE_AVAILABLE', `no driver is available on this ${platform} host`, {
    advice: refused.length > 0 ? `Tried ${refused.join('; ')}. Run \`devcluster doctor\`.` : 'Run `devcluster doctor`.',
  });
}
