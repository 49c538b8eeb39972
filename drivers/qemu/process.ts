import { spawn, spawnSync } from 'node:child_process';
import { openSync, closeSync, readFileSync } from 'node:fs';
import { readFile, rm } from 'node:fs/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import { DevclusterError } from '../../src/ui/errors.ts';
import { logLine } from '../../src/ui/context.ts';
import { displayArg } from '../../src/ui/redact.ts';
import { tail } from '../../src/host/exec.ts';
import { connectQmp } from './qmp.ts';
import type { QmpAddress, QmpClient } from './qmp.ts';
import './errors.ts';

export async function readPid(pidFile: string): Promise<number | undefined> {
  const text = await readFile(pidFile, 'utf8').catch(() => '');
  const pid = Number(text.trim());
  return Number.isInteger(pid) && pid > 0 ? pid : undefined;
}

export function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * A pid file can outlive its process and the pid be reused: on Linux the
 * process must also be a QEMU whose command line names this pid file.
 */
export function isOurQemu(pid: number, pidFile: string): boolean {
  if (!processAlive(pid)) return false;
  if (process.platform === 'darwin') {
    const ps = spawnSync('ps', ['-o', 'command=', '-p', String(pid)], { encoding: 'utf8' });
    return ps.status === 0 && /qemu-system/.test(ps.stdout) && ps.stdout.includes(pidFile);
  }
  if (process.platform === 'win32') {
    const list = spawnSync('tasklist', ['/FI', `PID eq ${pid}`, '/FO', 'CSV', '/NH'], { encoding: 'utf8', windowsHide: true });
    return list.status === 0 && /qemu-system/i.test(list.stdout);
  }
  try {
    const argv = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
    return /qemu-system/.test(argv[0] ?? '') && argv.includes(pidFile);
  } catch {
    return false;
  }
}

export async function ourQemuPid(pidFile: string): Promise<number | undefined> {
  const pid = await readPid(pidFile);
  return pid !== undefined && isOurQemu(pid, pidFile) ? pid : undefined;
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
}): Promise<number> {
  await rm(options.pidFile, { force: true });
  if ('path' in options.qmp) await rm(options.qmp.path, { force: true });
  logLine('exec', `$ ${[options.binary, ...options.args].map(displayArg).join(' ')} (detached)`);
  const fd = openSync(options.logFile, 'a', 0o600);
  let exited: { code: number | null; signal: NodeJS.Signals | null } | undefined;
  try {
    const child = spawn(options.binary, options.args, { detached: true, stdio: ['ignore', fd, fd], windowsHide: true });
    child.on('exit', (code, signal) => {
      exited = { code, signal };
    });
    child.on('error', (e) => {
      exited = { code: -1, signal: null };
      logLine('error', `qemu failed to start: ${e.message}`);
    });
    child.unref();
  } finally {
    closeSync(fd);
  }
  const deadline = Date.now() + (options.timeoutMs ?? 30_000);
  while (Date.now() < deadline) {
    options.signal.throwIfAborted();
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
      const pid = await readPid(options.pidFile);
      if (pid !== undefined) {
        logLine('info', `qemu running as pid ${pid}`);
        return pid;
      }
    }
    await sleep(100);
  }
  throw new DevclusterError('QEMU_START_FAILED', 'QEMU did not open its monitor within 30s', { advice: `QEMU's own output is in ${options.logFile}.` });
}

export async function waitForExit(pid: number, timeoutMs: number, signal?: AbortSignal): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (!processAlive(pid)) return true;
    signal?.throwIfAborted();
    await sleep(200);
  }
  return !processAlive(pid);
}
