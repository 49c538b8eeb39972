import { errorDef, registerErrors } from '../ui/errors.ts';

/**
 * The kubeconfig writer's error IDs. They share the doctor's kubeconfig exit
 * code (106), so a script sees one code for "the kubeconfig is the problem".
 */
export const KUBE_ERRORS = {
  KUBECONFIG_LOCKED: errorDef('kubernetes', 106, 'Another program (kubectl, kind, devcluster) held a kubeconfig file\'s lock (<file>.lock) longer than devcluster waits; if none is running, the lock file is left over from a crash and can be removed.'),
  KUBECONFIG_UNUSABLE: errorDef('kubernetes', 106, 'A kubeconfig file devcluster has to read or change is not valid YAML or not a kubeconfig; devcluster changed no kubeconfig file.'),
  KUBECONFIG_ENTRY_INVALID: errorDef('kubernetes', 106, 'The cluster entry devcluster was asked to write is malformed (server URL, certificates or key); no kubeconfig file was changed.'),
};

registerErrors(KUBE_ERRORS);
