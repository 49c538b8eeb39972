/**
 * A real OpenSSH server on 127.0.0.1 for the ssh-* integration tests: sshd in
 * the foreground with a throwaway config, the host key and authorized key
 * the test chooses. Debian package: openssh-server (/usr/sbin/sshd).
 */
import { sshdConfigText } from '../helpers/sshd-config.ts';
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import type { Server, Socket } from 'node:net';
import { tmpdir, userInfo } from 'node:os';
import { join } from 'node:path';
import { skipUnlessPresent } from '../helpers/prerequisite.ts';

export const SSHD = '/usr/sbin/sshd';
export const HOST = '127.0.0.1';

/** Why the sshd tests cannot run here, or undefined when they can; under CI a missing sshd throws instead. */
export function sshdMissing(): string | undefined {
  return skipUnlessPresent(existsSync(SSHD) ? false : `${SSHD} is missing: install the Debian package openssh-server`) || undefined;
}

export interface SshServer {
  readonly host: string;
  readonly port: number;
  /** The user the server lets in: whoever runs the tests. */
  readonly user: string;
  /** What sshd logged so far (-e: to stderr). */
  log(): string;
  stop(): Promise<void>;
}

export interface SshServerOptions {
  hostKeyPath: string;
  /** authorized_keys content. */
  authorizedKeys: string;
  /** Default: a free port. */
  port?: number;
}

const running = new Set<ChildProcess>();

// A crashed test run must not leave sshd behind.
process.on('exit', () => {
  for (const child of running) killGroup(child, 'SIGKILL');
});

export async function startSshd(options: SshServerOptions): Promise<SshServer> {
  const dir = await mkdtemp(join(tmpdir(), 'devcluster-sshd-'));
  const port = options.port ?? (await freePort());
  const user = userInfo().username;
  const authorizedKeysPath = join(dir, 'authorized_keys');
  await writeFile(authorizedKeysPath, options.authorizedKeys, { mode: 0o600 });
  const configPath = join(dir, 'sshd_config');
  await writeFile(configPath, sshdConfigText({ port, listen: HOST, hostKey: options.hostKeyPath, authorizedKeys: authorizedKeysPath, user, sftp: true }));
  // Running as root, sshd needs its privilege separation directory.
  if (process.getuid?.() === 0) mkdirSync('/run/sshd', { recursive: true, mode: 0o755 });

  const child = spawn(SSHD, ['-D', '-e', '-f', configPath], { stdio: ['ignore', 'ignore', 'pipe'], detached: true });
  running.add(child);
  let log = '';
  child.stderr?.setEncoding('utf8').on('data', (d: string) => (log += d));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));

  await new Promise<void>((resolve, reject) => {
    const onData = (): void => {
      if (log.includes(`Server listening on ${HOST} port ${port}`)) {
        child.stderr?.off('data', onData);
        child.off('exit', onExit);
        resolve();
      }
    };
    const onExit = (code: number | null): void => reject(new Error(`sshd exited (${code}) before listening:\n${log}`));
    child.stderr?.on('data', onData);
    child.once('exit', onExit);
  }).catch(async (e: unknown) => {
    running.delete(child);
    await rm(dir, { recursive: true, force: true });
    throw e;
  });

  return {
    host: HOST,
    port,
    user,
    log: () => log,
    async stop() {
      if (running.delete(child)) {
        killGroup(child, 'SIGTERM');
        const timer = setTimeout(() => killGroup(child, 'SIGKILL'), 3000);
        await exited;
        clearTimeout(timer);
        // Per-connection sshd children share the group; end any still alive.
        killGroup(child, 'SIGKILL');
      }
      await rm(dir, { recursive: true, force: true });
    },
  };
}

/** A quoted sshd_config value (paths may hold spaces). */
function killGroup(child: ChildProcess, signal: NodeJS.Signals): void {
  if (child.pid === undefined) return;
  try {
    process.kill(-child.pid, signal);
  } catch {
    // Already gone.
  }
}

export async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, HOST, resolve));
  const address = server.address();
  await new Promise<void>((resolve) => server.close(() => resolve()));
  if (address === null || typeof address === 'string') throw new Error('no port');
  return address.port;
}

/** A TCP listener that accepts connections and never says anything, like QEMU's slirp before sshd starts. */
export interface SilentListener {
  readonly port: number;
  /** Connections accepted so far. */
  accepted(): number;
  /** Resolves once `count` connections have been accepted. */
  waitForConnections(count: number): Promise<void>;
  close(): Promise<void>;
}

export async function startSilentListener(port = 0, greeting?: string): Promise<SilentListener> {
  const sockets = new Set<Socket>();
  let count = 0;
  const waiters: Array<{ count: number; resolve: () => void }> = [];
  const server: Server = createServer((socket) => {
    count++;
    sockets.add(socket);
    socket.on('error', () => undefined);
    socket.on('close', () => sockets.delete(socket));
    if (greeting !== undefined) socket.write(greeting);
    for (const w of waiters.filter((x) => x.count <= count)) {
      waiters.splice(waiters.indexOf(w), 1);
      w.resolve();
    }
  });
  await new Promise<void>((resolve) => server.listen(port, HOST, resolve));
  const address = server.address();
  if (address === null || typeof address === 'string') throw new Error('no port');
  return {
    port: address.port,
    accepted: () => count,
    waitForConnections: (n) => (count >= n ? Promise.resolve() : new Promise((resolve) => waiters.push({ count: n, resolve }))),
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}
