import { errorDef, registerErrors } from '../ui/errors.ts';

/**
 * The cluster PKI's error IDs. A bad request is refused before any file is
 * touched (usage, 2). A CA or service-account key that exists but cannot be
 * used is never replaced on its own (101): the cluster, its kubeconfigs and
 * every token trust it, so a new one means a new cluster.
 */
export const PKI_ERRORS = {
  KUBE_PKI_INPUT_INVALID: errorDef('usage', 2, "A name, address, network or lifetime given for the cluster's certificates is not valid; no file was written."),
  KUBE_PKI_UNUSABLE: errorDef(
    'kubernetes',
    101,
    "A CA certificate or key, or the service-account key, in the profile's pki directory exists but cannot be used (not PEM, key and certificate differ, not a CA, expired); devcluster does not replace a cluster's CA on its own.",
  ),
  KUBE_PKI_MISSING: errorDef('kubernetes', 101, "The profile's CA or admin client certificate (pki/ca.crt, admin.crt, admin.key) is missing or unreadable, so devcluster cannot write or check its kubeconfig entries; a new PKI would mean a new cluster."),
};

registerErrors(PKI_ERRORS);
