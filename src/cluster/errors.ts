import { errorDef, registerErrors } from '../ui/errors.ts';

registerErrors({
  KUBERNETES_BOOTSTRAP_UNAVAILABLE: errorDef('usage', 2, 'This build of devcluster cannot install Kubernetes yet; start the VM alone with --no-kubernetes.'),
  GUEST_NOT_RUNNING: errorDef('guest', 83, 'The command needs a running VM and the profile\'s VM is not running.'),
  VM_DIED: errorDef('hypervisor', 67, 'The VM stopped or crashed while devcluster waited for it; the error shows the hypervisor\'s and the guest console\'s last lines.'),
  PROFILE_BEING_DELETED: errorDef('program', 13, 'The profile was being deleted when that command stopped; finish with `devcluster delete`.'),
  IMAGE_NONE_AVAILABLE: errorDef('resource', 28, 'No guest image is cached or published for a default start; build one first (Linux: `devcluster image build debian`).'),
});
