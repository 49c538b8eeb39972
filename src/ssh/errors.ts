import { errorDef, registerErrors } from '../ui/errors.ts';

/**
 * The SSH layer's error IDs. Exit codes 81-87 tell a script which step of
 * reaching the guest failed: transport, login, commands, readiness, identity.
 */
export const SSH_ERRORS = {
  GUEST_SSH_BANNER_TIMEOUT: errorDef('guest', 81, 'No SSH server answered on the guest\'s SSH port in time (the VM did not boot far enough to start sshd, or its port forward is missing).'),
  GUEST_SSH_UNREACHABLE: errorDef('guest', 81, 'The SSH connection to the guest could not be opened or did not complete its handshake.'),
  GUEST_SSH_DISCONNECTED: errorDef('guest', 81, 'The SSH connection to the guest closed while devcluster was using it.'),
  GUEST_SSH_AUTH_FAILED: errorDef('guest', 82, 'The guest rejected the profile\'s SSH key (cloud-init did not install it, or the VM was created with another key).'),
  GUEST_SSH_COMMAND_TIMEOUT: errorDef('guest', 83, 'sshd answered, but a first command could not be run over SSH in time.'),
  GUEST_COMMAND_TIMEOUT: errorDef('guest', 83, 'A command devcluster ran in the guest did not finish within its time limit.'),
  GUEST_COMMAND_FAILED: errorDef('guest', 84, 'A command devcluster ran in the guest exited with an error.'),
  GUEST_READINESS_TIMEOUT: errorDef('guest', 85, 'The guest accepted SSH but did not report that provisioning (cloud-init) finished in time.'),
  GUEST_HOST_KEY_MISMATCH: errorDef('guest', 86, 'The SSH server presented a host key other than the one pinned for the profile; devcluster refused to connect.'),
  GUEST_FILE_TRANSFER_FAILED: errorDef('guest', 87, 'Copying a file to or from the guest over SFTP failed.'),
  SSH_KEY_INVALID: errorDef('program', 18, 'A key file in the profile\'s keys directory is not an unencrypted OpenSSH ed25519 key.'),
};

registerErrors(SSH_ERRORS);

/** A duration as messages show it: 800ms, 2.5s, 3m. */
export function formatDuration(ms: number): string {
  if (ms < 1000) return `${Math.round(ms)}ms`;
  if (ms < 120_000) return `${Math.round(ms / 100) / 10}s`;
  return `${Math.round(ms / 6000) / 10}m`;
}
