import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { homePaths, profilePaths } from '../profile/paths.ts';
import { resolveProfileName } from '../profile/config.ts';
import { commandLog } from '../ui/context.ts';
import { inputError } from '../ui/errors.ts';
import { tail } from '../host/exec.ts';
import type { LifecycleOptions } from './profile-context.ts';

/** The newest command log that is not this run's own. */
export async function lastCommandLog(home: string): Promise<string | undefined> {
  const dir = homePaths(home).logs;
  const own = commandLog()?.path;
  const files = (await readdir(dir).catch(() => [] as string[])).filter((f) => f.endsWith('.log')).sort();
  const candidates = files.map((f) => join(dir, f)).filter((f) => f !== own);
  return candidates[candidates.length - 1];
}

export async function showLogs(options: LifecycleOptions, o: { lines: string; bundle: boolean }): Promise<void> {
  const n = Number(o.lines);
  if (!Number.isInteger(n) || n < 1 || n > 100_000) {
    throw inputError('USAGE_INVALID_ARGUMENT', `--length ${JSON.stringify(o.lines)} is not valid; accepted: a whole number of lines from 1 to 100000`);
  }
  const { name } = await resolveProfileName({ home: options.home, profileFlag: options.profileFlag });
  if (o.bundle) {
    const { createSupportBundle } = await import('../doctor/bundle.ts');
    const { doctorGuestAccessor } = await import('./doctor-guest.ts');
    // The guest's journals are included when it answers over SSH.
    const access = await doctorGuestAccessor({ ...options, profileFlag: name });
    let path: string;
    try {
      path = await createSupportBundle({ home: options.home, profile: name, signal: options.signal, ...(access.guest === undefined ? {} : { guest: access.guest }) });
    } finally {
      await access.guest?.close?.();
    }
    options.out.success(`Support bundle written: ${path}`);
    options.out.info('  Secrets, keys and proxy passwords are masked; look it over before you share it.');
    return;
  }
  const serial = profilePaths(options.home, name).serialLog;
  const serialText = await readFile(serial, 'utf8').catch(() => undefined);
  options.out.line(options.out.paint('bold', `==> serial console of ${name} (${serial}) <==`));
  options.out.line(serialText === undefined ? '(no serial log: the VM has not been started)' : tail(serialText, n));
  const last = await lastCommandLog(options.home);
  options.out.line('');
  options.out.line(options.out.paint('bold', `==> last command log (${last ?? 'none'}) <==`));
  if (last !== undefined) options.out.line(tail(await readFile(last, 'utf8'), n));
}
