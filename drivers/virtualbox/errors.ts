import { errorDef, registerErrors } from '../../src/ui/errors.ts';

// Exit codes follow the QEMU and HyperKit drivers' for the same kind of failure, so scripts treat them alike.
registerErrors({
  VBOX_NOT_FOUND: errorDef('hypervisor', 65, 'VBoxManage was not found (VBOX_INSTALL_PATH, VBOX_MSI_INSTALL_PATH, the default install folder, the Windows registry, PATH).'),
  VBOX_VERSION_UNSUPPORTED: errorDef('hypervisor', 65, 'VirtualBox is older than 6.1, or VBoxManage printed no version (an incomplete install or a kernel driver that is not loaded).'),
  VBOX_COMMAND_FAILED: errorDef('hypervisor', 60, 'A VBoxManage command failed (it printed `error:`, or exited non-zero); its own message says why.'),
  VBOX_START_FAILED: errorDef('hypervisor', 60, 'VirtualBox did not start the VM; the VM\'s VBox.log says why (VT-x/AMD-V, Hyper-V, the host-only adapter).'),
  VBOX_STOP_TIMEOUT: errorDef('hypervisor', 62, 'The VM was still running after ACPI shutdown and a forced power-off.'),
  VBOX_IMAGE_UNSUITABLE: errorDef('hypervisor', 66, 'The VirtualBox driver boots a VMDK base image; the chosen image is another format.'),
  VBOX_DISK_TOO_SMALL: errorDef('usage', 2, 'The requested disk size is smaller than the guest image.'),
  VBOX_HOSTONLY_FAILED: errorDef('network', 71, 'The host-only network could not be created or configured (no free subnet in the allowed range, the adapter did not appear, or creating it was refused).'),
  VBOX_VM_NAME_TAKEN: errorDef('hypervisor', 60, 'VirtualBox already has a VM with this profile\'s name that devcluster did not create.'),
});
