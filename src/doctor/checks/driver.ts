import { drivers } from '../../../drivers/index.ts';
import { settingValues } from '../../profile/config.ts';
import { fail, pass, warn } from '../outcome.ts';
import type { Check } from '../types.ts';

/**
 * Whether the chosen driver is in this build and says it can run here: the
 * same answer `start` gets from the registry, so `doctor --driver X` for a
 * hypervisor that is missing reports the cause and never "no problems".
 */
const driverCheck: Check = {
  id: 'DRIVER_UNAVAILABLE',
  title: 'Driver',
  category: 'hypervisor',
  looksAt: 'that the chosen driver is part of this build, runs on this platform, and finds its hypervisor (the same test start makes)',
  exitCode: 69,
  async run(ctx) {
    const refusal = drivers.refusal(ctx.driver, ctx.host.platform);
    if (refusal !== undefined) return fail(refusal.message, { fix: { description: refusal.advice, commands: [] } });
    const driver = await drivers.load(ctx.driver, ctx.host.platform);
    const a = await driver.available({ home: ctx.home, settings: settingValues(ctx.config), platform: ctx.host.platform, signal: ctx.signal });
    const legacy = drivers.find(ctx.driver)?.legacy;
    if (a.status === 'unavailable') return fail(`the ${driver.info.displayName} driver cannot run here: ${a.reason}`, a.fix === undefined ? {} : { fix: { description: a.fix, commands: [] } });
    if (a.status === 'needs-elevation') return warn(`the ${driver.info.displayName} driver needs ${a.elevation} for this configuration: ${a.reason}`);
    if (legacy !== undefined) return warn(`${driver.info.displayName} is a legacy driver: ${legacy}`);
    return pass(`${driver.info.displayName} (${ctx.driverSource === 'auto' ? 'auto-selected' : ctx.driverSource === 'profile' ? 'the driver this profile was created with' : `chosen by --driver or the driver setting`})${a.detail === undefined ? '' : `: ${a.detail}`}`);
  },
};

export const DRIVER_CHECKS: readonly Check[] = [driverCheck];
