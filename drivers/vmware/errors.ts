import { errorDef, registerErrors } from '../../src/ui/errors.ts';

// Exit codes follow the QEMU and HyperKit drivers' for the same failure, so scripts treat them alike.
registerErrors({
  VMWARE_NOT_FOUND: errorDef('hypervisor', 65, 'vmrun (VMware Workstation or Fusion) was not found: not on PATH, not in the registry\'s install path, not in the default install folders, or not where the vmware-vmrun setting points.'),
  VMWARE_PRODUCT_UNSUPPORTED: errorDef('hypervisor', 69, 'vmrun does not accept `-T ws` (VMware Workstation Player or the VIX of an older product): devcluster needs Workstation Pro (free since 17.6.2) or Fusion.'),
  VMWARE_IMAGE_UNSUITABLE: errorDef('hypervisor', 66, 'The image has no sparse VMDK disk that VMware can use as the parent of the VM\'s disk.'),
  VMWARE_DISK_TOO_SMALL: errorDef('usage', 2, 'The requested disk size is smaller than the guest image.'),
  VMWARE_PATH_UNSUPPORTED: errorDef('usage', 2, 'A path the VM\'s disk names (DEVCLUSTER_HOME, the image cache) holds a double quote or a control character, which a VMDK descriptor cannot hold.'),
  VMWARE_DISK_FAILED: errorDef('hypervisor', 61, 'vmware-vdiskmanager could not convert the cached image into the base disk VMware reads.'),
  VMWARE_VMRUN_FAILED: errorDef('hypervisor', 60, 'vmrun refused to start, stop or delete the VM; its own "Error:" line says why.'),
  VMWARE_STOP_TIMEOUT: errorDef('hypervisor', 62, 'The VM was still listed by `vmrun list` after a hard stop.'),
  VMWARE_NO_ADDRESS: errorDef('network', 75, 'Neither VMware Tools in the guest (`vmrun getGuestIPAddress`) nor vmnet8\'s DHCP leases gave the VM\'s address in time.'),
});
