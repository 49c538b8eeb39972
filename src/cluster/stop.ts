import { openProfile } from './profile-context.ts';
import type { LifecycleOptions } from './profile-context.ts';

export interface StopResult {
  profile: string;
  wasRunning: boolean;
  durationMs: number;
}

export async function stopCluster(options: LifecycleOptions & { timeoutMs: number }): Promise<StopResult> {
  const started = performance.now();
  const p = await openProfile(options, true, { mustExist: true });
  try {
    const s = p.existingState();
    const driver = await p.registry.loadForProfile(s.driver);
    const ctx = p.driverContext();
    const before = await driver.state(ctx);
    if (before !== 'absent' && before !== 'stopped') {
      await p.state.update((x) => {
        x.status = 'Stopping';
      });
      await driver.stop(ctx, { timeoutMs: options.timeoutMs });
    }
    await p.state.update((x) => {
      x.status = 'Stopped';
    });
    return { profile: p.name, wasRunning: before === 'running' || before === 'paused' || before === 'starting' || before === 'broken', durationMs: Math.round(performance.now() - started) };
  } finally {
    await p.release();
  }
}
