import { spawn } from 'node:child_process';
import { constants } from 'node:os';

/**
 * Runs a program in the foreground with the terminal (ssh, kubectl) and
 * resolves with the exit code a shell would report: 128 + the signal number
 * when it was killed. Ctrl-C reaches it through the terminal; `signal`
 * forwards devcluster's own interruption.
 */
export function runForeground(command: string, args: readonly string[], signal: AbortSignal): Promise<number> {
  return new Promise<number>((resolve, reject) => {
    const child = spawn(command, args, { stdio: 'inherit' });
    const forward = (): void => void child.kill('SIGTERM');
    signal.addEventListener('abort', forward, { once: true });
    child.on('error', (e) => reject(e));
    child.on('exit', (code, sig) => {
      signal.removeEventListener('abort', forward);
      resolve(code ?? (sig === null ? 255 : 128 + (constants.signals[sig] ?? 1)));
    });
  });
}
