import { access, constants, mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { run } from '../../src/host/exec.ts';
import { isDevclusterError } from '../../src/ui/errors.ts';
import { readJsonIfExists, writeJsonAtomic } from '../../src/profile/atomic.ts';
import type { Accel } from './command-line.ts';

export interface AccelChoice {
  accel: Accel;
  /** Why this accelerator: "KVM probe booted a kernel", "forced by --qemu-accel". */
  reason: string;
  /** True when the hardware accelerator was wanted but could not be used. */
  degraded: boolean;
}

/** The hardware accelerator each host platform offers. */
export function nativeAccel(platform: NodeJS.Platform = process.platform): Accel | undefined {
  if (platform === 'linux') return 'kvm';
  if (platform === 'darwin') return 'hvf';
  if (platform === 'win32') return 'whpx';
  return undefined;
}

const PROBE_TIMEOUT_MS = 20_000;

/**
 * /dev/kvm existing says little: under nested virtualisation it opens fine and
 * the guest then hangs or dies with "KVM internal error". So the probe boots
 * the image's own kernel with no root device and panic=-1: a working
 * accelerator reaches the panic and QEMU exits in a second or two.
 */
export async function probeKvm(qemu: string, kernel: string | undefined): Promise<{ ok: boolean; reason: string }> {
  try {
    await access('/dev/kvm', constants.R_OK | constants.W_OK);
  } catch (e) {
    return { ok: false, reason: `/dev/kvm is not usable (${(e as NodeJS.ErrnoException).code ?? 'error'})` };
  }
  const dir = await mkdtemp(join(tmpdir(), 'devcluster-kvm-probe-'));
  const serial = join(dir, 'serial.log');
  const arm = process.arch === 'arm64';
  const args = ['-accel', 'kvm', '-machine', arm ? 'virt' : 'q35', '-cpu', 'host', '-m', '256M', '-nodefaults', '-display', 'none', '-no-reboot', '-serial', `file:${serial}`];
  if (kernel !== undefined) args.push('-kernel', kernel, '-append', `console=${arm ? 'ttyAMA0' : 'ttyS0'} panic=-1 root=/dev/devcluster-probe-none`);
  else args.push('-S', '-qmp', 'none');
  try {
    if (kernel === undefined) {
      // Without a kernel only KVM's initialisation can be tried.
      const r = await run(qemu, [...args, '-daemonize', '-pidfile', join(dir, 'pid')], { timeoutMs: 10_000, parse: true, okExitCodes: [1] });
      const pid = Number((await readFile(join(dir, 'pid'), 'utf8').catch(() => '')).trim());
      if (pid > 0) process.kill(pid, 'SIGKILL');
      return r.exitCode === 0 ? { ok: true, reason: 'KVM initialised (no kernel to boot-test)' } : { ok: false, reason: r.stderr.trim().split('\n').pop() ?? 'qemu failed' };
    }
    const r = await run(qemu, args, { timeoutMs: PROBE_TIMEOUT_MS, parse: true, okExitCodes: [1] });
    const console = await readFile(serial, 'utf8').catch(() => '');
    if (/Kernel panic|VFS: Unable to mount root/.test(console)) return { ok: true, reason: 'a test boot under KVM reached the kernel' };
    const why = /KVM internal error|emulation failure/.exec(r.stderr)?.[0] ?? (r.stderr.trim().split('\n').pop() || `qemu exited ${r.exitCode} before the kernel ran`);
    return { ok: false, reason: `a test boot under KVM failed: ${why}` };
  } catch (e) {
    if (isDevclusterError(e) && e.id === 'HOST_COMMAND_TIMEOUT') {
      return { ok: false, reason: `a test boot under KVM hung for ${PROBE_TIMEOUT_MS / 1000}s (typical of nested virtualisation)` };
    }
    return { ok: false, reason: isDevclusterError(e) || e instanceof Error ? e.message : String(e) };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

interface ProbeCache {
  [key: string]: { ok: boolean; reason: string; at: string };
}

const CACHE_TTL_MS = 24 * 3600 * 1000;

/**
 * Chooses the accelerator: the setting when forced, else the platform's
 * hardware accelerator if its probe passes (cached a day per QEMU + kernel),
 * else TCG with the reason.
 */
export async function chooseAccel(options: {
  setting: string;
  qemu: string;
  kernel: string | undefined;
  cacheFile: string;
  platform?: NodeJS.Platform;
}): Promise<AccelChoice> {
  const platform = options.platform ?? process.platform;
  if (options.setting !== 'auto') return { accel: options.setting as Accel, reason: 'set by qemu-accel', degraded: false };
  const native = nativeAccel(platform);
  if (native === undefined) return { accel: 'tcg', reason: `no hardware accelerator on ${platform}`, degraded: true };
  if (native !== 'kvm') return { accel: native, reason: `${native.toUpperCase()} is the accelerator of ${platform}`, degraded: false };
  const key = `${options.qemu}|${options.kernel ?? 'no-kernel'}`;
  const cache = ((await readJsonIfExists(options.cacheFile).catch(() => undefined)) ?? {}) as ProbeCache;
  let result = cache[key];
  if (result === undefined || Date.now() - Date.parse(result.at) > CACHE_TTL_MS) {
    const probed = await probeKvm(options.qemu, options.kernel);
    result = { ...probed, at: new Date().toISOString() };
    // A /dev/kvm permission problem is fixed by the user at any moment: not cached.
    if (!/^\/dev\/kvm is not usable/.test(probed.reason)) {
      cache[key] = result;
      await writeJsonAtomic(options.cacheFile, cache).catch(() => undefined);
    }
  }
  return result.ok
    ? { accel: 'kvm', reason: result.reason, degraded: false }
    : { accel: 'tcg', reason: `KVM unusable: ${result.reason}; using TCG software emulation (much slower)`, degraded: true };
}
