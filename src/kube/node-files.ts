/**
 * The files a devcluster guest needs around the node bundle's binaries:
 * systemd units, containerd's and crictl's configuration, the CNI network,
 * the kernel settings kube-proxy and the bridge plugin depend on. Rendered
 * on the host and written over SSH, so the guest image carries only the OS.
 */

/** Where the bundle's binaries go in the guest: /usr/local, outside what the OS's package manager owns. */
export const GUEST_BIN_DIR = '/usr/local/bin';
export const GUEST_SBIN_DIR = '/usr/local/sbin';
export const GUEST_CNI_BIN_DIR = '/opt/cni/bin';
export const GUEST_CNI_CONF_DIR = '/etc/cni/net.d';
export const CONTAINERD_SOCKET = '/run/containerd/containerd.sock';
/** containerd's root: where a bundle's preload is extracted. */
export const CONTAINERD_ROOT = '/var/lib/containerd';
/** The CRI namespace: images imported elsewhere are invisible to the kubelet. */
export const CRI_NAMESPACE = 'k8s.io';

export interface GuestFile {
  readonly path: string;
  readonly content: string;
  readonly mode: number;
}

export interface NodeFilesInput {
  /** kubeadm's pause image (registry.k8s.io/pause:3.10.2): containerd pins it as the sandbox. */
  readonly sandboxImage: string;
  /** The pod network of this node (a part of the cluster's pod subnet). */
  readonly podCidr: string;
  /** A registry mirror for docker.io and registry.k8s.io pulls, when the user gave one. */
  readonly registryMirror?: string;
}

const CONTAINERD_UNIT = `[Unit]
Description=containerd container runtime (devcluster node bundle)
Documentation=https://containerd.io
After=network.target dbus.service local-fs.target iptables.service

[Service]
ExecStartPre=-/sbin/modprobe overlay
ExecStart=${GUEST_BIN_DIR}/containerd
Type=notify
Delegate=yes
KillMode=process
Restart=always
RestartSec=5
LimitNPROC=infinity
LimitCORE=infinity
TasksMax=infinity
OOMScoreAdjust=-999

[Install]
WantedBy=multi-user.target
`;

const KUBELET_UNIT = `[Unit]
Description=kubelet: the Kubernetes node agent (devcluster node bundle)
Documentation=https://kubernetes.io/docs/
Wants=network-online.target containerd.service
After=network-online.target containerd.service

[Service]
ExecStart=${GUEST_BIN_DIR}/kubelet
Restart=always
StartLimitInterval=0
RestartSec=10

[Install]
WantedBy=multi-user.target
`;

// kubeadm writes kubeadm-flags.env and the kubelet's config.yaml; this drop-in is
// the one its documentation ships, pointing at our binary.
const KUBELET_KUBEADM_DROPIN = `[Service]
Environment="KUBELET_KUBECONFIG_ARGS=--bootstrap-kubeconfig=/etc/kubernetes/bootstrap-kubelet.conf --kubeconfig=/etc/kubernetes/kubelet.conf"
Environment="KUBELET_CONFIG_ARGS=--config=/var/lib/kubelet/config.yaml"
EnvironmentFile=-/var/lib/kubelet/kubeadm-flags.env
EnvironmentFile=-/etc/default/kubelet
ExecStart=
ExecStart=${GUEST_BIN_DIR}/kubelet $KUBELET_KUBECONFIG_ARGS $KUBELET_CONFIG_ARGS $KUBELET_KUBEADM_ARGS $KUBELET_EXTRA_ARGS
`;

function tomlString(s: string): string {
  return JSON.stringify(s);
}

/** containerd 2's configuration (version 3): systemd cgroups like the kubelet, the pinned sandbox, the CNI dirs. */
export function containerdConfig(input: NodeFilesInput): string {
  return `# Written by devcluster; it is rewritten on every start.
version = 3
root = "${CONTAINERD_ROOT}"
state = "/run/containerd"

[grpc]
  address = ${tomlString(CONTAINERD_SOCKET)}

[plugins.'io.containerd.cri.v1.images']
  snapshotter = "overlayfs"

[plugins.'io.containerd.cri.v1.images'.pinned_images]
  # The kubelet no longer chooses the sandbox image; containerd does, and it must
  # be the pause image kubeadm expects (imported from the bundle, never pulled).
  sandbox = ${tomlString(input.sandboxImage)}

[plugins.'io.containerd.cri.v1.images'.registry]
  config_path = "/etc/containerd/certs.d"

[plugins.'io.containerd.cri.v1.runtime'.containerd]
  default_runtime_name = "runc"

[plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.runc]
  runtime_type = "io.containerd.runc.v2"

[plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.runc.options]
  SystemdCgroup = true

[plugins.'io.containerd.cri.v1.runtime'.cni]
  bin_dirs = [${tomlString(GUEST_CNI_BIN_DIR)}]
  conf_dir = ${tomlString(GUEST_CNI_CONF_DIR)}
  max_conf_num = 1
`;
}

/** containerd's hosts.toml for one registry: pulls try the mirror first, then the registry itself. */
export function registryHostsToml(registry: string, mirror: string): string {
  const upstream = registry === 'docker.io' ? 'https://registry-1.docker.io' : `https://${registry}`;
  return `# Written by devcluster for --registry-mirror.
server = ${tomlString(upstream)}

[host.${tomlString(mirror)}]
  capabilities = ["pull", "resolve"]
`;
}

/** The registries a --registry-mirror serves. */
export const MIRRORED_REGISTRIES = ['docker.io', 'registry.k8s.io'] as const;

/**
 * A bridge network for the single node's pods. host-local allocates from the
 * node's own slice of the pod subnet (the first /24, what the controller
 * manager assigns the first node), so pod IPs match node.spec.podCIDR.
 */
export function cniConflist(podCidr: string): string {
  return `${JSON.stringify(
    {
      cniVersion: '1.0.0',
      name: 'devcluster',
      plugins: [
        {
          type: 'bridge',
          bridge: 'cni0',
          isGateway: true,
          ipMasq: true,
          hairpinMode: true,
          ipam: { type: 'host-local', ranges: [[{ subnet: podCidr }]], routes: [{ dst: '0.0.0.0/0' }] },
        },
        { type: 'portmap', capabilities: { portMappings: true } },
      ],
    },
    null,
    2,
  )}\n`;
}

/** Every file the node needs besides the bundle's binaries and kubeadm's own output. */
export function nodeFiles(input: NodeFilesInput): GuestFile[] {
  const files: GuestFile[] = [
    { path: '/etc/systemd/system/containerd.service', content: CONTAINERD_UNIT, mode: 0o644 },
    { path: '/etc/systemd/system/kubelet.service', content: KUBELET_UNIT, mode: 0o644 },
    { path: '/etc/systemd/system/kubelet.service.d/10-kubeadm.conf', content: KUBELET_KUBEADM_DROPIN, mode: 0o644 },
    { path: '/etc/containerd/config.toml', content: containerdConfig(input), mode: 0o644 },
    { path: '/etc/crictl.yaml', content: `runtime-endpoint: unix://${CONTAINERD_SOCKET}\nimage-endpoint: unix://${CONTAINERD_SOCKET}\ntimeout: 30\n`, mode: 0o644 },
    { path: `${GUEST_CNI_CONF_DIR}/10-devcluster-bridge.conflist`, content: cniConflist(input.podCidr), mode: 0o644 },
    // overlay for containerd's snapshotter; br_netfilter so iptables (kube-proxy) sees bridged pod traffic.
    { path: '/etc/modules-load.d/devcluster-kubernetes.conf', content: 'overlay\nbr_netfilter\n', mode: 0o644 },
    {
      path: '/etc/sysctl.d/90-devcluster-kubernetes.conf',
      content: 'net.ipv4.ip_forward = 1\nnet.bridge.bridge-nf-call-iptables = 1\nnet.bridge.bridge-nf-call-ip6tables = 1\n',
      mode: 0o644,
    },
  ];
  if (input.registryMirror !== undefined) {
    for (const registry of MIRRORED_REGISTRIES) {
      files.push({ path: `/etc/containerd/certs.d/${registry}/hosts.toml`, content: registryHostsToml(registry, input.registryMirror), mode: 0o644 });
    }
  }
  return files;
}
