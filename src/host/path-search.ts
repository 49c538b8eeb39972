import { access, constants } from 'node:fs/promises';
import { join, posix, win32 } from 'node:path';

export interface PathSearchOptions {
  /** Whose PATH (and PATHEXT); the process's by default. */
  env?: NodeJS.ProcessEnv;
  /** Decides the list separator, the name suffixes and the executable test; this host by default. */
  platform?: NodeJS.Platform;
  /** Searched after PATH: where installers put programs that are often not on it. */
  extraDirs?: readonly string[];
}

/** The directories of PATH in order (Windows spells the variable Path as often as PATH). */
export function pathDirs(env: NodeJS.ProcessEnv = process.env, platform: NodeJS.Platform = process.platform): string[] {
  const sep = platform === 'win32' ? win32.delimiter : posix.delimiter;
  return (env['PATH'] ?? env['Path'] ?? '').split(sep).filter((d) => d !== '');
}

/**
 * The program `name` would run as, without running anything: the first
 * PATH entry (then `extraDirs`) that holds it. On Windows each PATHEXT
 * suffix is tried and existence is enough (there is no execute bit); a name
 * that already ends in one of the suffixes is tried as it is.
 */
export async function findOnPath(name: string, options: PathSearchOptions = {}): Promise<string | undefined> {
  const env = options.env ?? process.env;
  const platform = options.platform ?? process.platform;
  const windows = platform === 'win32';
  const suffixes = windows ? (env['PATHEXT'] ?? '.COM;.EXE;.BAT;.CMD').split(';').filter((e) => e !== '').map((e) => e.toLowerCase()) : [];
  const names = windows && !suffixes.some((s) => name.toLowerCase().endsWith(s)) ? suffixes.map((s) => `${name}${s}`) : [name];
  const joiner = platform === process.platform ? join : windows ? win32.join : posix.join;
  for (const dir of [...pathDirs(env, platform), ...(options.extraDirs ?? [])]) {
    for (const n of names) {
      const candidate = joiner(dir, n);
      try {
        await access(candidate, windows ? constants.F_OK : constants.X_OK);
        return candidate;
      } catch {
        // not in this directory
      }
    }
  }
  return undefined;
}
