import type { Availability, Driver, DriverOperation, Elevation } from '../../drivers/driver.ts';
import { DevclusterError } from '../ui/errors.ts';

const HOW: Readonly<Record<Elevation, string>> = {
  root: 'run the command with sudo',
  sudo: 'allow the sudo helper (`devcluster doctor --fix` prints the sudoers line)',
  administrator: 'run it from a terminal opened with "Run as administrator"',
  'hyperv-administrators': 'add your account to the "Hyper-V Administrators" group (then sign out and in), or run as Administrator',
};

/** The network mode a new VM gets from the settings: the driver's own answer, its mode setting, else its first mode. */
export function networkMode(driver: Driver, settings: Readonly<Record<string, unknown>>): string {
  if (driver.networkModeFor !== undefined) return driver.networkModeFor(settings);
  const key = driver.info.features.networkModeSetting;
  const modes = Object.keys(driver.info.features.networkModes);
  const chosen = key === undefined ? undefined : settings[key];
  return typeof chosen === 'string' && modes.includes(chosen) ? chosen : (modes[0] ?? 'default');
}

/**
 * Explains, before anything is created, that an operation needs privileges
 * this process lacks, with the one thing to do about it; the pipeline never
 * fails half-way for want of root.
 */
export function checkElevation(driver: Driver, availability: Availability, settings: Readonly<Record<string, unknown>>, operation: DriverOperation): void {
  if (availability.status !== 'needs-elevation') return;
  const mode = networkMode(driver, settings);
  const features = driver.info.features.networkModes[mode];
  const needed = features?.elevation[operation] ?? features?.elevation.network ?? availability.elevation;
  const others = Object.entries(driver.info.features.networkModes).filter(([m, f]) => m !== mode && Object.keys(f.elevation).length === 0);
  const alternative = others.length > 0 && driver.info.features.networkModeSetting !== undefined
    ? ` Or use --${driver.info.features.networkModeSetting}=${others[0]?.[0] ?? ''} (${others[0]?.[1].description ?? ''}).`
    : '';
  throw new DevclusterError('HOST_NEEDS_ROOT', `the ${driver.info.displayName} driver needs ${needed} here: ${availability.reason}`, {
    advice: `To continue, ${HOW[needed]}.${alternative}`,
  });
}
