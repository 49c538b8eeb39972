import { stringify } from 'yaml';
import { CONTAINERD_SOCKET } from './node-files.ts';

/** A stable name for the API server, mapped in the guest's /etc/hosts: the guest's kubeconfigs survive an IP change. */
export const CONTROL_PLANE_NAME = 'control-plane.devcluster.internal';
export const API_SERVER_PORT = 6443;
export const POD_SUBNET = '10.244.0.0/16';
/** The first node's slice of POD_SUBNET, what the controller manager assigns it. */
export const NODE_POD_CIDR = '10.244.0.0/24';
export const SERVICE_SUBNET = '10.96.0.0/12';
export const DNS_DOMAIN = 'cluster.local';
export const GUEST_KUBEADM_CONFIG = '/etc/kubernetes/devcluster-kubeadm.yaml';
export const GUEST_ADMIN_KUBECONFIG = '/etc/kubernetes/admin.conf';
/** kubeadm applies the patches in this directory to the static pod manifests it writes. */
export const GUEST_KUBEADM_PATCHES = '/etc/kubernetes/devcluster-patches';

const CONTROL_PLANE_COMPONENTS = ['etcd', 'kube-apiserver', 'kube-controller-manager', 'kube-scheduler'] as const;
/** 10 s apart: 20 minutes for a component to answer its first health check. */
const STARTUP_PROBE_FAILURES = 120;

/**
 * kubeadm's static pods give a component 24 startup probes 10 s apart (about
 * four minutes) before the kubelet kills it. Under software emulation the API
 * server took longer than that and was restarted before it ever served: these
 * strategic-merge patches give every control-plane component 20 minutes.
 * Liveness after startup is kubeadm's own.
 */
export function staticPodPatches(): Array<{ path: string; content: string; mode: number }> {
  return CONTROL_PLANE_COMPONENTS.map((name) => ({
    path: `${GUEST_KUBEADM_PATCHES}/${name}+strategic.yaml`,
    content: stringify({ spec: { containers: [{ name, startupProbe: { failureThreshold: STARTUP_PROBE_FAILURES } }] } }),
    mode: 0o644,
  }));
}

export interface KubeadmConfigInput {
  kubernetesVersion: string;
  clusterName: string;
  nodeName: string;
  /** The guest's own IPv4 address (the API server advertises it). */
  advertiseAddress: string;
  /** Extra names and addresses for the API server certificate (kubeadm adds its own). */
  certSans: { dns: readonly string[]; ips: readonly string[] };
}

/**
 * kubeadm's configuration (v1beta4) for a single-node cluster, one YAML
 * stream of four documents. etcd listens on loopback only: a single member
 * needs no peer, and its URLs then do not change with the guest's address.
 */
export function kubeadmConfig(input: KubeadmConfigInput): string {
  const init = {
    apiVersion: 'kubeadm.k8s.io/v1beta4',
    kind: 'InitConfiguration',
    localAPIEndpoint: { advertiseAddress: input.advertiseAddress, bindPort: API_SERVER_PORT },
    nodeRegistration: {
      name: input.nodeName,
      criSocket: `unix://${CONTAINERD_SOCKET}`,
      // One node runs everything, so the control-plane taint would leave user pods Pending.
      taints: [],
      // Images come from the bundle; a pull happens only for what it lacks.
      imagePullPolicy: 'IfNotPresent',
      kubeletExtraArgs: [{ name: 'node-ip', value: input.advertiseAddress }],
    },
    patches: { directory: GUEST_KUBEADM_PATCHES },
    // Under software emulation the control plane needs minutes, not kubeadm's
    // defaults (4m for the components, 1m for an API call): kubeadm creates the
    // admin's ClusterRoleBinding with the API call limit while the API server
    // is still starting, and gave up after 2 minutes in our TCG guests.
    timeouts: {
      controlPlaneComponentHealthCheck: '20m0s',
      kubeletHealthCheck: '10m0s',
      kubernetesAPICall: '10m0s',
      etcdAPICall: '10m0s',
      tlsBootstrap: '10m0s',
    },
  };
  const cluster = {
    apiVersion: 'kubeadm.k8s.io/v1beta4',
    kind: 'ClusterConfiguration',
    kubernetesVersion: input.kubernetesVersion,
    clusterName: input.clusterName,
    controlPlaneEndpoint: `${CONTROL_PLANE_NAME}:${API_SERVER_PORT}`,
    certificatesDir: '/etc/kubernetes/pki',
    imageRepository: 'registry.k8s.io',
    networking: { podSubnet: POD_SUBNET, serviceSubnet: SERVICE_SUBNET, dnsDomain: DNS_DOMAIN },
    apiServer: { certSANs: [...input.certSans.dns, ...input.certSans.ips] },
    // One instance of each: leader election has nothing to decide, and under software
    // emulation a lease renewal that missed its 10 s deadline restarted the controller
    // manager and the scheduler every few minutes, leaving new Services without endpoints.
    controllerManager: { extraArgs: [{ name: 'leader-elect', value: 'false' }] },
    scheduler: { extraArgs: [{ name: 'leader-elect', value: 'false' }] },
    etcd: {
      local: {
        dataDir: '/var/lib/etcd',
        extraArgs: [
          { name: 'listen-client-urls', value: 'https://127.0.0.1:2379' },
          { name: 'advertise-client-urls', value: 'https://127.0.0.1:2379' },
          { name: 'listen-peer-urls', value: 'https://127.0.0.1:2380' },
          { name: 'initial-advertise-peer-urls', value: 'https://127.0.0.1:2380' },
          { name: 'initial-cluster', value: `${input.nodeName}=https://127.0.0.1:2380` },
        ],
      },
    },
  };
  const kubelet = {
    apiVersion: 'kubelet.config.k8s.io/v1beta1',
    kind: 'KubeletConfiguration',
    cgroupDriver: 'systemd',
    // A guest with swap keeps working; pods still get none.
    failSwapOn: false,
    memorySwap: { swapBehavior: 'NoSwap' },
  };
  const proxy = {
    apiVersion: 'kubeproxy.config.k8s.io/v1alpha1',
    kind: 'KubeProxyConfiguration',
    clusterCIDR: POD_SUBNET,
  };
  return [init, cluster, kubelet, proxy].map((d) => stringify(d)).join('---\n');
}
