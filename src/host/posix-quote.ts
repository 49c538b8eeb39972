/**
 * Words for a POSIX shell: SSH sends a command as one string that the remote
 * login shell parses, and the doctor shows fix commands a user pastes.
 */

const SAFE = /^[A-Za-z0-9_@%+=:,./-]+$/;

/** One argument as a POSIX shell word: bare when safe, else single-quoted. */
export function quoteShellArg(arg: string): string {
  if (arg.includes('\0')) throw new Error('a command argument cannot contain a NUL byte');
  if (SAFE.test(arg)) return arg;
  return `'${arg.replace(/'/g, `'\\''`)}'`;
}

/** An argument array as one command line for a POSIX shell. */
export function quoteArgv(argv: readonly string[]): string {
  if (argv.length === 0) throw new Error('a command needs at least one word');
  return argv.map(quoteShellArg).join(' ');
}
