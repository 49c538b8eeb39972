import { mkdir } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { profilePaths } from '../profile/paths.ts';
import type { ProfilePaths } from '../profile/paths.ts';
import { StateStore } from '../profile/state.ts';
import type { ProfileState } from '../profile/state.ts';
import { DevclusterError, isDevclusterError } from '../ui/errors.ts';
import { defaultConfig, resolveConfig, settingValues } from '../profile/config.ts';
import { validateProfileName } from '../profile/names.ts';
import type { ResolvedConfig } from '../profile/config.ts';
import { acquireProfileLock } from '../profile/lock.ts';
import type { ProfileLock } from '../profile/lock.ts';
import type { DriverContext } from '../../drivers/driver.ts';
import { drivers } from '../../drivers/index.ts';
import type { DriverRegistry } from '../../drivers/index.ts';
import type { Output } from '../ui/output.ts';
import { logLine } from '../ui/context.ts';

export interface LifecycleOptions {
  home: string;
  profileFlag: string | undefined;
  flags?: Record<string, string | undefined>;
  out: Output;
  signal: AbortSignal;
  waitLock: boolean;
  command: string;
  /** The drivers to use; this build's registry unless a test passes its own. */
  registry?: DriverRegistry;
}

export interface OpenProfile {
  name: string;
  home: string;
  paths: ProfilePaths;
  config: ResolvedConfig;
  state: StateStore;
  settings: Record<string, unknown>;
  readonly lock: ProfileLock | undefined;
  readonly registry: DriverRegistry;
  /** With tolerateDamagedState: why the state file could not be used. */
  readonly stateDamage: DevclusterError | undefined;
  /** Creates the profile directory and takes its lock, then reloads the state another command may have changed. */
  acquire(): Promise<void>;
  driverContext(report?: DriverContext['report']): DriverContext;
  /** The state of a profile that must already exist; PROFILE_NOT_FOUND otherwise. */
  existingState(): ProfileState;
  release(): Promise<void>;
}

/** Resolves the profile, optionally locks it, and loads its state. */
export async function openProfile(options: LifecycleOptions, lock: boolean, o: { mustExist?: boolean; tolerateDamagedState?: boolean } = {}): Promise<OpenProfile> {
  let config: ResolvedConfig;
  try {
    config = await resolveConfig({ home: options.home, profileFlag: options.profileFlag, ...(options.flags === undefined ? {} : { flags: options.flags }) });
  } catch (e) {
    // delete must work on a profile whose config file is damaged: its VM is described by the state, not the config.
    if (o.tolerateDamagedState !== true || !isDevclusterError(e) || e.id === 'PROFILE_INVALID_NAME' || options.profileFlag === undefined) throw e;
    options.out.warn(`${e.message}; going on with default settings`);
    config = defaultConfig(validateProfileName(options.profileFlag));
  }
  const name = config.profile;
  const paths = profilePaths(options.home, name);
  if (o.mustExist === true && !existsSync(paths.dir)) {
    throw new DevclusterError('PROFILE_NOT_FOUND', `profile ${name} does not exist`, {
      advice: '`devcluster profile list` shows the profiles.',
      input: true,
    });
  }
  let held: ProfileLock | undefined;
  const state = new StateStore(paths.state);
  let damage: DevclusterError | undefined;
  const load = async (): Promise<void> => {
    try {
      await state.load();
      damage = undefined;
    } catch (e) {
      if (o.tolerateDamagedState !== true || !isDevclusterError(e) || e.id !== 'CONFIG_FILE_CORRUPT') throw e;
      damage = e;
    }
  };
  const acquire = async (): Promise<void> => {
    if (held !== undefined) return;
    await mkdir(paths.dir, { recursive: true, mode: 0o700 });
    held = await acquireProfileLock(name, paths.lock, { command: options.command, wait: options.waitLock, signal: options.signal });
    try {
      await load();
    } catch (e) {
      await held.release();
      held = undefined;
      throw e;
    }
  };
  if (lock) await acquire();
  else await load();
  const settings = settingValues(config);
  return {
    name,
    home: options.home,
    paths,
    config,
    state,
    settings,
    get lock() {
      return held;
    },
    registry: options.registry ?? drivers,
    get stateDamage() {
      return damage;
    },
    acquire,
    driverContext(report) {
      return {
        profile: name,
        home: options.home,
        platform: process.platform,
        paths,
        settings,
        state,
        signal: options.signal,
        report:
          report ??
          ((message, level = 'info') => {
            logLine(level, message);
            if (level === 'warn') options.out.warn(message);
            else options.out.debug(message);
          }),
      };
    },
    existingState() {
      const s = state.state;
      if (s === undefined) {
        throw new DevclusterError('PROFILE_NOT_FOUND', `profile ${name} does not exist`, {
          advice: '`devcluster profile list` shows the profiles; `devcluster start --no-kubernetes` creates one.',
        });
      }
      return s;
    },
    async release() {
      await held?.release();
    },
  };
}
