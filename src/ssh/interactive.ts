import { quoteArgv } from '../host/posix-quote.ts';

/**
 * The command line for the system OpenSSH client (`devcluster ssh`): it gives
 * the user a real terminal, and trusts exactly the profile's pinned host key.
 */

export interface SshCommandLineOptions {
  host: string;
  port: number;
  user: string;
  privateKeyPath: string;
  knownHostsPath: string;
  /**
   * The remote command. Like `ssh host a b`, the words are joined with spaces
   * and run by the remote shell, so `['ls', '|', 'wc']` pipes; set
   * quoteCommand to pass each word as exactly one argument instead.
   */
  command?: readonly string[];
  quoteCommand?: boolean;
  /** stdin and stdout are terminals: allow prompts and, without a command, allocate a TTY. */
  interactive?: boolean;
  /** Decides path spelling; defaults to this host's platform. */
  platform?: NodeJS.Platform;
}

export interface SshCommandLine {
  command: 'ssh';
  args: string[];
}

export function sshCommandLine(o: SshCommandLineOptions): SshCommandLine {
  const platform = o.platform ?? process.platform;
  const command = o.command ?? [];
  const args = [
    // The user's ~/.ssh/config (ProxyCommand, ControlMaster, other keys) must not change what we connect to.
    '-F', 'none',
    '-o', `IdentityFile=${sshConfigPath(o.privateKeyPath, platform)}`,
    '-o', 'IdentitiesOnly=yes',
    '-o', 'PreferredAuthentications=publickey',
    '-o', `UserKnownHostsFile=${sshConfigPath(o.knownHostsPath, platform)}`,
    '-o', 'StrictHostKeyChecking=yes',
    '-o', 'HostKeyAlgorithms=ssh-ed25519',
    '-o', 'UpdateHostKeys=no',
    '-o', 'CheckHostIP=no',
    '-o', 'ConnectTimeout=15',
    '-o', 'ServerAliveInterval=15',
    '-o', 'ServerAliveCountMax=4',
    '-o', 'LogLevel=ERROR',
    '-p', String(o.port),
    '-l', o.user,
  ];
  if (o.interactive !== true) args.push('-o', 'BatchMode=yes');
  if (o.interactive === true && command.length === 0) args.push('-t');
  // After "--" ssh reads no more options, so a remote command may start with "-".
  args.push('--', o.host);
  if (command.length > 0) {
    if (o.quoteCommand === true) args.push(quoteArgv(command));
    else args.push(...command);
  }
  return { command: 'ssh', args };
}

/**
 * A path as an ssh_config value. IdentityFile and UserKnownHostsFile expand
 * % tokens and split on spaces, so % is doubled and the value quoted
 * (OpenSSH reads \" and \\ inside quotes). Windows paths use forward slashes,
 * which Windows OpenSSH accepts and older releases parse without escapes.
 * The `-i` flag is avoided: it checks the unexpanded name, then expands it.
 */
export function sshConfigPath(path: string, platform: NodeJS.Platform = process.platform): string {
  const spelled = platform === 'win32' ? path.replace(/\\/g, '/') : path;
  return `"${spelled.replace(/%/g, '%%').replace(/[\\"]/g, (c) => `\\${c}`)}"`;
}
