import { errorDef, registerErrors } from '../../src/ui/errors.ts';

registerErrors({
  QEMU_NOT_FOUND: errorDef('hypervisor', 65, 'The QEMU system emulator (qemu-system-*) or qemu-img is not installed.'),
  QEMU_START_FAILED: errorDef('hypervisor', 60, 'QEMU exited while starting the VM.'),
  QEMU_MONITOR_UNREACHABLE: errorDef('hypervisor', 69, 'The QEMU monitor (QMP) of a running VM does not answer.'),
  QEMU_STOP_TIMEOUT: errorDef('hypervisor', 62, 'The VM did not stop, even after being killed.'),
  QEMU_DISK_TOO_SMALL: errorDef('usage', 2, 'The requested disk size is smaller than the image.'),
  QEMU_IMAGE_UNSUITABLE: errorDef('hypervisor', 66, 'The image has no format QEMU can boot.'),
  QEMU_MONITOR_PATH_TOO_LONG: errorDef('usage', 2, 'The QEMU monitor socket path under DEVCLUSTER_HOME is longer than the operating system allows for a unix socket.'),
  QEMU_MONITOR_DIR_UNSAFE: errorDef('resource', 27, 'The private directory for QEMU monitor sockets ($DEVCLUSTER_HOME/run) is not a directory owned by this user.'),
  QEMU_BRIDGE_NEEDS_ROOT: errorDef('network', 77, 'Bridged networking needs root on Linux.'),
  QEMU_BRIDGE_UNSUPPORTED: errorDef('network', 76, 'Bridged networking is only available on Linux.'),
  NETWORK_SUBNET_EXHAUSTED: errorDef('network', 71, 'No free private subnet could be found for the VM network.'),
  NETWORK_SETUP_FAILED: errorDef('network', 70, 'Creating the bridge, tap device, NAT rules or DHCP server failed.'),
  NETWORK_SUBNET_IN_USE: errorDef('network', 72, 'The requested VM subnet overlaps a network the host already routes to, or differs from the subnet of the shared bridge.'),
  NETWORK_NOT_OURS: errorDef('network', 73, 'An interface or nftables table with the name devcluster would use exists but was not created by devcluster, which leaves it alone.'),
  NETWORK_ADDRESS_UNAVAILABLE: errorDef('network', 74, 'The requested static IP is outside the subnet, reserved or used by another profile, or the subnet has no free address.'),
});
