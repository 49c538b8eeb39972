import type { StateStore } from '../src/profile/state.ts';

/**
 * A driver's own record in the profile's state (`driverData[<driver>]`):
 * what it must remember between commands (a VM's Id, its MAC, the ports it
 * forwards). Each driver keeps exactly one, through these accessors.
 */
export interface DriverDataStore<T> {
  /** The record (or `initial()` before the first write); the profile's state must exist. */
  get(ctx: { state: StateStore }): T;
  /** The record when there is one; undefined without a state file or a record (a delete after the state was lost). */
  peek(ctx: { state: StateStore }): T | undefined;
  /** Changes the record in one atomic write of the state. */
  update(ctx: { state: StateStore }, change: (d: T) => void): Promise<void>;
  /** Drops the record: the VM it described is gone. */
  clear(ctx: { state: StateStore }): Promise<void>;
}

export function driverDataStore<T extends object>(key: string, initial: () => T): DriverDataStore<T> {
  return {
    get: (ctx) => (ctx.state.require().driverData[key] ?? initial()) as T,
    peek: (ctx) => ctx.state.state?.driverData[key] as T | undefined,
    update: async (ctx, change) => {
      await ctx.state.update((s) => {
        const d = (s.driverData[key] ?? initial()) as T;
        change(d);
        s.driverData[key] = d;
      });
    },
    clear: async (ctx) => {
      await ctx.state.update((s) => {
        delete s.driverData[key];
      });
    },
  };
}
