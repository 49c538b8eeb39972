import { mkdir } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { profilePaths } from '../profile/paths.ts';
import type { ProfilePaths } from '../profile/paths.ts';
import { StateStore } from '../profile/state.ts';
import type { ProfileState } from '../profile/state.ts';
import { DevclusterError } from '../ui/errors.ts';
import { resolveConfig } from '../profile/config.ts';
import type { ResolvedConfig } from '../profile/config.ts';
import { acquireProfileLock } from '../profile/lock.ts';
import type { ProfileLock } from '../profile/lock.ts';
import type { DriverContext } from '../../drivers/driver.ts';
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
}

export interface OpenProfile {
  name: string;
  home: string;
  paths: ProfilePaths;
  config: ResolvedConfig;
  state: StateStore;
  settings: Record<string, unknown>;
  lock: ProfileLock | undefined;
  driverContext(report?: DriverContext['report']): DriverContext;
  /** The state of a profile that must already exist; PROFILE_NOT_FOUND otherwise. */
  existingState(): ProfileState;
  release(): Promise<void>;
}

/** Resolves the profile, optionally locks it, and loads its state. */
export async function openProfile(options: LifecycleOptions, lock: boolean, o: { mustExist?: boolean } = {}): Promise<OpenProfile> {
  const config = await resolveConfig({ home: options.home, profileFlag: options.profileFlag, ...(options.flags === undefined ? {} : { flags: options.flags }) });
  const name = config.profile;
  const paths = profilePaths(options.home, name);
  if (o.mustExist === true && !existsSync(paths.dir)) {
    throw new DevclusterError('PROFILE_NOT_FOUND', `profile ${name} does not exist`, {
      advice: '`devcluster profile list` shows the profiles.',
      input: true,
    });
  }
  let held: ProfileLock | undefined;
  if (lock) {
    await mkdir(paths.dir, { recursive: true, mode: 0o700 });
    held = await acquireProfileLock(name, paths.lock, { command: options.command, wait: options.waitLock, signal: options.signal });
  }
  const state = new StateStore(paths.state);
  try {
    await state.load();
  } catch (e) {
    await held?.release();
    throw e;
  }
  const settings: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(config.settings)) settings[k] = v.value;
  return {
    name,
    home: options.home,
    paths,
    config,
    state,
    settings,
    lock: held,
    driverContext(report) {
      return {
        profile: name,
        home: options.home,
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
