import type { HostFacts } from '../host/platform.ts';
import type { RunOptions, RunResult } from '../host/exec.ts';
import type { ResolvedConfig } from '../profile/config.ts';
import type { HomePaths, ProfilePaths } from '../profile/paths.ts';

/** `error` means the check itself crashed or timed out: the machine's state is unknown. */
export type CheckStatus = 'pass' | 'warn' | 'fail' | 'skip' | 'error';

/** Printed in this order. */
export const CATEGORIES = ['host', 'hypervisor', 'network', 'guest', 'kubernetes', 'tools'] as const;
export type CheckCategory = (typeof CATEGORIES)[number];

export const CATEGORY_TITLES: Readonly<Record<CheckCategory, string>> = {
  host: 'Host',
  hypervisor: 'Hypervisor',
  network: 'Network',
  guest: 'Guest',
  kubernetes: 'Kubernetes',
  tools: 'Tools',
};

export type Shell = 'sh' | 'bash' | 'zsh' | 'fish' | 'powershell' | 'cmd';

export interface FixCommand {
  shell: Shell;
  /** The exact text to type or to add to `file`. */
  run: string;
  /** Needs root (sudo) or an Administrator shell. */
  elevated: boolean;
  /** When set, `run` is a line to add to this startup file rather than a command to type once. */
  file?: string;
  /** Where the command runs: on this machine (default) or inside the cluster's VM. */
  target?: 'host' | 'guest';
}

export type FixRequirement = 'reboot' | 'relogin' | 'new-shell';

export interface Fix {
  /** What to do, in prose that never looks like a command. */
  description: string;
  commands: FixCommand[];
  /** `doctor --fix` runs this after the user agreed; it must be idempotent. */
  apply?: (ctx: CheckContext) => Promise<void>;
  /** What apply does when it is narrower than the commands shown ("adds the bash line to ~/.bashrc"). */
  applyDescription?: string;
  /** The automatic apply needs root/Administrator. */
  elevated?: boolean;
  /** What must happen after applying before it takes effect. */
  requires?: FixRequirement[];
  /** Interrupts running work (restarts a service, moves a file aside). */
  disruptive?: boolean;
}

export interface Evidence {
  /** The command line as shown to a user (secrets redacted), or what was read ("read /etc/os-release"). */
  command: string;
  exitCode?: number;
  stdout?: string;
  stderr?: string;
  durationMs?: number;
  error?: string;
}

/** What a check's run() returns. */
export interface CheckOutcome {
  status: CheckStatus;
  /** One line, always shown. */
  summary: string;
  /** Shown with -v and for problems. */
  details?: string[];
  fix?: Fix;
  docs?: string;
  /** Upstream issues about the same problem, as owner/repo#N. */
  related?: string[];
}

export interface CheckResult extends CheckOutcome {
  id: string;
  title: string;
  category: CheckCategory;
  fatal: boolean;
  /** A warning hidden by `doctor.muted`. */
  muted: boolean;
  exitCode: number;
  evidence: Evidence[];
  durationMs: number;
  docs: string;
  related: string[];
  details: string[];
}

export type ExecFn = (command: string, args: readonly string[], options?: RunOptions) => Promise<RunResult>;

/** Commands in the cluster's VM over SSH with the profile's pinned key (provided by the ssh module). */
export interface GuestAccessor {
  /** For messages: user@host:port. */
  readonly target: string;
  exec(argv: readonly string[], options?: { timeoutMs?: number; signal?: AbortSignal }): Promise<{ stdout: string; stderr: string; exitCode: number }>;
  /** Closes the connection when the doctor is done. */
  close?(): void;
}

/** A node's Ready condition: Ready, NotReady (the condition is False), or Unknown (no answer, not registered, condition Unknown). */
export interface NodeReadiness {
  status: 'Ready' | 'NotReady' | 'Unknown';
  reason?: string;
}

/** The Kubernetes API of the profile's cluster, reached with the profile's CA and admin client certificate. */
export interface ClusterAccessor {
  /** GET /readyz. */
  readyz(options?: { signal?: AbortSignal; timeoutMs?: number }): Promise<{ status: number; body: string }>;
  /** gitVersion from GET /version, e.g. v1.31.2. */
  serverVersion(options?: { signal?: AbortSignal; timeoutMs?: number }): Promise<string>;
  /** The Ready condition of GET /api/v1/nodes/<name> (needs the client certificate). */
  node?(name: string, options?: { signal?: AbortSignal; timeoutMs?: number }): Promise<NodeReadiness>;
  /** The API server's serving certificate (PEM), read from the TLS handshake. */
  servingCertificate?(options?: { signal?: AbortSignal; timeoutMs?: number }): Promise<string>;
}

/** The accelerator a VM runs with: hardware (KVM, HVF, WHPX, Hyper-V) or software emulation (TCG). */
export interface VmAcceleration {
  accelerator: string;
  hardware: boolean;
  /** Why this one (a probe's verdict, a setting). */
  reason: string;
}

/** The profile's VM as its driver reports it now (drivers/driver.ts state() and details()). */
export interface VmAccessor {
  state(): Promise<string>;
  details(): Promise<{ acceleration?: VmAcceleration }>;
}

/** What the profile's state.json says about the cluster, corrected by the driver's view when it has one. */
export interface ClusterState {
  /** state.json exists. */
  exists: boolean;
  running: boolean;
  /** The raw state word (running, stopped, ...), when recorded. */
  state?: string;
  /** https://host:port */
  apiServer?: string;
  kubernetesVersion?: string;
  /** What state.json's `created.kubernetes` says: false for a VM started without Kubernetes. */
  kubernetes?: boolean;
  /** What state.json recorded when the driver found the VM in another state (QEMU died while "running"). */
  recordedState?: string;
  /** Why state.json cannot be used (unreadable, not JSON, truncated); `state` is then "unreadable". */
  problem?: string;
  subnet?: string;
  guestIp?: string;
  driver?: string;
}

export interface Thresholds {
  /** Below this much free space on $DEVCLUSTER_HOME's filesystem, HOST_DISK_LOW fails. */
  minFreeDiskMiB: number;
  /** Guest clock differences above this warn. */
  maxClockSkewSeconds: number;
  /** Certificates expiring within this many days warn. */
  certificateWarnDays: number;
}

export interface DoctorContext {
  readonly host: HostFacts;
  readonly env: NodeJS.ProcessEnv;
  /** $DEVCLUSTER_HOME */
  readonly home: string;
  readonly paths: HomePaths;
  /** The user's home directory (HOME, USERPROFILE). */
  readonly userHome: string;
  readonly profile: string;
  readonly profilePaths: ProfilePaths;
  readonly config: ResolvedConfig;
  /** Why the config files could not be read (defaults were used instead). */
  readonly configProblem?: string;
  readonly driver: string;
  readonly driverSource: 'flag' | 'profile' | 'config' | 'auto';
  readonly cluster: ClusterState;
  readonly exec: ExecFn;
  /** Runs a command as root: directly when already root, else through sudo. */
  readonly execElevated: ExecFn;
  readonly guest?: GuestAccessor;
  /** Why there is no guest access although the cluster should run. */
  readonly guestProblem?: string;
  readonly kube?: ClusterAccessor;
  /** The profile's VM through its driver, when the profile has one. */
  readonly vm?: VmAccessor;
  /** Why the driver could not report on the VM (the checks then go by state.json). */
  readonly vmProblem?: string;
  readonly thresholds: Thresholds;
  readonly now: () => number;
}

/** The context a check runs with: its own time limit, and its evidence collected. */
export interface CheckContext extends DoctorContext {
  readonly signal: AbortSignal;
  evidence(entry: Evidence): void;
  /** Shares one computation between the checks of a run (a parsed kubeconfig, the route table). */
  memo<T>(key: string, compute: (ctx: CheckContext) => Promise<T>): Promise<T>;
}

export interface Check {
  /** Stable; also the error ID and the key for `doctor.muted`. */
  id: string;
  title: string;
  category: CheckCategory;
  /** What it looks at, for --list. */
  looksAt: string;
  /** Empty: every platform. */
  platforms?: readonly NodeJS.Platform[];
  /** Empty: every driver. */
  drivers?: readonly string[];
  /** Checks that must pass or warn first; otherwise this one is skipped. */
  requires?: readonly string[];
  /** Part of `start`'s preflight for its driver. */
  fatal?: boolean;
  /** Exit code in the decade scheme when this check fails. */
  exitCode: number;
  timeoutMs?: number;
  /**
   * Finer applicability than platform/driver: why the check does not apply
   * here ("profile dev was created without Kubernetes"), or undefined when
   * it does. Checks that do not apply are left out of a full report and
   * skipped with this reason when named.
   */
  inapplicable?(ctx: DoctorContext): string | undefined;
  run(ctx: CheckContext): Promise<CheckOutcome>;
}

export interface DoctorSummary {
  pass: number;
  warn: number;
  fail: number;
  skip: number;
  error: number;
  muted: number;
  /** Problems (fail or unmuted warn) whose fix doctor --fix can apply. */
  fixable: number;
  exitCode: number;
}

export interface DoctorReport {
  schemaVersion: 1;
  devcluster: string;
  generatedAt: string;
  host: {
    platform: string;
    arch: string;
    release: string;
    osVersion: string;
    cpus: number;
    totalMemoryMiB: number;
    freeMemoryMiB: number;
  };
  profile: string;
  driver: { name: string; source: 'flag' | 'profile' | 'config' | 'auto' };
  checks: CheckResult[];
  summary: DoctorSummary;
}
