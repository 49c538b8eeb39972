import { errorDef, registerErrors } from '../ui/errors.ts';

registerErrors({
  KUBERNETES_CHOICE_IMMUTABLE: errorDef('usage', 2, 'The profile was created with (or without) Kubernetes and a flag asked for the other; delete it to change that.'),
  KUBERNETES_NOT_IN_PROFILE: errorDef('usage', 2, 'The command needs Kubernetes and the profile was created with --no-kubernetes.'),
  KUBERNETES_NOT_STARTED: errorDef('kubernetes', 104, 'The profile\'s Kubernetes has not finished a start yet, so there is no kubectl context for it.'),
  GUEST_NOT_RUNNING: errorDef('guest', 83, 'The command needs a running VM and the profile\'s VM is not running.'),
  GUEST_BOOT_STALLED: errorDef('guest', 81, 'The guest\'s console printed part of its boot and then nothing for minutes before its SSH server answered; devcluster reset the VM once, and this says it stalled again.'),
  VM_DIED: errorDef('hypervisor', 67, 'The VM stopped or crashed while devcluster waited for it; the error shows the hypervisor\'s and the guest console\'s last lines.'),
  PROFILE_BEING_DELETED: errorDef('program', 13, 'The profile was being deleted when that command stopped; finish with `devcluster delete`.'),
  IMAGE_NONE_AVAILABLE: errorDef('resource', 28, 'No guest image is cached or published for a default start; build one first (Linux: `devcluster image build debian`).'),
});
