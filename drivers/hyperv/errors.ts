import { errorDef, registerErrors } from '../../src/ui/errors.ts';

// Exit codes follow the QEMU and HyperKit drivers' for the same kind of failure.
registerErrors({
  HYPERV_NOT_WINDOWS: errorDef('hypervisor', 69, 'Hyper-V runs only on Windows (Pro, Enterprise or Education).'),
  HYPERV_MODULE_MISSING: errorDef('hypervisor', 69, 'The Hyper-V PowerShell module or the Virtual Machine Management service (vmms) is missing or stopped.'),
  HYPERV_RIGHTS: errorDef('host', 37, 'The operation needs Administrator (switches, host addresses, NAT, ICS) or Hyper-V Administrators (VMs), and this shell has neither.'),
  HYPERV_MEMORY_UNALIGNED: errorDef('usage', 2, 'Hyper-V accepts only memory sizes that are a multiple of 2 MiB.'),
  HYPERV_IMAGE_UNSUITABLE: errorDef('hypervisor', 66, 'Hyper-V boots a VHDX disk; the image gives none.'),
  HYPERV_SWITCH_NOT_FOUND: errorDef('network', 73, 'The virtual switch named by --hyperv-virtual-switch does not exist.'),
  HYPERV_ADAPTER_NOT_FOUND: errorDef('network', 73, 'The physical adapter named by --hyperv-external-adapter does not exist.'),
  HYPERV_NAT_CONFLICT: errorDef('network', 73, 'Another NetNat covers part of the subnet devcluster needs, and Windows allows only one translation for a prefix.'),
  HYPERV_NO_SUBNET: errorDef('network', 73, 'Every candidate /24 for the devcluster switch is taken by a route, an address or a NetNat.'),
  HYPERV_ICS_BUSY: errorDef('network', 73, 'Internet Connection Sharing already shares another pair of connections; Windows shares one pair at a time.'),
  HYPERV_NO_ADDRESS: errorDef('network', 75, 'Hyper-V reported no IPv4 address for the VM in time (KVP daemon and neighbour cache).'),
  HYPERV_VM_GONE: errorDef('hypervisor', 67, 'The VM devcluster created is no longer registered in Hyper-V.'),
  HYPERV_STOP_TIMEOUT: errorDef('hypervisor', 62, 'The VM did not reach Off, even after Stop-VM -TurnOff.'),
  HYPERV_FILES_IN_USE: errorDef('hypervisor', 64, 'The VM\'s files could not be removed: Hyper-V (vmms, vmwp or Hyper-V Manager) still holds them.'),
});
