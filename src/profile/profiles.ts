import { readdir } from 'node:fs/promises';
import { homePaths, profilePaths } from './paths.ts';
import { readConfigFile } from './config.ts';
import type { ConfigFile } from './config.ts';
import { readTextFile, unreadableReason } from './atomic.ts';
import { validateProfileName } from './names.ts';
import { stateProblem } from './state.ts';
import { isDevclusterError } from '../ui/errors.ts';

/** Why a profile's state file cannot be used; `profile list` shows the kind as its status. */
export interface StateFileProblem {
  kind: 'corrupt' | 'unreadable';
  /** The error ID a command that needs the state would raise. */
  id: string;
  message: string;
  /** Why, without the path, for a sentence that names the file itself: "permission denied", "not valid JSON (...)". */
  reason: string;
}

export interface ProfileSummary {
  name: string;
  config: ConfigFile;
  /** The state file as the last command left it; undefined before the first start or when it cannot be used. */
  state: Record<string, unknown> | undefined;
  /** Why the profile's config file could not be read, when it could not. */
  problem?: string;
  /** Set when state.json exists but cannot be read or is not a usable state. */
  stateProblem?: StateFileProblem;
}

/** Reads a state file for display: the state, or why it cannot be used (never throws for a bad file). */
export async function readStateForDisplay(path: string): Promise<{ state?: Record<string, unknown>; problem?: StateFileProblem }> {
  let text: string | undefined;
  try {
    text = await readTextFile(path);
  } catch (e) {
    if (!isDevclusterError(e)) throw e;
    return { problem: { kind: 'unreadable', id: e.id, message: e.message, reason: unreadableReason(e.cause ?? e) } };
  }
  if (text === undefined) return {};
  const why = stateProblem(text);
  if (why !== undefined) return { problem: { kind: 'corrupt', id: 'CONFIG_FILE_CORRUPT', message: `${path} is damaged: ${why}`, reason: why } };
  return { state: JSON.parse(text) as Record<string, unknown> };
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
    const { state, problem: stateFileProblem } = await readStateForDisplay(paths.state);
    const summary: ProfileSummary = { name, config: {}, state, ...(stateFileProblem === undefined ? {} : { stateProblem: stateFileProblem }) };
    try {
      summary.config = await readConfigFile(paths.config);
    } catch (e) {
      if (!isDevclusterError(e)) throw e;
      summary.problem = e.message;
    }
    out.push(summary);
  }
  return out;
}
