import { formatMac, parseMac } from '../../src/host/dhcpd-leases.ts';
import { DevclusterError } from '../../src/ui/errors.ts';
import './errors.ts';

export interface HyperkitLaunch {
  cpus: number;
  memoryMiB: number;
  /** vmnet derives the VM's MAC from it, so the same UUID keeps the same DHCP lease. */
  uuid: string;
  /** The raw disk. */
  disk: string;
  /** The seed first, then the data ISOs; each an AHCI CD-ROM. */
  isos: readonly string[];
  kernel: string;
  initrd: string;
  cmdline: string;
  pidFile: string;
  /** Where hyperkit writes the name of the serial console's pty. */
  tty: string;
  /** The console's output: a 64 KiB ring hyperkit truncates at each start. */
  consoleRing: string;
}

/** Kubernetes wants the unified cgroup hierarchy; an image's command line that does not say so gets it added. */
export const CGROUP_V2 = 'systemd.unified_cgroup_hierarchy=1';

export function kernelCmdline(imageCmdline: string | undefined): string {
  const base = (imageCmdline ?? 'console=ttyS0').trim();
  return /\bsystemd\.unified_cgroup_hierarchy=/.test(base) ? base : `${base} ${CGROUP_V2}`;
}

/**
 * HyperKit splits a device's options on commas and has no escape for them,
 * so a path with a comma would become another option.
 */
function optionPath(what: string, path: string): string {
  if (path.includes(',')) {
    throw new DevclusterError('HYPERKIT_IMAGE_UNSUITABLE', `the ${what} path ${path} contains a comma, which HyperKit cannot pass on its command line`, {
      advice: 'Use a DEVCLUSTER_HOME whose path has no comma.',
      input: true,
    });
  }
  return path;
}

/**
 * hyperkit's arguments for one VM, in the order HyperKit's own bindings emit
 * them: ACPI and a UTC clock, the pid file, CPUs and memory, the host bridge
 * and LPC, then one PCI slot per device (vmnet NIC, disk, CD-ROMs, entropy),
 * the serial port, and a direct kernel boot.
 */
export function buildHyperkitArgs(l: HyperkitLaunch): string[] {
  const args = ['-A', '-u', '-F', l.pidFile, '-c', String(l.cpus), '-m', `${l.memoryMiB}M`, '-s', '0:0,hostbridge', '-s', '31,lpc'];
  args.push('-s', '1:0,virtio-net', '-U', l.uuid);
  args.push('-s', `2:0,virtio-blk,${optionPath('disk', l.disk)}`);
  l.isos.forEach((iso, i) => args.push('-s', `${3 + i},ahci-cd,${optionPath('ISO', iso)}`));
  args.push('-s', `${3 + l.isos.length},virtio-rnd`);
  args.push('-l', `com1,autopty=${optionPath('tty', l.tty)},log=${optionPath('console ring', l.consoleRing)}`);
  args.push('-f', `kexec,${optionPath('kernel', l.kernel)},${optionPath('initrd', l.initrd)},${l.cmdline}`);
  return args;
}

/**
 * The arguments that make hyperkit print the MAC vmnet derives from a UUID
 * and exit before booting: the same NIC and UUID as the VM, with its kernel
 * so the command line is one hyperkit accepts.
 */
export function macQueryArgs(uuid: string, kernel: string, initrd: string): string[] {
  return ['-M', '-A', '-u', '-s', '0:0,hostbridge', '-s', '31,lpc', '-s', '1:0,virtio-net', '-U', uuid, '-f', `kexec,${optionPath('kernel', kernel)},${optionPath('initrd', initrd)},`];
}

/** "MAC: 8e:1:99:9c:54:b1" in `hyperkit -M`'s output, as colon-separated two-digit octets. */
export function parseMacReport(stdout: string): string | undefined {
  const m = /^MAC:\s*(\S+)\s*$/m.exec(stdout);
  const bytes = m === null ? undefined : parseMac(m[1] as string);
  return bytes === undefined ? undefined : formatMac(bytes);
}
