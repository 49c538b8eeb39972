import { statSync } from 'node:fs';
import { homedir } from 'node:os';
import { dirname, isAbsolute, join, resolve } from 'node:path';
import { DevclusterError, inputError } from '../ui/errors.ts';

/**
 * The on-disk layout of $DEVCLUSTER_HOME (shared/DESIGN.md section 5). Every
 * path devcluster writes is derived here, so nothing escapes the home.
 */
export interface HomePaths {
  readonly home: string;
  readonly globalConfig: string;
  readonly imageCache: string;
  readonly kubernetesCache: string;
  /** Go's module and build caches for `bundle build` (DEVCLUSTER_GO_CACHE overrides it). */
  readonly goCache: string;
  readonly bin: string;
  readonly profiles: string;
  readonly logs: string;
}

export function devclusterHome(env: NodeJS.ProcessEnv = process.env): string {
  const fromEnv = env['DEVCLUSTER_HOME'];
  if (fromEnv !== undefined && fromEnv !== '') return isAbsolute(fromEnv) ? fromEnv : resolve(fromEnv);
  return join(homedir(), '.devcluster');
}

function homeOrigin(env: NodeJS.ProcessEnv): string {
  const fromEnv = env['DEVCLUSTER_HOME'];
  return fromEnv !== undefined && fromEnv !== '' ? `DEVCLUSTER_HOME=${fromEnv}` : 'the default home';
}

const HOME_ACCEPTED = 'a directory, or a path that does not exist yet (devcluster creates it)';

/**
 * Checks, changing nothing, that the home can hold devcluster's files: it is
 * a directory, or it is missing and its nearest existing parent is one. Only
 * what cannot work is refused; a home that cannot be written is reported by
 * the write that fails (HOST_PERMISSION_DENIED), so read-only commands still
 * work on it.
 */
export function checkHome(home: string, env: NodeJS.ProcessEnv = process.env): void {
  const origin = homeOrigin(env);
  const fromEnv = env['DEVCLUSTER_HOME'] !== undefined && env['DEVCLUSTER_HOME'] !== '';
  let denied: string | undefined;
  for (let p = home; ; p = dirname(p)) {
    let isDir: boolean;
    try {
      isDir = statSync(p).isDirectory();
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      const atRoot = dirname(p) === p;
      // Missing, or below a file or a directory we may not enter: the parents say which.
      if (code === 'ENOENT' || code === 'ENOTDIR') {
        if (!atRoot) continue;
      } else if (code === 'EACCES' || code === 'EPERM') {
        denied ??= code;
        if (!atRoot) continue;
      }
      throw e;
    }
    if (!isDir) {
      const what = p === home ? `${home} is a file, not a directory` : `${p}, a part of its path, is a file, not a directory`;
      throw inputError('HOME_NOT_A_DIRECTORY', `devcluster home (${origin}): ${what}; accepted: ${HOME_ACCEPTED}`, {
        advice: fromEnv
          ? `Point DEVCLUSTER_HOME at another path, or unset it to use ${join(homedir(), '.devcluster')}.`
          : `Move ${p} out of the way, or set DEVCLUSTER_HOME to another path.`,
        details: { home, file: p, accepted: HOME_ACCEPTED },
      });
    }
    if (denied !== undefined) {
      throw new DevclusterError('HOST_PERMISSION_DENIED', `devcluster home ${home} (${origin}) cannot be reached: permission denied (${denied}): ${p} cannot be entered`, {
        advice: `Give your user access to ${p}, or point DEVCLUSTER_HOME at a directory you own.`,
        details: { home, path: p, errno: denied },
        input: true,
      });
    }
    return;
  }
}

export function homePaths(home: string = devclusterHome()): HomePaths {
  return {
    home,
    globalConfig: join(home, 'config.json'),
    imageCache: join(home, 'cache', 'images'),
    kubernetesCache: join(home, 'cache', 'kubernetes'),
    goCache: join(home, 'cache', 'go'),
    bin: join(home, 'bin'),
    profiles: join(home, 'profiles'),
    logs: join(home, 'logs'),
  };
}

export interface ProfilePaths {
  readonly dir: string;
  readonly config: string;
  readonly state: string;
  readonly lock: string;
  readonly keys: string;
  readonly pki: string;
  readonly seedIso: string;
  readonly disks: string;
  readonly logs: string;
  readonly serialLog: string;
  readonly knownHosts: string;
}

/** Callers must have validated the name (profile/names.ts) before calling. */
export function profilePaths(home: string, name: string): ProfilePaths {
  const dir = join(homePaths(home).profiles, name);
  return {
    dir,
    config: join(dir, 'config.json'),
    state: join(dir, 'state.json'),
    lock: join(dir, 'lock.json'),
    keys: join(dir, 'keys'),
    pki: join(dir, 'pki'),
    seedIso: join(dir, 'seed.iso'),
    disks: join(dir, 'disks'),
    logs: join(dir, 'logs'),
    serialLog: join(dir, 'logs', 'serial.log'),
    knownHosts: join(dir, 'keys', 'known_hosts'),
  };
}
