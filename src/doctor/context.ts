import { homedir } from 'node:os';
import { driverNamesForHelp } from '../../drivers/names.ts';
import { drivers } from '../../drivers/index.ts';
import type { HostContext } from '../../drivers/driver.ts';
import { run } from '../host/exec.ts';
import { hostFacts } from '../host/platform.ts';
import type { HostFacts } from '../host/platform.ts';
import { defaultConfig, resolveConfig, settingValues } from '../profile/config.ts';
import type { ResolvedConfig } from '../profile/config.ts';
import { DEFAULT_PROFILE, validateProfileName } from '../profile/names.ts';
import { homePaths, profilePaths } from '../profile/paths.ts';
import { readStateForDisplay } from '../profile/profiles.ts';
import { parseSizeMiB } from '../profile/units.ts';
import { inputError, isDevclusterError } from '../ui/errors.ts';
import { httpClusterAccessor, profileTlsFiles } from './cluster-http.ts';
import type { ClusterAccessor, ClusterState, DoctorContext, ExecFn, GuestAccessor, Thresholds, VmAccessor } from './types.ts';
import { driverVmAccessor, liveClusterState } from './vm.ts';

export const DEFAULT_THRESHOLDS: Thresholds = {
  minFreeDiskMiB: 10 * 1024,
  maxClockSkewSeconds: 2,
  certificateWarnDays: 30,
};

export interface DoctorContextOptions {
  home: string;
  env?: NodeJS.ProcessEnv;
  /** -p as typed. */
  profileFlag?: string | undefined;
  /** --driver as typed. */
  driverFlag?: string | undefined;
  host?: HostFacts;
  exec?: ExecFn;
  execElevated?: ExecFn;
  guest?: GuestAccessor;
  /** Defaults to HTTPS against state.json's apiServer when the cluster runs. */
  kube?: ClusterAccessor;
  /**
   * Settings already resolved by the caller (start's preflight): used as
   * they are, so a setting is resolved once and the doctor sees exactly
   * what the caller acts on. Without it the doctor resolves them itself.
   */
  config?: ResolvedConfig;
  /**
   * The profile's VM: by default through the driver state.json names;
   * null to go by state.json alone. Tests that stand in for a VM with real
   * servers pass their own.
   */
  vm?: VmAccessor | null;
  thresholds?: Partial<Thresholds>;
  now?: () => number;
}

/**
 * The driver the doctor checks for: --driver, else the profile's own, else
 * the driver setting, else what `start` would choose (the registry's
 * choose()); with none available, the most preferred one, so its checks say why.
 */
export async function resolveDoctorDriver(
  flag: string | undefined,
  recorded: string | undefined,
  configured: string,
  host: HostContext,
): Promise<{ name: string; source: 'flag' | 'profile' | 'config' | 'auto' }> {
  if (flag !== undefined) {
    const d = drivers.find(flag);
    if (d === undefined) {
      throw inputError('DRIVER_UNKNOWN', `--driver: unknown driver ${JSON.stringify(flag)}`, { advice: `Known drivers: ${driverNamesForHelp()}.` });
    }
    return { name: d.name, source: 'flag' };
  }
  if (recorded !== undefined) return { name: recorded, source: 'profile' };
  if (configured !== 'auto') return { name: configured, source: 'config' };
  try {
    return { name: (await drivers.choose('auto', host)).driver.info.name, source: 'auto' };
  } catch {
    return { name: drivers.preferred(host.platform)[0]?.name ?? 'qemu', source: 'auto' };
  }
}

function str(v: unknown): string | undefined {
  return typeof v === 'string' && v !== '' ? v : undefined;
}

/**
 * Reads the fields of profiles/<p>/state.json the doctor uses (see
 * src/profile/state.ts). The state file belongs to the lifecycle and is read
 * as `profile list` reads it (readStateForDisplay): missing optional fields
 * leave gaps, but a file that cannot be read or is not a usable state is
 * reported as `problem`, in the words the lifecycle would use.
 */
export async function readClusterState(statePath: string): Promise<ClusterState> {
  const { state: s, problem } = await readStateForDisplay(statePath);
  if (problem !== undefined) return { exists: true, running: false, state: 'unreadable', problem: problem.reason };
  if (s === undefined) return { exists: false, running: false };
  const obj = (v: unknown) => (typeof v === 'object' && v !== null ? v : {}) as Record<string, unknown>;
  const network = obj(s['network']);
  const created = obj(s['created']);
  const driverData = obj(s['driverData']);
  // readStateForDisplay vouches for a non-empty status.
  const state = String(s['status']).toLowerCase();
  const apiServer = str(s['apiServer']);
  const kubernetesVersion = str(s['kubernetesVersion']) ?? str(created['kubernetesVersion']);
  const subnet = str(s['subnet']) ?? str(network['subnet']) ?? str(driverData['subnet']);
  const guestIp = str(s['ip']) ?? str(s['guestIp']) ?? str(network['guestIp']);
  const driver = str(s['driver']);
  const kubernetes = typeof created['kubernetes'] === 'boolean' ? created['kubernetes'] : undefined;
  return {
    exists: true,
    running: state === 'running',
    state,
    ...(apiServer === undefined ? {} : { apiServer }),
    ...(kubernetesVersion === undefined ? {} : { kubernetesVersion }),
    ...(kubernetes === undefined ? {} : { kubernetes }),
    ...(subnet === undefined ? {} : { subnet }),
    ...(guestIp === undefined ? {} : { guestIp }),
    ...(driver === undefined ? {} : { driver }),
  };
}

/** Runs as root: directly when the process is root, else through sudo (-n when nobody can answer a prompt). */
export function elevatedExec(exec: ExecFn, platform: NodeJS.Platform, interactive: boolean): ExecFn {
  return (command, args, options) => {
    if (platform === 'win32' || process.getuid?.() === 0) return exec(command, args, options);
    return exec('sudo', [...(interactive ? [] : ['-n']), '--', command, ...args], options);
  };
}

export function thresholdsFromEnv(env: NodeJS.ProcessEnv): Partial<Thresholds> {
  const out: Partial<Thresholds> = {};
  // A knob for constrained machines and for tests that need a full disk for real.
  const disk = env['DEVCLUSTER_DOCTOR_MIN_FREE_DISK'];
  if (disk !== undefined && disk !== '') {
    const mib = parseSizeMiB(disk);
    if (mib === undefined) throw inputError('CONFIG_INVALID_VALUE', `DEVCLUSTER_DOCTOR_MIN_FREE_DISK: ${JSON.stringify(disk)} is not a size; accepted: e.g. 10g, 512m`);
    out.minFreeDiskMiB = mib;
  }
  return out;
}

export async function createDoctorContext(options: DoctorContextOptions): Promise<DoctorContext> {
  const env = options.env ?? process.env;
  const host = options.host ?? hostFacts();
  let config: ResolvedConfig;
  let configProblem: string | undefined;
  if (options.config !== undefined) {
    config = options.config;
  } else {
    try {
      config = await resolveConfig({ home: options.home, profileFlag: options.profileFlag, env });
    } catch (e) {
      // A bad config file is one of the things the doctor reports, not a reason to stop.
      if (!isDevclusterError(e) || e.id === 'PROFILE_INVALID_NAME') throw e;
      configProblem = e.message;
      const profile = options.profileFlag === undefined ? DEFAULT_PROFILE : validateProfileName(options.profileFlag);
      config = defaultConfig(profile);
    }
  }
  const pPaths = profilePaths(options.home, config.profile);
  const recorded = await readClusterState(pPaths.state);
  const settings = settingValues(config);
  const hostCtx = { home: options.home, settings, platform: host.platform, signal: new AbortController().signal };
  const driver = await resolveDoctorDriver(options.driverFlag, recorded.problem === undefined ? recorded.driver : undefined, String(config.settings['driver']?.value ?? 'auto'), hostCtx);
  const vm =
    options.vm !== undefined
      ? (options.vm ?? undefined)
      : recorded.exists && recorded.problem === undefined && recorded.driver !== undefined
        ? driverVmAccessor({ home: options.home, profile: config.profile, paths: pPaths, driver: recorded.driver, settings, platform: host.platform })
        : undefined;
  const { cluster, problem: vmProblem } = await liveClusterState(recorded, vm);
  const exec = options.exec ?? run;
  const userHome = env['HOME'] ?? env['USERPROFILE'] ?? homedir();
  const kube = options.kube ?? (cluster.running && cluster.apiServer !== undefined ? httpClusterAccessor(cluster.apiServer, profileTlsFiles(pPaths.pki)) : undefined);
  return {
    host,
    env,
    home: options.home,
    paths: homePaths(options.home),
    userHome,
    profile: config.profile,
    profilePaths: pPaths,
    config,
    ...(configProblem === undefined ? {} : { configProblem }),
    driver: driver.name,
    driverSource: driver.source,
    cluster,
    exec,
    execElevated: options.execElevated ?? elevatedExec(exec, host.platform, process.stdin.isTTY === true),
    ...(options.guest === undefined ? {} : { guest: options.guest }),
    ...(kube === undefined ? {} : { kube }),
    ...(vm === undefined ? {} : { vm }),
    ...(vmProblem === undefined ? {} : { vmProblem }),
    thresholds: { ...DEFAULT_THRESHOLDS, ...thresholdsFromEnv(env), ...options.thresholds },
    now: options.now ?? Date.now,
  };
}

/** The same context for another driver (start's preflight names its driver). */
export function withDriver(ctx: DoctorContext, driver: string): DoctorContext {
  return { ...ctx, driver, driverSource: 'flag' };
}

export function settingOf<T>(ctx: DoctorContext, key: string, fallback: T): T {
  const v = ctx.config.settings[key]?.value;
  return (v === undefined ? fallback : v) as T;
}
