import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { endpointFor } from '../../drivers/driver.ts';
import type { Endpoint, VmDetails, VmState } from '../../drivers/driver.ts';
import { httpClusterAccessor, profileTlsFiles } from '../doctor/cluster-http.ts';
import { readyzFailures } from '../doctor/checks/guest.ts';
import { PKI_FILES } from '../kube/pki.ts';
import type { ProfileState } from '../profile/state.ts';
import { DEFAULT_SEED_USER } from '../seed/spec.ts';
import { CLIENT_KEY_FILE } from '../ssh/keys.ts';
import { probeSshBanner } from '../ssh/readiness.ts';
import { profileGuestAccessor } from './doctor-guest.ts';
import { checkProfileEntries } from './kubeconfig-entries.ts';
import { openProfile } from './profile-context.ts';
import type { LifecycleOptions, OpenProfile } from './profile-context.ts';

export type HostStatus = 'Running' | 'Stopped' | 'Paused' | 'Saved' | 'Starting' | 'Stopping' | 'Broken' | 'Nonexistent' | 'Unknown';
/** Error: it answers, but not as it should (the API server not ready, or refusing the profile's credentials). */
export type ComponentStatus = 'Running' | 'Stopped' | 'Error' | 'Unreachable' | 'Irrelevant' | 'Nonexistent' | 'Unknown';
export type NodeStatus = 'Ready' | 'NotReady' | 'Unknown' | 'Irrelevant' | 'Nonexistent';

/** Why a Kubernetes component is not as it should be, and the command that shows more or repairs it. */
export interface StatusFinding {
  component: 'kubelet' | 'apiServer' | 'node' | 'kubeconfig';
  message: string;
  fix?: string;
}

export interface StatusReport {
  name: string;
  driver: string | null;
  host: HostStatus;
  guest: ComponentStatus;
  kubelet: ComponentStatus;
  apiServer: ComponentStatus;
  kubeconfig: 'Configured' | 'Misconfigured' | 'Irrelevant' | 'Nonexistent' | 'Unknown';
  /** The node named after the profile, as the API server reports its Ready condition. */
  node: NodeStatus;
  /** The API server URL the kubeconfig entry uses, once a start finished. */
  apiServerUrl: string | null;
  kubernetesVersion: string | null;
  findings: StatusFinding[];
  /** The guest's own address when the host can route to it. */
  ip: string | null;
  ssh: { host: string; port: number } | null;
  /** The software accelerator in use, when the VM runs without hardware acceleration. */
  acceleration: { accelerator: string; hardware: boolean } | null;
  /** What is wrong with the profile itself (a damaged state file). */
  problem: string | null;
  /** minikube's bitmask: 1 host not running, 2 guest, kubelet or API server not running/reachable, 4 kubeconfig not configured. */
  exitCode: number;
}

/** An API server under software emulation can take seconds for a TLS handshake; status should not call it unreachable for that. */
const STATUS_HTTP_TIMEOUT_MS = 15_000;

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
  const none = { ip: null, ssh: null, acceleration: null, apiServerUrl: null, kubernetesVersion: null, findings: [] };
  if (p.stateDamage !== undefined) {
    return { name: p.name, driver: null, host: 'Unknown', guest: 'Unknown', kubelet: 'Unknown', apiServer: 'Unknown', kubeconfig: 'Unknown', node: 'Unknown', ...none, problem: `${p.stateDamage.message}. ${p.stateDamage.advice ?? ''}`.trim(), exitCode: 7 };
  }
  if (s === undefined) {
    return { name: p.name, driver: null, host: 'Nonexistent', guest: 'Nonexistent', kubelet: 'Nonexistent', apiServer: 'Nonexistent', kubeconfig: 'Nonexistent', node: 'Nonexistent', ...none, problem: null, exitCode: 7 };
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
  // A --no-kubernetes cluster has no Kubernetes components, so they do not count against it.
  const kubernetes = s.created?.kubernetes === true;
  const k8s = kubernetes
    ? await kubernetesStatus(p, s, { host, guest, ...(ssh === undefined ? {} : { ssh }) }, options.signal)
    : { kubelet: 'Irrelevant' as const, apiServer: 'Irrelevant' as const, node: 'Irrelevant' as const, kubeconfig: 'Irrelevant' as const, findings: [] };
  let exitCode = 0;
  if (host !== 'Running') exitCode |= 1;
  if (guest !== 'Running' || (kubernetes && (k8s.kubelet !== 'Running' || k8s.apiServer !== 'Running'))) exitCode |= 2;
  if (kubernetes && k8s.kubeconfig !== 'Configured') exitCode |= 4;
  return {
    name: p.name,
    driver: s.driver,
    host,
    guest,
    kubelet: k8s.kubelet,
    apiServer: k8s.apiServer,
    kubeconfig: k8s.kubeconfig,
    node: k8s.node,
    apiServerUrl: s.apiServer ?? null,
    kubernetesVersion: s.kubernetes?.version ?? s.created?.kubernetesVersion ?? null,
    findings: k8s.findings,
    ip: ip ?? null,
    ssh: ssh === undefined ? null : { host: ssh.host, port: ssh.port },
    acceleration,
    problem: null,
    exitCode,
  };
}

type KubernetesPart = Pick<StatusReport, 'kubelet' | 'apiServer' | 'node' | 'kubeconfig' | 'findings'>;

/** The answer of `systemctl is-active kubelet` in the guest. */
export function kubeletStatus(stdout: string, exitCode: number): { status: ComponentStatus; message?: string } {
  const state = stdout.trim().split('\n')[0]?.trim() ?? '';
  if (state === 'active' && exitCode === 0) return { status: 'Running' };
  // activating: systemd restarts a kubelet that keeps exiting (its journal says why).
  if (['inactive', 'failed', 'activating', 'deactivating'].includes(state)) return { status: 'Stopped', message: `the kubelet is ${state}` };
  return { status: 'Unknown', message: `systemctl is-active kubelet answered ${JSON.stringify(state)} (exit ${exitCode})` };
}

async function kubeletOverSsh(p: OpenProfile, s: ProfileState, ssh: Endpoint, signal: AbortSignal): Promise<{ status: ComponentStatus; message?: string }> {
  const access = await profileGuestAccessor({ host: ssh.host, port: ssh.port, user: s.ssh?.user ?? DEFAULT_SEED_USER, privateKeyPath: join(p.paths.keys, CLIENT_KEY_FILE) }, signal);
  if (access.guest === undefined) return { status: 'Unknown', message: access.problem ?? 'no SSH access to the guest' };
  try {
    const r = await access.guest.exec(['systemctl', 'is-active', 'kubelet'], { timeoutMs: 10_000, signal });
    return kubeletStatus(r.stdout, r.exitCode);
  } catch (e) {
    return { status: 'Unreachable', message: `SSH to the guest failed: ${(e as Error).message}` };
  } finally {
    access.guest.close?.();
  }
}

/**
 * The kubelet (over SSH), the API server and the node (HTTPS from this host
 * with the profile's admin certificate, as kubectl reaches them) and the
 * user's kubeconfig entries.
 */
async function kubernetesStatus(p: OpenProfile, s: ProfileState, vm: { host: HostStatus; guest: ComponentStatus; ssh?: Endpoint }, signal: AbortSignal): Promise<KubernetesPart> {
  const flag = p.name === 'devcluster' ? '' : ` -p ${p.name}`;
  const findings: StatusFinding[] = [];
  const server = s.apiServer;
  const running = vm.host === 'Running';

  let kubelet: ComponentStatus = running ? 'Unreachable' : 'Stopped';
  if (running && vm.guest === 'Running' && vm.ssh !== undefined) {
    const k = await kubeletOverSsh(p, s, vm.ssh, signal);
    kubelet = k.status;
    if (k.message !== undefined) findings.push({ component: 'kubelet', message: k.message, fix: `devcluster ssh${flag} -- sudo journalctl -u kubelet -n 50 --no-pager` });
  }

  let apiServer: ComponentStatus = running ? 'Unreachable' : 'Stopped';
  let node: NodeStatus = 'Unknown';
  if (server === undefined) {
    apiServer = 'Nonexistent';
    findings.push({ component: 'apiServer', message: 'Kubernetes has not finished a start: no API server address is recorded', fix: `devcluster start${flag}` });
  } else if (running) {
    const kube = httpClusterAccessor(server, profileTlsFiles(p.paths.pki));
    let answer: { status: number; body: string } | undefined;
    try {
      answer = await kube.readyz({ signal, timeoutMs: STATUS_HTTP_TIMEOUT_MS });
    } catch (e) {
      // No connection is Unreachable; a TLS refusal (a server the profile's CA did not certify) is an Error.
      const code = (e as NodeJS.ErrnoException).code ?? '';
      apiServer = /^(ECONNREFUSED|ECONNRESET|EHOSTUNREACH|ENETUNREACH|ETIMEDOUT|EADDRNOTAVAIL|ENOTFOUND|EAI_AGAIN)$/.test(code) || /^no answer from /.test((e as Error).message) ? 'Unreachable' : 'Error';
      findings.push({ component: 'apiServer', message: `GET ${server}/readyz failed: ${(e as Error).message}`, fix: `devcluster doctor${flag}` });
    }
    if (answer !== undefined) {
      if (answer.status === 200 && answer.body.trim() === 'ok') apiServer = 'Running';
      else {
        apiServer = 'Error';
        const failing = readyzFailures(answer.body);
        const said = failing.length > 0 ? failing.join('; ') : answer.body.trim().slice(0, 200);
        findings.push({ component: 'apiServer', message: `GET ${server}/readyz answered HTTP ${answer.status}${said === '' ? '' : `: ${said}`}`, fix: `devcluster logs${flag} --bundle` });
      }
    }
    if (apiServer === 'Running' && kube.node !== undefined) {
      const n = await kube.node(p.name, { signal, timeoutMs: STATUS_HTTP_TIMEOUT_MS }).catch((e: unknown) => ({ status: 'Unknown' as const, reason: (e as Error).message }));
      node = n.status;
      if (n.status !== 'Ready') findings.push({ component: 'node', message: `node ${p.name} is ${n.status}${n.reason === undefined ? '' : `: ${n.reason}`}`, fix: `devcluster kubectl${flag} -- describe node ${p.name}` });
    }
  }

  let kubeconfig: StatusReport['kubeconfig'] = 'Misconfigured';
  if (server === undefined) {
    findings.push({ component: 'kubeconfig', message: 'no kubectl context is written before a start finishes', fix: `devcluster start${flag}` });
  } else {
    const caPem = await readFile(join(p.paths.pki, ...PKI_FILES.caCert.split('/')), 'utf8').catch(() => undefined);
    const verdict = caPem === undefined
      ? { status: 'Misconfigured' as const, problem: `the profile's CA (${PKI_FILES.caCert} in ${p.paths.pki}) is missing`, fix: `devcluster delete${flag} && devcluster start${flag}` }
      : await checkProfileEntries(p.name, server, caPem);
    kubeconfig = verdict.status;
    if (verdict.problem !== undefined) findings.push({ component: 'kubeconfig', message: verdict.problem, ...(verdict.fix === undefined ? {} : { fix: verdict.fix }) });
  }
  return { kubelet, apiServer, node, kubeconfig, findings };
}
