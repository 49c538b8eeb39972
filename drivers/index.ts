import { DRIVER_DESCRIPTORS } from './names.ts';
import type { Availability, Driver, DriverDescriptor, HostContext } from './driver.ts';
import type { Check } from '../src/doctor/types.ts';
import { DevclusterError, errorDef, registerErrors } from '../src/ui/errors.ts';

registerErrors({
  DRIVER_UNAVAILABLE: errorDef('hypervisor', 69, 'The chosen driver cannot run on this host, or is not part of this build.'),
  DRIVER_NONE_AVAILABLE: errorDef('hypervisor', 65, 'No driver that devcluster supports is available on this host.'),
  DRIVER_MISMATCH: errorDef('usage', 2, 'The profile was created with another driver.'),
});

/**
 * The registry: which drivers this build ships and how to load each. A driver
 * module is imported only when it is used, so commands that need no
 * hypervisor never load one. A driver without an entry here is known by name
 * (drivers/names.ts) but never chosen.
 */
const LOADERS: Readonly<Record<string, () => Promise<Driver>>> = {
  qemu: async () => (await import('./qemu/index.ts')).qemuDriver,
  hyperkit: async () => (await import('./hyperkit/index.ts')).hyperkitDriver,
  virtualbox: async () => (await import('./virtualbox/index.ts')).virtualboxDriver,
  vmware: async () => (await import('./vmware/index.ts')).vmwareDriver,
  hyperv: async () => (await import('./hyperv/index.ts')).hypervDriver,
};

/** Each shipped driver's doctor checks, loaded without the driver itself. */
const CHECK_LOADERS: Readonly<Record<string, () => Promise<readonly Check[]>>> = {
  qemu: async () => (await import('./qemu/checks.ts')).QEMU_CHECKS,
  hyperkit: async () => (await import('./hyperkit/checks.ts')).HYPERKIT_CHECKS,
  virtualbox: async () => (await import('./virtualbox/checks.ts')).VIRTUALBOX_CHECKS,
  vmware: async () => (await import('./vmware/checks.ts')).VMWARE_CHECKS,
  hyperv: async () => (await import('./hyperv/checks.ts')).HYPERV_CHECKS,
};

/**
 * Every driver's error catalog, so the generated reference (docs/errors.md)
 * lists the IDs of drivers that cannot run on the machine generating it.
 */
export const DRIVER_ERROR_LOADERS: Readonly<Record<string, () => Promise<unknown>>> = {
  qemu: () => import('./qemu/errors.ts'),
  hyperkit: () => import('./hyperkit/errors.ts'),
  virtualbox: () => import('./virtualbox/errors.ts'),
  vmware: () => import('./vmware/errors.ts'),
  hyperv: () => import('./hyperv/errors.ts'),
};

export interface DriverChoice {
  driver: Driver;
  availability: Availability;
  reason: string;
}

/** Platforms as users call them ("win32" is Node's name for Windows). */
function platformName(p: NodeJS.Platform): string {
  return ({ win32: 'Windows', darwin: 'macOS', linux: 'Linux' } as Partial<Record<NodeJS.Platform, string>>)[p] ?? p;
}

function availabilityText(a: Availability): string {
  if (a.status === 'available') return 'available';
  if (a.status === 'needs-elevation') return `needs ${a.elevation}: ${a.reason}`;
  return a.reason;
}

/**
 * Known drivers (descriptors) and the loaders of those this build ships.
 * The lifecycle takes a registry as a parameter, so tests run it over an
 * in-memory driver without a hook in this build.
 */
export class DriverRegistry {
  private readonly descriptors: readonly DriverDescriptor[];
  private readonly loaders: Readonly<Record<string, () => Promise<Driver>>>;
  private readonly checkLoaders: Readonly<Record<string, () => Promise<readonly Check[]>>>;

  constructor(
    descriptors: readonly DriverDescriptor[],
    loaders: Readonly<Record<string, () => Promise<Driver>>>,
    checkLoaders: Readonly<Record<string, () => Promise<readonly Check[]>>> = {},
  ) {
    this.descriptors = descriptors;
    this.loaders = loaders;
    this.checkLoaders = checkLoaders;
  }

  /** The doctor checks a shipped driver contributes (none when it declares none). */
  async checks(name: string): Promise<readonly Check[]> {
    return (await this.checkLoaders[name]?.()) ?? [];
  }

  find(nameOrAlias: string): DriverDescriptor | undefined {
    const n = nameOrAlias.trim().toLowerCase();
    return this.descriptors.find((d) => d.name === n || d.aliases.includes(n));
  }

  shipped(): DriverDescriptor[] {
    return this.descriptors.filter((d) => d.name in this.loaders);
  }

  /** Shipped drivers for a platform, most preferred first; legacy drivers last and never auto-selected. */
  preferred(platform: NodeJS.Platform): DriverDescriptor[] {
    return this.shipped()
      .filter((d) => d.platforms.includes(platform))
      .sort((a, b) => Number(a.legacy !== undefined) - Number(b.legacy !== undefined) || (b.priority[platform] ?? 0) - (a.priority[platform] ?? 0));
  }

  /**
   * Why a named driver cannot be used on this platform in this build, or
   * undefined when it can be tried. Shared by `start`, `doctor` and `config set driver`.
   */
  refusal(name: string, platform: NodeJS.Platform): { message: string; advice: string } | undefined {
    const descriptor = this.find(name);
    if (descriptor === undefined) return { message: `unknown driver ${JSON.stringify(name)}`, advice: `Drivers in this build: ${this.shipped().map((d) => d.name).join(', ')}.` };
    const others = this.preferred(platform).map((d) => d.name);
    const instead = others.length > 0 ? `Drivers in this build that run on ${platform}: ${others.join(', ')}.` : `No driver in this build runs on ${platform}.`;
    if (!(descriptor.name in this.loaders)) return { message: `the ${descriptor.displayName} driver is not part of this build of devcluster`, advice: instead };
    if (!descriptor.platforms.includes(platform)) {
      return { message: `the ${descriptor.displayName} driver runs only on ${descriptor.platforms.map(platformName).join(', ')}; this host runs ${platformName(platform)}`, advice: instead };
    }
    return undefined;
  }

  async load(name: string, platform: NodeJS.Platform = process.platform): Promise<Driver> {
    const refusal = this.refusal(name, platform);
    if (refusal !== undefined) throw new DevclusterError('DRIVER_UNAVAILABLE', refusal.message, { advice: refusal.advice, input: true });
    const loader = this.loaders[(this.find(name) as DriverDescriptor).name] as () => Promise<Driver>;
    return loader();
  }

  /** Loads the driver an existing profile was made with, whatever the platform says: delete and stop must work on it. */
  async loadForProfile(name: string): Promise<Driver> {
    const descriptor = this.find(name);
    const loader = descriptor === undefined ? undefined : this.loaders[descriptor.name];
    if (loader === undefined) {
      throw new DevclusterError('DRIVER_UNAVAILABLE', `this profile was made with the ${name} driver, which is not part of this build of devcluster`, {
        advice: 'Use the devcluster build that created it, or remove its VM with that hypervisor\'s own tools.',
      });
    }
    return loader();
  }

  /**
   * The one function `start` and `doctor` use to pick a driver: the requested
   * one when it can run here, else with "auto" the most preferred shipped
   * driver that says it is available (one that needs elevation still counts:
   * the pipeline explains the elevation before acting).
   */
  async choose(requested: string, ctx: HostContext): Promise<DriverChoice> {
    if (requested !== 'auto') {
      const driver = await this.load(requested, ctx.platform);
      const availability = await driver.available(ctx);
      if (availability.status === 'unavailable') {
        throw new DevclusterError('DRIVER_UNAVAILABLE', `the ${driver.info.displayName} driver cannot be used: ${availability.reason}`, {
          advice: `${availability.fix === undefined ? '' : `${availability.fix}\n    `}Run \`devcluster doctor --driver ${driver.info.name}\` for details.`,
        });
      }
      return { driver, availability, reason: 'chosen with --driver or the driver setting' };
    }
    const refused: string[] = [];
    for (const d of this.preferred(ctx.platform).filter((x) => x.legacy === undefined)) {
      const driver = await this.load(d.name, ctx.platform);
      const availability = await driver.available(ctx);
      if (availability.status !== 'unavailable') {
        return { driver, availability, reason: `auto-selected: the preferred driver available on ${ctx.platform}${refused.length > 0 ? ` (${refused.join('; ')})` : ''}` };
      }
      refused.push(`${d.name}: ${availabilityText(availability)}`);
    }
    throw new DevclusterError('DRIVER_NONE_AVAILABLE', `no driver is available on this ${ctx.platform} host`, {
      advice: refused.length > 0 ? `Tried ${refused.join('; ')}. Run \`devcluster doctor\`.` : 'Run `devcluster doctor`.',
    });
  }
}

/** This build's registry. */
export const drivers = new DriverRegistry(DRIVER_DESCRIPTORS, LOADERS, CHECK_LOADERS);
