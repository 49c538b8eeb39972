import { errorDef, registerErrors } from '../ui/errors.ts';

/** The guest bootstrap's error IDs: the runtime (containerd) in the 90s, Kubernetes itself in the 100s. */
export const BOOTSTRAP_ERRORS = {
  KUBE_BUNDLE_MEDIUM_MISSING: errorDef('guest', 87, 'The guest sees no node bundle medium (the read-only ISO devcluster attaches to the VM), so the bundle cannot be installed; nothing was installed.'),
  KUBE_BUNDLE_MEDIUM_STALE: errorDef('guest', 87, 'The bundle medium attached to the running VM holds another bundle than the one the start installs (the cached bundle was replaced while the VM ran); nothing was installed.'),
  CONTAINERD_NOT_READY: errorDef('runtime', 90, 'containerd did not start in the guest, or did not answer on its socket in time.'),
  KUBE_IMAGE_IMPORT_FAILED: errorDef('runtime', 91, 'An image archive of the node bundle could not be imported into the guest\'s containerd.'),
  KUBEADM_INIT_FAILED: errorDef('kubernetes', 100, '`kubeadm init` failed in the guest; its log is /var/log/devcluster/kubeadm-init.log there.'),
  KUBE_APISERVER_NOT_READY: errorDef('kubernetes', 101, 'The API server did not report ready (/readyz) in time.'),
  KUBE_NODE_NOT_READY: errorDef('kubernetes', 102, 'The node did not become Ready in time (the kubelet, the CNI or the container runtime is failing).'),
  KUBE_SYSTEM_PODS_NOT_RUNNING: errorDef('kubernetes', 103, 'CoreDNS or kube-proxy did not reach Running in time.'),
};

registerErrors(BOOTSTRAP_ERRORS);
