import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { endpointFor } from '../../drivers/driver.ts';
import type { Driver, DriverContext } from '../../drivers/driver.ts';
import { DEFAULT_SEED_USER } from '../seed/spec.ts';
import { CLIENT_KEY_FILE } from '../ssh/keys.ts';
import { logLine } from '../ui/context.ts';
import { isDevclusterError } from '../ui/errors.ts';
import { profileGuestAccessor } from './doctor-guest.ts';
import type { OpenProfile } from './profile-context.ts';

/**
 * The guest's own shutdown, asked for over SSH before the hypervisor's: it
 * works whatever the hypervisor's ACPI or integration services do (Hyper-V's
 * Stop-VM needs the Shutdown service, VirtualBox's power button a listening
 * guest), and it stops containerd and the kubelet in order. The command runs
 * only when the machine answering proves it is this profile's VM: cloud-init's
 * instance id must be the one the profile's seed gave it, so a stale address
 * that now reaches another machine is never powered off.
 */
const POWEROFF_SCRIPT = [
  'id=$(cat /var/lib/cloud/data/instance-id 2>/dev/null) || exit 3',
  '[ "$id" = "$1" ] || exit 3',
  'exec sudo -n systemctl poweroff',
].join('\n');

/** Exit status of the script when the guest is not the profile's VM. */
const NOT_THIS_VM = 3;

export type GuestPoweroff =
  | { outcome: 'powered-off'; ms: number }
  | { outcome: 'skipped'; reason: string };

/**
 * Asks a running guest to power off and waits, up to `timeoutMs`, until the
 * driver sees its VM stopped. Never throws: whatever did not work is the
 * driver's stop's job, which follows in every case.
 */
export async function powerOffGuest(p: OpenProfile, driver: Driver, ctx: DriverContext, timeoutMs: number): Promise<GuestPoweroff> {
  const started = performance.now();
  const s = p.existingState();
  const instanceId = s.driverData['instanceId'];
  if (typeof instanceId !== 'string') return { outcome: 'skipped', reason: 'the profile records no instance id' };
  let endpoint;
  try {
    const address = await driver.address(ctx, { deadline: Date.now() + 10_000 });
    endpoint = endpointFor(address, 22);
  } catch (e) {
    return { outcome: 'skipped', reason: `the guest's address is not known: ${(e as Error).message}` };
  }
  const access = await profileGuestAccessor({ host: endpoint.host, port: endpoint.port, user: s.ssh?.user ?? DEFAULT_SEED_USER, privateKeyPath: join(p.paths.keys, CLIENT_KEY_FILE) }, ctx.signal);
  if (access.guest === undefined) return { outcome: 'skipped', reason: access.problem ?? 'no SSH access' };
  try {
    const r = await access.guest.exec(['sh', '-c', POWEROFF_SCRIPT, 'devcluster-poweroff', instanceId], { timeoutMs: 15_000, signal: ctx.signal });
    if (r.exitCode === NOT_THIS_VM) return { outcome: 'skipped', reason: `${access.guest.target} is not this profile's VM (another cloud-init instance id)` };
    if (r.exitCode !== 0) return { outcome: 'skipped', reason: `systemctl poweroff exited ${r.exitCode}: ${r.stderr.trim().slice(-200)}` };
  } catch (e) {
    // The guest closing the connection while it shuts down is the expected end; any other failure means it was never asked.
    if (!isDevclusterError(e) || e.id !== 'GUEST_SSH_DISCONNECTED') return { outcome: 'skipped', reason: `SSH to ${access.guest.target} failed: ${(e as Error).message}` };
    logLine('debug', `guest poweroff: ${e.message}`);
  } finally {
    access.guest.close?.();
  }
  while (performance.now() - started < timeoutMs && !ctx.signal.aborted) {
    const state = await driver.state(ctx).catch(() => undefined);
    if (state === 'stopped' || state === 'absent') return { outcome: 'powered-off', ms: Math.round(performance.now() - started) };
    await sleep(500, undefined, { signal: ctx.signal }).catch(() => undefined);
  }
  return { outcome: 'skipped', reason: `the VM was still running ${Math.round(timeoutMs / 1000)} s after the guest was asked to power off` };
}
