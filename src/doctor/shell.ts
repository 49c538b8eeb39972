import { quoteShellArg as shQuote } from '../host/posix-quote.ts';
import { readFile, realpath, stat } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { writeFileAtomic } from '../profile/atomic.ts';
import type { FixCommand, Shell } from './types.ts';
import { psString } from '../host/powershell.ts';

/**
 * Lines users add to their shell startup files (PATH, NO_PROXY), written once
 * per shell so every fix shows the exact text for the shell the user has.
 */

export type ProfileShell = 'bash' | 'zsh' | 'fish' | 'powershell';

/** The startup file a line goes in, relative to the user's home, for display and for --fix. */
export function startupFile(shell: ProfileShell, userHome: string): string {
  switch (shell) {
    case 'bash':
      return join(userHome, '.bashrc');
    case 'zsh':
      return join(userHome, '.zshrc');
    case 'fish':
      return join(userHome, '.config', 'fish', 'conf.d', 'devcluster.fish');
    case 'powershell':
      return join(userHome, 'Documents', 'PowerShell', 'Microsoft.PowerShell_profile.ps1');
  }
}

/** The user's login shell from $SHELL (Unix); PowerShell on Windows. */
export function userShell(env: NodeJS.ProcessEnv, platform: NodeJS.Platform): ProfileShell | undefined {
  if (platform === 'win32') return 'powershell';
  const name = basename(env['SHELL'] ?? '');
  if (name === 'bash' || name === 'zsh' || name === 'fish') return name;
  if (name === 'pwsh') return 'powershell';
  return undefined;
}

/** Quotes for sh-like shells only when needed, for display in fix commands. */
export { shQuote };

function dq(s: string): string {
  return `"${s.replace(/(["\\$`])/g, '\\$1')}"`;
}

/** The shells whose lines are shown on a platform. */
export function shellsFor(platform: NodeJS.Platform): ProfileShell[] {
  return platform === 'win32' ? ['powershell'] : ['bash', 'zsh', 'fish'];
}

/** Lines that put `dir` first on PATH, one per shell, with the file each goes in. */
export function pathLines(dir: string, userHome: string, platform: NodeJS.Platform): FixCommand[] {
  return shellsFor(platform).map((shell): FixCommand => {
    switch (shell) {
      case 'bash':
      case 'zsh':
        return { shell, run: `export PATH=${dq(dir)}:"$PATH"`, elevated: false, file: startupFile(shell, userHome) };
      case 'fish':
        return { shell, run: `fish_add_path --global --prepend ${shQuote(dir)}`, elevated: false, file: startupFile(shell, userHome) };
      case 'powershell':
        // Run once: the user PATH in the registry applies to every new terminal.
        return {
          shell,
          run: `[Environment]::SetEnvironmentVariable('Path', ${psString(`${dir};`)} + [Environment]::GetEnvironmentVariable('Path', 'User'), 'User')`,
          elevated: false,
        };
    }
  });
}

/** Lines that set a variable for every new shell (NO_PROXY and its lowercase twin). */
export function envLines(names: readonly string[], value: string, userHome: string, platform: NodeJS.Platform): FixCommand[] {
  const out: FixCommand[] = [];
  for (const shell of shellsFor(platform)) {
    switch (shell) {
      case 'bash':
      case 'zsh':
        out.push({ shell, run: `export ${names.map((n) => `${n}=${dq(value)}`).join(' ')}`, elevated: false, file: startupFile(shell, userHome) });
        break;
      case 'fish':
        out.push({ shell, run: names.map((n) => `set -gx ${n} ${shQuote(value)}`).join('; '), elevated: false, file: startupFile(shell, userHome) });
        break;
      case 'powershell':
        // Windows variables are case-insensitive: one name is enough.
        out.push({ shell, run: `[Environment]::SetEnvironmentVariable(${psString(names[0] ?? '')}, ${psString(value)}, 'User')`, elevated: false });
        break;
    }
  }
  return out;
}

const MARK = '# added by devcluster doctor';

/**
 * Adds a line to a startup file unless it is already there. The file is
 * rewritten atomically with its old content first.
 */
export async function addStartupLine(path: string, line: string): Promise<boolean> {
  // Dotfile managers symlink startup files: write where the link points.
  const file = await realpath(path).catch(() => path);
  let current = '';
  let mode = 0o644;
  try {
    current = await readFile(file, 'utf8');
    mode = (await stat(file)).mode & 0o777;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
  }
  if (current.split(/\r?\n/).includes(line)) return false;
  const sep = current === '' || current.endsWith('\n') ? '' : '\n';
  await writeFileAtomic(file, `${current}${sep}${MARK}\n${line}\n`, { mode });
  return true;
}

export function isProfileShell(s: Shell): s is ProfileShell {
  return s === 'bash' || s === 'zsh' || s === 'fish' || s === 'powershell';
}

/** The commands of a fix a user of this platform can run: Windows shells on Windows, the others elsewhere; guest commands always. */
export function commandsForPlatform(commands: readonly FixCommand[], platform: NodeJS.Platform): FixCommand[] {
  const windows = (c: FixCommand) => c.shell === 'powershell' || c.shell === 'cmd';
  return commands.filter((c) => c.target === 'guest' || (platform === 'win32' ? windows(c) : !windows(c)));
}
