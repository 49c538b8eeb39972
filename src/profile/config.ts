import { readJsonFile, writeJsonAtomic } from './atomic.ts';
import { homePaths, profilePaths } from './paths.ts';
import { DEFAULT_PROFILE, validateProfileName } from './names.ts';
import { SETTINGS, envName, parseStored, requireSetting } from './settings.ts';
import type { SettingDefinition, SettingValue } from './settings.ts';
import { DevclusterError } from '../ui/errors.ts';

export type ConfigFile = Record<string, SettingValue>;

export type ValueSource = 'flag' | 'env' | 'profile' | 'global' | 'default';

export interface ResolvedSetting {
  key: string;
  value: SettingValue;
  source: ValueSource;
  /** The flag, variable or file the value came from. */
  origin: string;
}

export interface ResolvedConfig {
  profile: string;
  settings: Record<string, ResolvedSetting>;
}

/**
 * Reads a config file and checks every value as if it had been typed, so a
 * hand-edited file with a bad value is reported with its path and key.
 */
export async function readConfigFile(path: string): Promise<ConfigFile> {
  const raw = await readJsonFile(path, { corruptAdvice: 'Fix the file by hand, or remove it to return to the defaults.', input: true });
  if (raw === undefined) return {};
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) {
    throw new DevclusterError('CONFIG_FILE_CORRUPT', `${path} must hold a JSON object of settings`, { input: true });
  }
  const out: ConfigFile = {};
  for (const [key, value] of Object.entries(raw)) {
    const def = requireSettingIn(key, path);
    out[key] = parseStored(def, value, `${path}: ${key}`);
  }
  return out;
}

function requireSettingIn(key: string, path: string): SettingDefinition {
  try {
    return requireSetting(key);
  } catch (e) {
    if (e instanceof DevclusterError) {
      throw new DevclusterError('CONFIG_FILE_CORRUPT', `${path}: unknown key ${JSON.stringify(key)}`, { advice: e.advice ?? '', input: true });
    }
    throw e;
  }
}

export async function writeConfigFile(path: string, config: ConfigFile): Promise<void> {
  const sorted: ConfigFile = {};
  for (const key of Object.keys(config).sort()) sorted[key] = config[key] as SettingValue;
  await writeJsonAtomic(path, sorted);
}

export interface ResolveInput {
  home: string;
  /** Parsed or raw flag values by setting key; only keys the user typed. */
  flags?: Record<string, string | undefined>;
  /** The -p flag; undefined means "not given". */
  profileFlag?: string | undefined;
  env?: NodeJS.ProcessEnv;
}

/** Which profile a command acts on: -p > DEVCLUSTER_PROFILE > global `profile` > default. */
export async function resolveProfileName(input: ResolveInput, global?: ConfigFile): Promise<{ name: string; origin: string }> {
  const env = input.env ?? process.env;
  if (input.profileFlag !== undefined) return { name: validateProfileName(input.profileFlag), origin: '--profile' };
  const fromEnv = env['DEVCLUSTER_PROFILE'];
  if (fromEnv !== undefined && fromEnv !== '') return { name: validateProfileName(fromEnv), origin: 'DEVCLUSTER_PROFILE' };
  const g = global ?? (await readConfigFile(homePaths(input.home).globalConfig));
  const fromGlobal = g['profile'];
  if (typeof fromGlobal === 'string') return { name: fromGlobal, origin: homePaths(input.home).globalConfig };
  return { name: DEFAULT_PROFILE, origin: 'default' };
}

/** flags > DEVCLUSTER_* environment > profile config > global config > defaults. */
/** Every setting at its default: what a command that must work despite a bad config file (doctor, delete) falls back to. */
export function defaultConfig(profile: string): ResolvedConfig {
  const settings: ResolvedConfig['settings'] = {};
  for (const d of SETTINGS) settings[d.key] = { key: d.key, value: d.defaultValue, source: 'default', origin: 'default' };
  return { profile, settings };
}

export async function resolveConfig(input: ResolveInput): Promise<ResolvedConfig> {
  const env = input.env ?? process.env;
  const paths = homePaths(input.home);
  const global = await readConfigFile(paths.globalConfig);
  const { name: profile } = await resolveProfileName(input, global);
  const profileFile = profilePaths(input.home, profile).config;
  const local = await readConfigFile(profileFile);
  // A hand-edited profile file with a global-only key would otherwise be ignored without a word.
  for (const key of Object.keys(local)) {
    if (requireSetting(key).scope === 'global') {
      throw new DevclusterError('CONFIG_FILE_CORRUPT', `${profileFile}: ${key} is a global setting and has no effect in a profile's config`, {
        advice: `Remove "${key}" from ${profileFile}; set it with \`devcluster config set ${key} <value>\` (without -p).`,
        input: true,
      });
    }
  }
  const settings: Record<string, ResolvedSetting> = {};
  for (const def of SETTINGS) {
    const flag = input.flags?.[def.key];
    const envValue = env[envName(def.key)];
    let resolved: ResolvedSetting;
    if (flag !== undefined) {
      resolved = { key: def.key, value: def.parse(flag, `--${def.key}`), source: 'flag', origin: `--${def.key}` };
    } else if (envValue !== undefined && envValue !== '') {
      resolved = { key: def.key, value: def.parse(envValue, envName(def.key)), source: 'env', origin: envName(def.key) };
    } else if (def.key in local && def.scope === 'any') {
      resolved = { key: def.key, value: local[def.key] as SettingValue, source: 'profile', origin: profileFile };
    } else if (def.key in global) {
      resolved = { key: def.key, value: global[def.key] as SettingValue, source: 'global', origin: paths.globalConfig };
    } else {
      resolved = { key: def.key, value: def.defaultValue, source: 'default', origin: 'default' };
    }
    settings[def.key] = resolved;
  }
  return { profile, settings };
}

export function settingValue<T extends SettingValue>(config: ResolvedConfig, key: string): T {
  const s = config.settings[key];
  if (s === undefined) throw new Error(`setting ${key} was not resolved`);
  return s.value as T;
}

/** Every resolved setting's value by key: what a driver's HostContext carries. */
export function settingValues(config: ResolvedConfig): Record<string, unknown> {
  const values: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(config.settings)) values[k] = v.value;
  return values;
}
