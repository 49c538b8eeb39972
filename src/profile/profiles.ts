import { readdir } from 'node:fs/promises';
import { homePaths, profilePaths } from './paths.ts';
import { readConfigFile } from './config.ts';
import type { ConfigFile } from './config.ts';
import { readJsonIfExists } from './atomic.ts';
import { validateProfileName } from './names.ts';
import { isDevclusterError } from '../ui/errors.ts';

export interface ProfileSummary {
  name: string;
  config: ConfigFile;
  /** The state file as the last command left it; undefined before the first start. */
  state: Record<string, unknown> | undefined;
  /** Why the profile could not be read, when it could not. */
  problem?: string;
}

/** Profiles are the directories under profiles/ whose names are valid profile names. */
export async function listProfiles(home: string): Promise<ProfileSummary[]> {
  let names: string[];
  try {
    names = (await readdir(homePaths(home).profiles, { withFileTypes: true })).filter((d) => d.isDirectory()).map((d) => d.name);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw e;
  }
  const out: ProfileSummary[] = [];
  for (const name of names.sort()) {
    try {
      validateProfileName(name);
    } catch {
      continue;
    }
    const paths = profilePaths(home, name);
    try {
      const config = await readConfigFile(paths.config);
      const state = (await readJsonIfExists(paths.state)) as Record<string, unknown> | undefined;
      out.push({ name, config, state });
    } catch (e) {
      out.push({ name, config: {}, state: undefined, problem: isDevclusterError(e) || e instanceof Error ? e.message : String(e) });
    }
  }
  return out;
}
