import { errorDef, registerErrors } from '../../src/ui/errors.ts';

// Exit codes follow the QEMU driver's for the same failure, so scripts treat both alike.
registerErrors({
  HYPERKIT_NOT_FOUND: errorDef('hypervisor', 65, 'The hyperkit program was not found (PATH, /usr/local/bin, Docker Desktop\'s com.docker.hyperkit, or the hyperkit-path setting).'),
  HYPERKIT_SUDO_REQUIRED: errorDef('hypervisor', 69, 'HyperKit needs root for vmnet, and `sudo -n` may not run it (or signal it) without a password.'),
  HYPERKIT_START_FAILED: errorDef('hypervisor', 60, 'hyperkit exited while the VM was starting; its own output says why.'),
  HYPERKIT_STOP_TIMEOUT: errorDef('hypervisor', 62, 'The hyperkit process did not exit, even after SIGKILL.'),
  HYPERKIT_IMAGE_UNSUITABLE: errorDef('hypervisor', 66, 'HyperKit boots a raw disk with the image\'s own kernel and initrd; the image does not provide them, or a path holds a comma HyperKit cannot pass.'),
  HYPERKIT_DISK_TOO_SMALL: errorDef('usage', 2, 'The requested disk size is smaller than the guest image.'),
  HYPERKIT_MAC_UNKNOWN: errorDef('hypervisor', 60, '`hyperkit -M` did not report the MAC address vmnet gives the VM.'),
  HYPERKIT_EXITED: errorDef('hypervisor', 67, 'hyperkit exited (the guest powered off or crashed) while devcluster waited for the guest\'s address.'),
  HYPERKIT_NO_LEASE: errorDef('network', 75, 'macOS\'s DHCP server (bootpd) gave the VM no address in time: /var/db/dhcpd_leases has no entry for its MAC.'),
});
