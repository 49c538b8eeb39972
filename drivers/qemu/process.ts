import { readFile, rm } from 'node:fs/promises';
import { dirname } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { DevclusterError } from '../../src/ui/errors.ts';
import { logLine } from '../../src/ui/context.ts';
import { tail } from '../../src/host/exec.ts';
import { processAlive, provedOurs, spawnDetached, waitForExit } from '../../src/host/process.ts';
import { connectQmp } from './qmp.ts';
import type { QmpAddress, QmpClient } from './qmp.ts';
import './errors.ts';

export { processAlive, waitForExit };

/** The executable's file name: qemu-system-x86_64, qemu-system-aarch64(.exe). */
export const QEMU_PROGRAM = /^qemu-system-[a-z0-9_]+(\.exe)?$/i;

/**
 * The pid of the QEMU this profile started, or undefined. A pid file can
 * outlive its QEMU and the pid be reused: the process must be a QEMU whose
 * command line names this pid file and the profile directory, on every platform.
 */
export async function ourQemuPid(pidFile: string, profileDir: string = dirname(pidFile)): Promise<number | undefined> {
  const proof = await provedOurs({ pidFile, program: QEMU_PROGRAM, mustInclude: [pidFile, profileDir] });
  if (!proof.ours && proof.pid !== undefined) logLine('debug', `qemu: not ours: ${proof.reason}`);
  return proof.ours ? proof.pid : undefined;
}

export async function tryQmp(address: QmpAddress, timeoutMs = 3000): Promise<QmpClient | undefined> {
  try {
    return await connectQmp(address, timeoutMs);
  } catch {
    return undefined;
  }
}

/**
 * Starts QEMU detached (it must outlive devcluster) with its own output in a
 * log file, and returns once its monitor answers, or fails with QEMU's words.
 */
export async function launchQemu(options: {
  binary: string;
  args: string[];
  logFile: string;
  pidFile: string;
  qmp: QmpAddress;
  signal: AbortSignal;
  timeoutMs?: number;
  /** Named on QEMU's command line; defaults to the pid file's directory. */
  profileDir?: string;
}): Promise<number> {
  await rm(options.pidFile, { force: true });
  if ('path' in options.qmp) await rm(options.qmp.path, { force: true });
  const exitOf = spawnDetached(options.binary, options.args, options.logFile);
  const deadline = Date.now() + (options.timeoutMs ?? 30_000);
  while (Date.now() < deadline) {
    options.signal.throwIfAborted();
    const exited = exitOf();
    if (exited !== undefined) {
      const log = await readFile(options.logFile, 'utf8').catch(() => '');
      const last = tail(log, 5);
      throw new DevclusterError('QEMU_START_FAILED', `QEMU exited while starting (code ${exited.code ?? exited.signal}): ${last.split('\n').pop() ?? ''}`, {
        advice: `QEMU's own output is in ${options.logFile}.`,
        details: { qemuOutput: last },
      });
    }
    const client = await tryQmp(options.qmp, 1000);
    if (client !== undefined) {
      client.close();
      const proof = await provedOurs({ pidFile: options.pidFile, program: QEMU_PROGRAM, mustInclude: [options.pidFile, options.profileDir ?? dirname(options.pidFile)] });
      if (!proof.ours && proof.pid !== undefined && processAlive(proof.pid)) {
        throw new DevclusterError('QEMU_START_FAILED', `the process in ${options.pidFile} is not the QEMU just started: ${proof.reason}`);
      }
      if (proof.ours) {
        const pid = proof.pid;
        logLine('info', `qemu running as pid ${pid}`);
        return pid;
      }
    }
    await sleep(100);
  }
  throw new DevclusterError('QEMU_START_FAILED', 'QEMU did not open its monitor within 30s', { advice: `QEMU's own output is in ${options.logFile}.` });
}

