import { endpointFor } from '../../drivers/driver.ts';
import type { Endpoint, VmDetails, VmState } from '../../drivers/driver.ts';
import { probeSshBanner } from '../ssh/readiness.ts';
import { openProfile } from './profile-context.ts';
import type { LifecycleOptions } from './profile-context.ts';

export type HostStatus = 'Running' | 'Stopped' | 'Paused' | 'Saved' | 'Starting' | 'Stopping' | 'Broken' | 'Nonexistent' | 'Unknown';
export type ComponentStatus = 'Running' | 'Stopped' | 'Unreachable' | 'Irrelevant' | 'Nonexistent' | 'Unknown';

export interface StatusReport {
  name: string;
  driver: string | null;
  host: HostStatus;
  guest: ComponentStatus;
  kubelet: ComponentStatus;
  apiServer: ComponentStatus;
  kubeconfig: 'Configured' | 'Misconfigured' | 'Irrelevant' | 'Nonexistent' | 'Unknown';
  /** The guest's own address when the host can route to it. */
  ip: string | null;
  ssh: { host: string; port: number } | null;
  /** The software accelerator in use, when the VM runs without hardware acceleration. */
  acceleration: { accelerator: string; hardware: boolean } | null;
  /** What is wrong with the profile itself (a damaged state file). */
  problem: string | null;
  /** minikube's bitmask: 1 host not running, 2 guest or cluster not running/reachable, 4 kubeconfig not configured. */
  exitCode: number;
}

const HOST: Record<VmState, HostStatus> = {
  running: 'Running',
  stopped: 'Stopped',
  paused: 'Paused',
  saved: 'Saved',
  starting: 'Starting',
  stopping: 'Stopping',
  broken: 'Broken',
  absent: 'Nonexistent',
};

/** The VM's state as its driver sees it now, for a profile with a readable state; cheap (no guest probe). */
export async function liveHostStatus(options: LifecycleOptions): Promise<HostStatus> {
  const p = await openProfile(options, false, { tolerateDamagedState: true });
  const s = p.state.state;
  if (p.stateDamage !== undefined) return 'Unknown';
  if (s === undefined) return 'Nonexistent';
  const driver = await p.registry.loadForProfile(s.driver);
  return HOST[await driver.state(p.driverContext()).catch((): VmState => 'broken')];
}

/**
 * What is true now: the hypervisor's view of the VM and an SSH greeting from
 * the guest, never only what the state file last said.
 */
export async function clusterStatus(options: LifecycleOptions): Promise<StatusReport> {
  const p = await openProfile(options, false, { tolerateDamagedState: true });
  const s = p.state.state;
  const none = { ip: null, ssh: null, acceleration: null };
  if (p.stateDamage !== undefined) {
    return { name: p.name, driver: null, host: 'Unknown', guest: 'Unknown', kubelet: 'Unknown', apiServer: 'Unknown', kubeconfig: 'Unknown', ...none, problem: `${p.stateDamage.message}. ${p.stateDamage.advice ?? ''}`.trim(), exitCode: 7 };
  }
  if (s === undefined) {
    return { name: p.name, driver: null, host: 'Nonexistent', guest: 'Nonexistent', kubelet: 'Nonexistent', apiServer: 'Nonexistent', kubeconfig: 'Nonexistent', ...none, problem: null, exitCode: 7 };
  }
  const driver = await p.registry.loadForProfile(s.driver);
  const ctx = p.driverContext();
  const host = HOST[await driver.state(ctx)];
  let ssh: Endpoint | undefined;
  let ip: string | undefined;
  let guest: ComponentStatus = host === 'Running' ? 'Unreachable' : 'Stopped';
  if (host === 'Running') {
    const address = await driver.address(ctx, { deadline: Date.now() + 3000 }).catch(() => undefined);
    if (address !== undefined) {
      ip = address.ip;
      ssh = endpointFor(address, 22);
      const banner = await probeSshBanner(ssh.host, ssh.port, 3000, options.signal);
      if (banner.ok) guest = 'Running';
    }
  }
  const details: VmDetails = host === 'Running' ? await driver.details(ctx).catch(() => ({})) : {};
  const acceleration = details.acceleration === undefined ? null : { accelerator: details.acceleration.accelerator, hardware: details.acceleration.hardware };
  // Kubernetes components are reported once the kubeadm bootstrap installs them;
  // a --no-kubernetes cluster has none, so they do not count against it.
  const kubernetes = s.created?.kubernetes === true;
  const clusterPart: ComponentStatus = kubernetes ? (host === 'Running' ? 'Unreachable' : 'Stopped') : 'Irrelevant';
  let exitCode = 0;
  if (host !== 'Running') exitCode |= 1;
  if (guest !== 'Running' || kubernetes) exitCode |= 2;
  if (kubernetes) exitCode |= 4;
  return {
    name: p.name,
    driver: s.driver,
    host,
    guest,
    kubelet: clusterPart,
    apiServer: clusterPart,
    kubeconfig: kubernetes ? 'Misconfigured' : 'Irrelevant',
    ip: ip ?? null,
    ssh: ssh === undefined ? null : { host: ssh.host, port: ssh.port },
    acceleration,
    problem: null,
    exitCode,
  };
}
