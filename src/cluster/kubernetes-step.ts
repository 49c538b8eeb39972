import { readFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { join } from 'node:path';
import type { Endpoint, GuestAddress, PortRequest } from '../../drivers/driver.ts';
import { endpointFor } from '../../drivers/driver.ts';
import { API_SERVER_PORT, CONTROL_PLANE_NAME, kubeadmConfig } from '../kube/kubeadm-config.ts';
import { mergeClusterIntoKubeconfig } from '../kube/kubeconfig-merge.ts';
import type { MergeClusterResult } from '../kube/kubeconfig-merge.ts';
import { guestPrimaryAddress, isInitialized, mapControlPlaneName, prepareNode, readdressControlPlane, startControlPlane, waitForCluster } from '../kube/node-bootstrap.ts';
import { KUBEADM_PKI_FILES, createClusterPki } from '../kube/pki.ts';
import type { ClusterPki } from '../kube/pki.ts';
import type { SshSession } from '../ssh/session.ts';
import type { StepRunner } from '../ui/steps.ts';
import type { PreparedBundle } from './bundle-step.ts';
import type { OpenProfile } from './profile-context.ts';

export const API_SERVER_PORT_REQUEST: PortRequest = { name: 'kube-apiserver', guestPort: API_SERVER_PORT };

/** Certificates the start issues; kubeadm's own default is one year too. */
const LEAF_VALIDITY_DAYS = 365;

/** How long each wait may take after kubeadm init (or the kubelet's start): minutes under software emulation. */
export interface ClusterDeadlines {
  apiServerMs: number;
  nodeMs: number;
  systemPodsMs: number;
}

export const DEFAULT_CLUSTER_DEADLINES: ClusterDeadlines = { apiServerMs: 10 * 60_000, nodeMs: 10 * 60_000, systemPodsMs: 10 * 60_000 };

export interface KubernetesStepInput {
  p: OpenProfile;
  steps: StepRunner;
  ssh: SshSession;
  address: GuestAddress;
  bundle: PreparedBundle;
  registryMirror: string | undefined;
  keepContext: boolean;
  deadlines?: ClusterDeadlines;
  signal: AbortSignal;
}

export interface KubernetesStepResult {
  version: string;
  server: string;
  context: string;
  bootstrap: 'initialized' | 'warm';
  /** How the bundle's images reached containerd on this start: its preload, imports, or already there. */
  images: 'preloaded' | 'imported' | 'present';
  kubeconfig: MergeClusterResult;
  /** Certificates made again on this start, with the reason (an address the old one did not cover). */
  reissued: string[];
}

/** The URL the host reaches the API server at: the guest's address when routable, else the forwarded port. */
export function apiServerUrl(address: GuestAddress): { url: string; endpoint: Endpoint } {
  const endpoint = endpointFor(address, API_SERVER_PORT);
  const host = endpoint.host.includes(':') ? `[${endpoint.host}]` : endpoint.host;
  return { url: `https://${host}:${endpoint.port}`, endpoint };
}

async function pkiFilesForGuest(pki: ClusterPki): Promise<Array<{ path: string; content: string; mode: number }>> {
  return Promise.all(
    KUBEADM_PKI_FILES.map(async (f) => ({ path: f, content: await readFile(join(pki.dir, ...f.split('/')), 'utf8'), mode: f.endsWith('.key') ? 0o600 : 0o644 })),
  );
}

/**
 * The Kubernetes half of `start`, after SSH answers: the node prepared from
 * the bundle, the control plane initialized (or, for a cluster that was,
 * only started), the waits, and the host's kubeconfig.
 */
export async function startKubernetes(input: KubernetesStepInput): Promise<KubernetesStepResult> {
  const { p, steps, ssh, bundle } = input;
  const version = bundle.manifest.kubernetesVersion;
  const sandboxImage = `registry.k8s.io/pause:${bundle.manifest.components['pause'] ?? ''}`;
  const images = await steps.run(`Installing Kubernetes ${version} in the guest`, async (update) => {
    const r = await prepareNode(ssh, { bundle, medium: bundle.medium, sandboxImage, ...(input.registryMirror === undefined ? {} : { registryMirror: input.registryMirror }) }, update);
    update(r.bundle === 'unchanged' && r.imagesImported === 0 ? 'already installed' : `bundle ${r.bundle}, ${r.imagesPreloaded ? 'images preloaded' : `${r.imagesImported} images imported`}`);
    return r.imagesPreloaded ? 'preloaded' : r.imagesImported > 0 ? 'imported' : 'present';
  });

  const server = apiServerUrl(input.address);
  const { guestIp, pki } = await steps.run('Preparing the cluster certificates', async (update) => {
    const guestIp = await guestPrimaryAddress(ssh);
    const ips = [...new Set([guestIp, '127.0.0.1', ...(input.address.ip === undefined ? [] : [input.address.ip])])];
    const pki = await createClusterPki(p.paths.pki, {
      apiServerSans: { dns: [CONTROL_PLANE_NAME, 'localhost'], ips },
      clusterName: p.name,
      nodeName: p.name,
      validityDays: LEAF_VALIDITY_DAYS,
    });
    const changed = pki.outcomes.filter((o) => o.action !== 'kept');
    update(changed.length === 0 ? 'kept' : changed.map((o) => `${o.item} ${o.action}${o.reason === undefined ? '' : ` (${o.reason})`}`).join(', '));
    return { guestIp, pki };
  });
  const reissued = pki.outcomes.filter((o) => o.action === 'reissued').map((o) => `certificate ${o.item} reissued${o.reason === undefined ? '' : `: ${o.reason}`}`);
  const previous = p.state.require().kubernetes?.guestIp;
  if (previous !== undefined && previous !== guestIp) reissued.push(`the guest's address changed from ${previous} to ${guestIp}: the control plane and the kubeconfig entry were moved to it`);

  const bootstrap = await steps.run('Starting Kubernetes', async (update) => {
    await mapControlPlaneName(ssh, guestIp);
    const files = await pkiFilesForGuest(pki);
    if (previous !== undefined && previous !== guestIp && (await isInitialized(ssh))) {
      update(`the guest's address changed from ${previous} to ${guestIp}; moving the control plane`);
      await readdressControlPlane(ssh, previous, guestIp, files.filter((f) => f.path.startsWith('apiserver.')));
    }
    const config = kubeadmConfig({ kubernetesVersion: version, clusterName: p.name, nodeName: p.name, advertiseAddress: guestIp, certSans: pki.apiServerSans });
    const how = await startControlPlane(ssh, { kubeadmConfig: config, pki: files }, update);
    update(how === 'warm' ? 'initialized before; the kubelet starts it' : 'kubeadm init done');
    return how;
  });

  const deadlines = input.deadlines ?? DEFAULT_CLUSTER_DEADLINES;
  await steps.run('Waiting for the cluster', async (update) => {
    const now = Date.now();
    await waitForCluster(ssh, { nodeName: p.name, deadlines: { apiServer: now + deadlines.apiServerMs, node: now + deadlines.apiServerMs + deadlines.nodeMs, systemPods: now + deadlines.apiServerMs + deadlines.nodeMs + deadlines.systemPodsMs }, signal: input.signal }, update);
    update('API server ready, node Ready, CoreDNS and kube-proxy Running');
  });

  const kubeconfig = await steps.run('Configuring kubectl', async (update) => {
    const [caPem, clientCertPem, clientKeyPem] = await Promise.all([
      readFile(pki.paths.caCert, 'utf8'),
      readFile(pki.paths.adminCert, 'utf8'),
      readFile(pki.paths.adminKey, 'utf8'),
    ]);
    const r = await mergeClusterIntoKubeconfig({ profile: p.name, server: server.url, caPem, clientCertPem, clientKeyPem, setCurrent: !input.keepContext, env: process.env, userHome: homedir() });
    const file = r.entries[0]?.file ?? '';
    update(`context ${r.names.context} in ${file}${r.currentContextFile === undefined ? '' : ' (current)'}`);
    return r;
  });

  await p.state.update((st) => {
    st.apiServer = server.url;
    st.kubernetes = { version, guestIp, context: kubeconfig.names.context, bootstrappedAt: st.kubernetes?.bootstrappedAt ?? new Date().toISOString() };
  });
  return { version, server: server.url, context: kubeconfig.names.context, bootstrap, images, kubeconfig, reissued };
}
