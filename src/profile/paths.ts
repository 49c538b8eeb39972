import { homedir } from 'node:os';
import { isAbsolute, join, resolve } from 'node:path';

/**
 * The on-disk layout of $DEVCLUSTER_HOME (shared/DESIGN.md section 5). Every
 * path devcluster writes is derived here, so nothing escapes the home.
 */
export interface HomePaths {
  readonly home: string;
  readonly globalConfig: string;
  readonly imageCache: string;
  readonly kubernetesCache: string;
  readonly bin: string;
  readonly profiles: string;
  readonly logs: string;
}

export function devclusterHome(env: NodeJS.ProcessEnv = process.env): string {
  const fromEnv = env['DEVCLUSTER_HOME'];
  if (fromEnv !== undefined && fromEnv !== '') return isAbsolute(fromEnv) ? fromEnv : resolve(fromEnv);
  return join(homedir(), '.devcluster');
}

export function homePaths(home: string = devclusterHome()): HomePaths {
  return {
    home,
    globalConfig: join(home, 'config.json'),
    imageCache: join(home, 'cache', 'images'),
    kubernetesCache: join(home, 'cache', 'kubernetes'),
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
