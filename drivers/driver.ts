import type { StateStore } from '../src/profile/state.ts';
import type { ProfilePaths } from '../src/profile/paths.ts';

/**
 * The contract every driver implements (shared/DESIGN.md section 3). A driver
 * boots, stops and deletes one VM and tells how to reach it; it knows nothing
 * of SSH sessions or Kubernetes. Every method is idempotent and takes the
 * context's AbortSignal.
 */
export type VmState = 'running' | 'stopped' | 'paused' | 'starting' | 'stopping' | 'broken' | 'absent';

export type DiskFormat = 'qcow2' | 'vhdx' | 'vmdk' | 'ova' | 'raw';

export type IpDiscovery = 'hypervisor-api' | 'dhcp-leases' | 'port-forward' | 'static';

export interface DriverFeatures {
  /** Whether creating the VM or its network needs root/Administrator, per network mode. */
  elevation: Readonly<Record<string, boolean>>;
  networkModes: readonly string[];
  ipDiscovery: Readonly<Record<string, IpDiscovery>>;
  /** Direct kernel boot (kernel + initrd beside the disk) is possible. */
  directKernelBoot: boolean;
}

export interface DriverInfo {
  name: string;
  displayName: string;
  platforms: readonly NodeJS.Platform[];
  features: DriverFeatures;
  /** Disk formats in order of preference. */
  diskFormats: readonly DiskFormat[];
  seedMedia: readonly 'iso'[];
}

export interface Endpoint {
  host: string;
  port: number;
}

export interface NetworkPlan {
  mode: string;
  mac: string;
  /** The VM's address: static, or learnt later ("dhcp"). */
  guestAddress: { kind: 'static'; cidr: string; gateway: string } | { kind: 'dhcp' } | { kind: 'user-mode' };
  dns: string[];
  /** Host-side endpoints when the VM is reached through port forwards. */
  forwards?: { ssh: Endpoint; apiServer: Endpoint };
  subnet?: string;
  gateway?: string;
}

export interface BootImage {
  format: DiskFormat;
  disk: string;
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
  network: NetworkPlan;
}

export interface Endpoints {
  ssh: Endpoint;
  apiServer: Endpoint;
  guestIp: string | undefined;
}

export interface DriverContext {
  profile: string;
  home: string;
  paths: ProfilePaths;
  /** Resolved settings (driver-scoped ones included: qemu-network, hyperv-switch, ...). */
  settings: Readonly<Record<string, unknown>>;
  state: StateStore;
  signal: AbortSignal;
  /** Progress lines for the user ("falling back to TCG: ..."). */
  report(message: string, level?: 'info' | 'warn'): void;
}

export interface StopOptions {
  /** How long a graceful ACPI shutdown may take before escalating. */
  timeoutMs: number;
}

export interface Driver {
  readonly info: DriverInfo;
  /** Whether the driver can run on this host at all, with the reason when not. */
  available(): Promise<{ ok: true } | { ok: false; reason: string }>;
  ensureNetwork(ctx: DriverContext): Promise<NetworkPlan>;
  create(ctx: DriverContext, spec: VmSpec): Promise<void>;
  start(ctx: DriverContext): Promise<void>;
  stop(ctx: DriverContext, options: StopOptions): Promise<void>;
  kill(ctx: DriverContext): Promise<void>;
  delete(ctx: DriverContext): Promise<void>;
  state(ctx: DriverContext): Promise<VmState>;
  endpoints(ctx: DriverContext): Promise<Endpoints>;
}
