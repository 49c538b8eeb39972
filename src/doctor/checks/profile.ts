import { pass, skip, warn, fail } from '../outcome.ts';
import { settingOf } from '../context.ts';
import { vmAcceleration } from '../vm.ts';
import { errorText } from '../outcome.ts';
import type { Check, Fix } from '../types.ts';

/**
 * What the doctor says about the profile itself: a state file that cannot
 * be used, a VM that is not running, and a VM that runs without the
 * hardware accelerator the host offers. Without these a stopped or broken
 * cluster would end in "No problems found".
 */

function command(profile: string, verb: string): string {
  return `devcluster ${verb} -p ${profile}`;
}

const stateCheck: Check = {
  id: 'PROFILE_STATE_UNREADABLE',
  title: 'Profile state',
  category: 'host',
  looksAt: "the profile's state.json: that it can be read, parses, and records the cluster's status",
  exitCode: 18,
  async run(ctx) {
    const c = ctx.cluster;
    if (!c.exists) return pass(`profile ${ctx.profile} has no cluster yet`);
    if (c.problem !== undefined) {
      return fail(`${ctx.profilePaths.state} cannot be used: ${c.problem}`, {
        details: ['Without it devcluster cannot tell which VM, disk and host objects belong to this profile.'],
        fix: {
          description: `Delete the profile: delete works without a readable state, removes what it can prove is the profile's (its VM process, its files, its entries in the shared network registries) and names what it could not verify.`,
          commands: [{ shell: 'sh', run: command(ctx.profile, 'delete'), elevated: false }],
        },
      });
    }
    return pass(`${c.state ?? 'unknown'}${c.driver === undefined ? '' : ` (${c.driver} driver)`}`);
  },
};

const stoppedCheck: Check = {
  id: 'CLUSTER_STOPPED',
  title: 'Cluster',
  category: 'guest',
  looksAt: "whether the profile's VM runs: what its driver reports now (process and monitor), else what state.json records",
  exitCode: 83,
  async run(ctx) {
    const c = ctx.cluster;
    if (!c.exists) return skip(`no cluster for profile ${ctx.profile}`);
    if (c.problem !== undefined) return skip('its state file cannot be used (see "Profile state")');
    const details = ctx.vmProblem === undefined ? [] : [`${ctx.vmProblem}; this is what state.json records.`];
    if (c.running) return pass('running', details);
    const start = command(ctx.profile, 'start');
    const state = c.state ?? 'unknown';
    if (state === 'stopped') {
      return warn(`the cluster is stopped; \`${start}\` starts it`, { details, fix: { description: 'Start the cluster.', commands: [{ shell: 'sh', run: start, elevated: false }] } });
    }
    const recorded = c.recordedState === undefined ? [] : [`state.json still records it as ${c.recordedState}: the VM ended without devcluster stopping it (a crash, a kill, or a host restart).`];
    const fix: Fix = {
      description: 'Start it again; start continues from where it stopped. Or delete the profile and what it created.',
      commands: [
        { shell: 'sh', run: start, elevated: false },
        { shell: 'sh', run: command(ctx.profile, 'delete'), elevated: false },
      ],
    };
    return warn(`the cluster is not running (${state})`, { details: [...recorded, ...details], fix });
  },
};

/** Accelerators a host offers to a VM; software emulation is expected only when asked for. */
const SOFTWARE = new Set(['tcg']);

const emulationCheck: Check = {
  id: 'VM_SOFTWARE_EMULATION',
  title: 'VM acceleration',
  category: 'hypervisor',
  looksAt: "the accelerator the running VM really uses, as its driver reports it: software emulation (TCG) when hardware acceleration was expected is several times slower",
  exitCode: 68,
  timeoutMs: 10_000,
  async run(ctx) {
    if (!ctx.cluster.running) return skip(ctx.cluster.exists ? `the cluster of profile ${ctx.profile} is not running` : `no cluster for profile ${ctx.profile}`);
    let accel;
    try {
      accel = await vmAcceleration(ctx);
    } catch (e) {
      return skip(`the driver cannot tell: ${errorText(e)}`);
    }
    if (accel === undefined) return skip('the driver does not report the accelerator');
    const reason = accel.reason === '' ? '' : `: ${accel.reason}`;
    if (accel.hardware) return pass(`${accel.accelerator.toUpperCase()}${reason}`);
    const setting = String(settingOf(ctx, 'qemu-accel', 'auto'));
    if (SOFTWARE.has(setting)) return pass(`software emulation (${accel.accelerator.toUpperCase()}), chosen with qemu-accel=${setting}`);
    const stop = command(ctx.profile, 'stop');
    const start = command(ctx.profile, 'start');
    return warn(`the VM runs under ${accel.accelerator.toUpperCase()} (software emulation, several times slower), not with the host's hardware accelerator${reason}`, {
      details: ['The accelerator is chosen when the VM starts; the Hypervisor checks above say whether the host offers one now.'],
      fix: {
        description: 'Once the hardware accelerator works (the checks above pass), restart the VM so that it starts with it. A failed test of KVM is remembered until the host restarts, except a /dev/kvm permission problem, so after changing the host itself restart the host first.',
        commands: [
          { shell: 'sh', run: stop, elevated: false },
          { shell: 'sh', run: start, elevated: false },
        ],
        disruptive: true,
      },
    });
  },
};

export const PROFILE_STATE_CHECKS: readonly Check[] = [stateCheck];
export const CLUSTER_CHECKS: readonly Check[] = [stoppedCheck];
export const VM_CHECKS: readonly Check[] = [emulationCheck];
