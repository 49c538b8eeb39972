import { errorDef, registerErrors } from '../ui/errors.ts';

registerErrors({
  KUBERNETES_BOOTSTRAP_UNAVAILABLE: errorDef('usage', 2, 'This build of devcluster cannot install Kubernetes yet; start the VM alone with --no-kubernetes.'),
  GUEST_NOT_RUNNING: errorDef('guest', 83, 'The command needs a running VM and the profile\'s VM is not running.'),
});
