import { logLine } from '../ui/context.ts';
import { powerOffGuest } from './guest-poweroff.ts';
import { openProfile } from './profile-context.ts';
import type { LifecycleOptions } from './profile-context.ts';

export interface StopResult {
  profile: string;
  wasRunning: boolean;
  /** Who ended a running VM: the guest's own shutdown asked for over SSH, or the driver (ACPI, then forced). */
  shutdownBy?: 'guest' | 'driver';
  durationMs: number;
}

/** What the driver's own graceful stop gets when the guest's shutdown used up the time. */
const MIN_DRIVER_STOP_MS = 15_000;

export async function stopCluster(options: LifecycleOptions & { timeoutMs: number }): Promise<StopResult> {
  const started = performance.now();
  const p = await openProfile(options, true, { mustExist: true });
  try {
    const s = p.existingState();
    const driver = await p.registry.loadForProfile(s.driver);
    const ctx = p.driverContext();
    const before = await driver.state(ctx);
    let shutdownBy: StopResult['shutdownBy'];
    if (before !== 'absent' && before !== 'stopped') {
      await p.state.update((x) => {
        x.status = 'Stopping';
      });
      // The driver's stop follows in every case: it finishes what the guest's own shutdown left (a process, a lock).
      const guest = before === 'running' ? await powerOffGuest(p, driver, ctx, options.timeoutMs) : { outcome: 'skipped' as const, reason: `the VM is ${before}` };
      if (guest.outcome === 'powered-off') logLine('info', `stop: the guest powered itself off in ${(guest.ms / 1000).toFixed(1)} s`);
      else logLine('info', `stop: the guest was not powered off over SSH: ${guest.reason}`);
      shutdownBy = guest.outcome === 'powered-off' ? 'guest' : 'driver';
      const left = options.timeoutMs - (performance.now() - started);
      await driver.stop(ctx, { timeoutMs: Math.max(left, MIN_DRIVER_STOP_MS) });
    }
    await p.state.update((x) => {
      x.status = 'Stopped';
    });
    return {
      profile: p.name,
      wasRunning: before === 'running' || before === 'paused' || before === 'starting' || before === 'broken',
      ...(shutdownBy === undefined ? {} : { shutdownBy }),
      durationMs: Math.round(performance.now() - started),
    };
  } finally {
    await p.release();
  }
}
