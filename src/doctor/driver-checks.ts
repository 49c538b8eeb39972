import { drivers } from '../../drivers/index.ts';
import { registerDriverChecks } from './registry.ts';

/**
 * Adds every shipped driver's checks, as the driver registry lists them, so
 * `doctor`, the support bundle and start's preflight see them without
 * loading the drivers themselves.
 */
export async function loadDriverChecks(): Promise<void> {
  for (const d of drivers.shipped()) registerDriverChecks(d.name, await drivers.checks(d.name));
}
