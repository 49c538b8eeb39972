import { loadDriver } from '../../drivers/index.ts';
import type { Endpoints, VmState } from '../../drivers/driver.ts';
import { probeSshBanner } from '../ssh/readiness.ts';
import { openProfile } from './profile-context.ts';
import type { LifecycleOptions } from './profile-context.ts';

export type HostStatus = 'Running' | 'Stopped' | 'Paused' | 'Starting' | 'Stopping' | 'Broken' | 'Nonexistent';
export type ComponentStatus = 'Running' | 'Stopped' | 'Unreachable' | 'Irrelevant' | 'Nonexistent';

export interface StatusReport {
  name: string;
  driver: string | null;
  host: HostStatus;
  guest: ComponentStatus;
  kubelet: ComponentStatus;
  apiServer: ComponentStatus;
  kubeconfig: 'Configured' | 'Misconfigured' | 'Irrelevant' | 'Nonexistent';
  ip: string | null;
  ssh: { host: string; port: number } | null;
  /** minikube's bitmask: 1 host not running, 2 cluster not running, 4 kubeconfig not configured. */
  exitCode: number;
}

const HOST: Record<VmState, HostStatus> = {
  running: 'Running',
  stopped: 'Stopped',
  paused: 'Paused',
  starting: 'Starting',
  stopping: 'Stopping',
  broken: 'Broken',
  absent: 'Nonexistent',
};

export async function clusterStatus(options: LifecycleOptions): Promise<StatusReport> {
  const p = await openProfile(options, false);
  const s = p.state.state;
  if (s === undefined) {
    return { name: p.name, driver: null, host: 'Nonexistent', guest: 'Nonexistent', kubelet: 'Nonexistent', apiServer: 'Nonexistent', kubeconfig: 'Nonexistent', ip: null, ssh: null, exitCode: 7 };
  }
  const driver = await loadDriver(s.driver);
  const ctx = p.driverContext();
  const host = HOST[await driver.state(ctx)];
  let endpoints: Endpoints | undefined;
  let guest: ComponentStatus = host === 'Running' ? 'Unreachable' : 'Stopped';
  if (host === 'Running') {
    endpoints = await driver.endpoints(ctx).catch(() => undefined);
    if (endpoints !== undefined) {
      const banner = await probeSshBanner(endpoints.ssh.host, endpoints.ssh.port, 3000, options.signal);
      if (banner.ok) guest = 'Running';
    }
  }
  // Kubernetes components are reported once the kubeadm bootstrap installs them;
  // a --no-kubernetes cluster has none, so they do not count against it.
  const kubernetes = s.created?.kubernetes === true;
  const clusterPart: ComponentStatus = kubernetes ? (host === 'Running' ? 'Unreachable' : 'Stopped') : 'Irrelevant';
  let exitCode = 0;
  if (host !== 'Running') exitCode |= 1;
  if (kubernetes) exitCode |= 2;
  return {
    name: p.name,
    driver: s.driver,
    host,
    guest,
    kubelet: clusterPart,
    apiServer: clusterPart,
    kubeconfig: kubernetes ? 'Misconfigured' : 'Irrelevant',
    ip: endpoints?.guestIp ?? s.ip ?? null,
    ssh: endpoints === undefined ? null : { host: endpoints.ssh.host, port: endpoints.ssh.port },
    exitCode: kubernetes ? exitCode | 4 : exitCode,
  };
}
