import type { StateStore } from '../src/profile/state.ts';
import type { ProfilePaths } from '../src/profile/paths.ts';
import type { SettingDefinition } from '../src/profile/setting-parsers.ts';
import type { DiskFormat } from '../src/image/formats.ts';

/**
 * The contract every driver implements (shared/DESIGN.md section 3). A driver
 * boots, stops and deletes one VM and tells how to reach it; it knows nothing
 * of SSH sessions or Kubernetes: the pipeline names the guest ports it needs
 * and a NAT-style driver forwards them. Every method is idempotent and honours
 * the context's AbortSignal. docs/architecture.md explains how a new driver
 * plugs in.
 */

/** `saved`: the hypervisor holds the VM's memory on disk (Hyper-V Saved); resumed, never killed. */
export type VmState = 'running' | 'stopped' | 'paused' | 'saved' | 'starting' | 'stopping' | 'broken' | 'absent';

export type { DiskFormat } from '../src/image/formats.ts';

/**
 * How address() learns where the guest is: from the network plan, the
 * hypervisor's own API (Hyper-V KVP, vmrun), a DHCP server's leases, or
 * host ports forwarded to the guest (no routable guest address).
 */
export type AddressSource = 'static' | 'hypervisor-api' | 'dhcp-leases' | 'port-forward';

/** Privileges an operation needs beyond an ordinary user's. */
export type Elevation = 'root' | 'sudo' | 'administrator' | 'hyperv-administrators';

export type DriverOperation = 'network' | 'create' | 'start' | 'stop' | 'delete';

export interface NetworkModeFeatures {
  /** One line for help and errors: "user-mode NAT, no root". */
  description: string;
  address: AddressSource;
  /** The operations that need elevation in this mode; the pipeline checks before acting. */
  elevation: Readonly<Partial<Record<DriverOperation, Elevation>>>;
}

export interface DriverFeatures {
  /** Network modes by name; the first is the default. */
  networkModes: Readonly<Record<string, NetworkModeFeatures>>;
  /** The setting that chooses the mode, when there is more than one. */
  networkModeSetting?: string;
  /**
   * When the VM's MAC address is known: with the network plan, or only once
   * the hypervisor assigned it (HyperKit vmnet, VMware). The seed's network
   * config matches the NIC by MAC only when it is known up front.
   */
  macKnown: 'plan' | 'after-create';
  /** A kernel and initrd beside the disk can be booted directly. */
  directKernelBoot: boolean;
  /** Disk formats the driver boots, most preferred first. */
  diskFormats: readonly DiskFormat[];
  /**
   * The hypervisor registers a base disk globally before a VM's disk can be
   * its child (VirtualBox multi-attach / immutable media): the image cache
   * asks the driver before removing such a base.
   */
  registersBaseMedia: boolean;
}

export interface DriverInfo {
  name: string;
  displayName: string;
  platforms: readonly NodeJS.Platform[];
  features: DriverFeatures;
}

/** What a driver declares without being loaded: the registry reads these for validation, help and choice. */
export interface DriverDescriptor {
  readonly name: string;
  readonly displayName: string;
  readonly aliases: readonly string[];
  readonly platforms: readonly NodeJS.Platform[];
  /** Higher is preferred when several are available on a host. */
  readonly priority: Readonly<Partial<Record<NodeJS.Platform, number>>>;
  /** The driver's own settings (qemu-network, hyperv-switch, ...), validated by their parsers. */
  readonly settings: readonly SettingDefinition[];
  /** A legacy driver is never auto-selected and says why when chosen. */
  readonly legacy?: string;
}

export interface Endpoint {
  host: string;
  port: number;
}

/** A guest port the pipeline needs to reach (22 for SSH; others by later steps). */
export interface PortRequest {
  name: string;
  guestPort: number;
}

export interface NetworkRequest {
  /** Guest ports the host must reach; a port-forwarding driver forwards each, bound to 127.0.0.1. */
  ports: readonly PortRequest[];
}

export interface NetworkPlan {
  mode: string;
  /** Known up front when features.macKnown is 'plan'. */
  mac?: string;
  /** The VM's address: static (the seed sets it), learnt at boot (DHCP), or none routable (NAT with forwards). */
  guestAddress: { kind: 'static'; cidr: string; gateway: string } | { kind: 'dhcp' } | { kind: 'forwarded' };
  dns: string[];
  /** Host endpoints per requested guest port, when the guest is reached through forwards. */
  forwards?: Readonly<Record<number, Endpoint>>;
  subnet?: string;
  gateway?: string;
}

export interface BootImage {
  format: DiskFormat;
  disk: string;
  /** The cached base's digest: a VM's disk is a copy-on-write child of it. */
  sha256: string;
  kernel?: string;
  initrd?: string;
  kernelCmdline?: string;
}

export interface VmSpec {
  cpus: number;
  memoryMiB: number;
  diskMiB: number;
  image: BootImage;
  seedIso: string;
  /**
   * Read-only ISO images attached besides the seed (the Kubernetes node
   * bundle), for the life of the VM; the guest finds each by its volume label.
   */
  dataIsos: readonly string[];
  network: NetworkPlan;
}

/** Where the guest is, once address() found it. */
export interface GuestAddress {
  /** The guest's own IPv4 address when the host can route to it (never link-local, never IPv6). */
  ip?: string;
  /** Host endpoints of forwarded guest ports; a port not listed is reached at ip:port. */
  forwards?: Readonly<Record<number, Endpoint>>;
  source: AddressSource;
}

/** Where the host reaches a guest port. */
export function endpointFor(address: GuestAddress, guestPort: number): Endpoint {
  const forwarded = address.forwards?.[guestPort];
  if (forwarded !== undefined) return forwarded;
  if (address.ip === undefined) throw new Error(`guest port ${guestPort} is neither forwarded nor routable`);
  return { host: address.ip, port: guestPort };
}

export interface AddressWait {
  /** Epoch milliseconds after which address() gives up with a hint. */
  deadline: number;
  onProgress?: (detail: string) => void;
}

/** Facts about a VM the doctor and status read. */
export interface VmDetails {
  acceleration?: { accelerator: string; hardware: boolean; reason: string };
  /** The hypervisor's process, when there is one per VM. */
  pid?: number;
}

export type Availability =
  | { status: 'available'; detail?: string }
  | { status: 'needs-elevation'; elevation: Elevation; reason: string }
  | { status: 'unavailable'; reason: string; fix?: string };

/** What a driver may read about the host and the requested settings before any profile exists. */
export interface HostContext {
  home: string;
  settings: Readonly<Record<string, unknown>>;
  platform: NodeJS.Platform;
  signal: AbortSignal;
}

export interface DriverContext extends HostContext {
  profile: string;
  paths: ProfilePaths;
  state: StateStore;
  /** Progress lines for the user ("falling back to TCG: ..."). */
  report(message: string, level?: 'info' | 'warn'): void;
}

export interface StopOptions {
  /** How long a graceful ACPI shutdown may take before escalating. */
  timeoutMs: number;
}

/** The ways a dead or dying VM explains itself to a waiting pipeline. */
export interface CrashReport {
  /** One line: "QEMU exited (killed by SIGKILL)". */
  cause: string;
  /** The hypervisor's own last words (its log's tail), when it keeps one. */
  log?: string;
}

export interface Driver {
  readonly info: DriverInfo;
  /** Whether the driver can run here with these settings, and with which elevation. Changes nothing. */
  available(ctx: HostContext): Promise<Availability>;
  /** Creates the switch / NAT / bridge when missing, records what it made; returns the plan the seed and create use. */
  ensureNetwork(ctx: DriverContext, request: NetworkRequest): Promise<NetworkPlan>;
  /** The VM with its disk as a copy-on-write child of the base; MUST succeed when the VM already exists. */
  create(ctx: DriverContext, spec: VmSpec): Promise<void>;
  /** Boots a stopped VM; returns at once when it runs. */
  start(ctx: DriverContext): Promise<void>;
  /** Continues a paused or saved VM without losing its memory. */
  resume(ctx: DriverContext): Promise<void>;
  /** Graceful (ACPI) within the timeout, then forced. */
  stop(ctx: DriverContext, options: StopOptions): Promise<void>;
  /** Forced power-off; nothing left running. */
  kill(ctx: DriverContext): Promise<void>;
  /** Removes the VM and everything the driver recorded in the state; MUST succeed when parts are already gone. */
  delete(ctx: DriverContext): Promise<void>;
  state(ctx: DriverContext): Promise<VmState>;
  /** Waits until the guest's address is known (IPv4 only), up to wait.deadline. */
  address(ctx: DriverContext, wait: AddressWait): Promise<GuestAddress>;
  details(ctx: DriverContext): Promise<VmDetails>;
  /** Why the VM is gone or broken, for a wait that watched it die. */
  crashReport(ctx: DriverContext): Promise<CrashReport>;
  /**
   * The network mode these settings select, for a driver where more than
   * features.networkModeSetting decides it (Hyper-V: an existing switch or an
   * adapter named in their own settings); without it, that setting or the first mode.
   */
  networkModeFor?(settings: Readonly<Record<string, unknown>>): string;
  /** For features.registersBaseMedia: whether the hypervisor still holds the base image at `path`, and releases it. */
  baseMedia?: {
    inUse(ctx: HostContext, path: string): Promise<boolean>;
    release(ctx: HostContext, path: string): Promise<void>;
  };
}
