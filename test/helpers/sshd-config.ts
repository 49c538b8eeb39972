/**
 * The sshd_config of the test guests (the real-sshd test server and the fake
 * hypervisor's VMs): key-only login for one user, as the devcluster guest
 * image configures sshd, with paths quoted for sshd.
 */
export interface SshdConfig {
  port: number;
  listen: string;
  hostKey: string;
  authorizedKeys: string;
  user: string;
  /** The SFTP subsystem (node-ssh's file transfers). */
  sftp?: boolean;
}

function quoted(value: string): string {
  return `"${value.replace(/[\\"]/g, (c) => `\\${c}`)}"`;
}

export function sshdConfigText(c: SshdConfig): string {
  return [
    `Port ${c.port}`,
    `ListenAddress ${c.listen}`,
    `HostKey ${quoted(c.hostKey)}`,
    // sshd expands % tokens in this path.
    `AuthorizedKeysFile ${quoted(c.authorizedKeys.replace(/%/g, '%%'))}`,
    'PidFile none',
    'UsePAM no',
    'StrictModes no',
    'PasswordAuthentication no',
    'KbdInteractiveAuthentication no',
    'PubkeyAuthentication yes',
    'PermitRootLogin prohibit-password',
    `AllowUsers ${c.user}`,
    ...(c.sftp === true ? ['Subsystem sftp internal-sftp'] : []),
    'LogLevel VERBOSE',
    '',
  ].join('\n');
}
