import type { Driver, DriverContext } from '../../drivers/driver.ts';
import { StateStore } from '../profile/state.ts';
import { errorText } from './outcome.ts';
import type { ClusterState, DoctorContext, VmAccessor, VmAcceleration } from './types.ts';

/**
 * The profile's VM as its driver sees it now (process, monitor), rather than
 * what state.json last recorded: after QEMU dies, state.json still says
 * Running. The driver is loaded only when asked.
 */
export function driverVmAccessor(o: { home: string; profile: string; paths: DoctorContext['profilePaths']; driver: string; settings: Readonly<Record<string, unknown>>; platform: NodeJS.Platform }): VmAccessor {
  let opened: Promise<{ driver: Driver; ctx: DriverContext }> | undefined;
  const open = () => {
    opened ??= (async () => {
      const { drivers } = await import('../../drivers/index.ts');
      const driver = await drivers.loadForProfile(o.driver);
      const state = new StateStore(o.paths.state);
      await state.load();
      const ctx: DriverContext = { profile: o.profile, home: o.home, paths: o.paths, settings: o.settings, platform: o.platform, signal: new AbortController().signal, state, report: () => undefined };
      return { driver, ctx };
    })();
    return opened;
  };
  return {
    async state() {
      const { driver, ctx } = await open();
      return driver.state(ctx);
    },
    async details() {
      const { driver, ctx } = await open();
      return driver.details(ctx);
    },
  };
}

/**
 * state.json's view corrected by the driver's: a cluster recorded as
 * running whose VM is gone is reported as what it is now. When the driver
 * cannot tell, state.json's view stays and the reason is kept.
 */
export async function liveClusterState(cluster: ClusterState, vm: VmAccessor | undefined): Promise<{ cluster: ClusterState; problem?: string }> {
  if (vm === undefined || !cluster.exists || cluster.problem !== undefined) return { cluster };
  try {
    const now = await vm.state();
    const running = now === 'running';
    return { cluster: { ...cluster, running, state: now === 'absent' ? 'vm missing' : now, ...(cluster.running && !running ? { recordedState: cluster.state ?? 'running' } : {}) } };
  } catch (e) {
    return { cluster, problem: `the driver could not tell the VM's state: ${errorText(e)}` };
  }
}

/**
 * The accelerator the profile's running VM uses, as its driver reports it
 * (the QEMU driver records the one it chose and why); undefined when the
 * VM does not run or the driver does not say.
 */
export async function vmAcceleration(ctx: DoctorContext): Promise<VmAcceleration | undefined> {
  if (ctx.vm === undefined || !ctx.cluster.running) return undefined;
  return (await ctx.vm.details()).acceleration;
}
