import { access, constants, mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { run } from '../../src/host/exec.ts';
import type { Exec } from '../../src/host/process.ts';
import { hostBootId } from '../../src/host/boot-id.ts';
import { isDevclusterError } from '../../src/ui/errors.ts';
import { readJsonIfExists, writeJsonAtomic } from '../../src/profile/atomic.ts';
import type { Accel } from './command-line.ts';

/**
 * Which accelerator and CPU model QEMU gets, decided once per host boot by
 * starting QEMU for real, and shared by the driver (at start) and the doctor
 * (QEMU_ACCEL_UNAVAILABLE) through one cache file, so they never disagree.
 */

export type HardwareAccel = Exclude<Accel, 'tcg'>;

export interface AccelVerdict {
  /** For -accel. */
  accel: Accel;
  /** For -cpu: the model the probe verified with this accelerator (TCG: max). */
  cpu: string;
  reason: string;
  /** True when the hardware accelerator was wanted (auto) but TCG is used instead. */
  degraded: boolean;
  /** The hardware accelerator tested, when one was; absent for TCG by choice or a platform without one. */
  hardware?: {
    accel: HardwareAccel;
    usable: boolean;
    /** The probe ran soundly (its verdict is cached until the next boot). */
    definitive: boolean;
    fromCache: boolean;
  };
}

/** @deprecated the driver's former name for AccelVerdict. */
export type AccelChoice = AccelVerdict;

/** The hardware accelerator each host platform offers. */
export function nativeAccel(platform: NodeJS.Platform = process.platform): HardwareAccel | undefined {
  if (platform === 'linux') return 'kvm';
  if (platform === 'darwin') return 'hvf';
  if (platform === 'win32') return 'whpx';
  return undefined;
}

/** WHPX often refuses -cpu host; max is tried next. KVM and HVF pass the host CPU through. */
export function cpuCandidates(accel: Accel): string[] {
  if (accel === 'tcg') return ['max'];
  if (accel === 'whpx') return ['host', 'max'];
  return ['host'];
}

function machine(arch: string): string {
  return arch === 'arm64' ? 'virt' : 'q35';
}

/** A paused VM (-S) driven over QMP on stdin/stdout: no socket, no port, nothing left behind. */
export function pausedProbeArgs(accel: Accel, cpu: string, arch: string): string[] {
  return ['-accel', accel, '-cpu', cpu, '-machine', machine(arch), '-m', '64', '-S', '-nodefaults', '-display', 'none', '-no-user-config', '-qmp', 'stdio'];
}

export function pausedProbeInput(accel: Accel): string {
  const commands = [
    { execute: 'qmp_capabilities', id: 'caps' },
    { execute: 'query-status', id: 'status' },
    ...(accel === 'kvm' ? [{ execute: 'query-kvm', id: 'kvm' }] : []),
    { execute: 'quit', id: 'quit' },
  ];
  return commands.map((c) => `${JSON.stringify(c)}\n`).join('');
}

export interface ProbeRun {
  ok: boolean;
  detail: string;
  /** QEMU could not be run at all (not found, not executable): nothing was learnt. */
  spawnFailed?: boolean;
}

/** QEMU's own words for a failure: the first line that names an error, without the program prefix. */
export function qemuComplaint(stderr: string, fallback: string): string {
  const lines = stderr.split('\n').map((l) => l.trim()).filter((l) => l !== '' && !/warning:/i.test(l));
  const line = lines.find((l) => /error|failed|could not|not supported|HV_|WHPX|KVM|assert/i.test(l)) ?? lines.at(-1);
  return line === undefined ? fallback : line.replace(/^qemu-system-[\w.]+:\s*/, '').replace(/^error:\s*/i, '');
}

/** Reads the replies by id: the VM must exist paused (prelaunch) and, for KVM, report KVM enabled. */
export function interpretPausedProbe(accel: Accel, exitCode: number, stdout: string, stderr: string): ProbeRun {
  const replies = new Map<string, Record<string, unknown>>();
  for (const line of stdout.split('\n')) {
    try {
      const msg = JSON.parse(line) as Record<string, unknown>;
      if (typeof msg['id'] === 'string') replies.set(msg['id'], msg);
    } catch {
      // not a QMP line
    }
  }
  const status = (replies.get('status')?.['return'] as { status?: unknown } | undefined)?.status;
  if (typeof status !== 'string') return { ok: false, detail: qemuComplaint(stderr, `QEMU exited with ${exitCode} before its monitor answered`) };
  if (accel === 'kvm') {
    const kvm = replies.get('kvm')?.['return'] as { enabled?: unknown } | undefined;
    if (kvm?.enabled !== true) return { ok: false, detail: 'QEMU started without KVM enabled' };
  }
  return { ok: true, detail: `a paused VM started (${status}) and answered over QMP` };
}

export function bootProbeArgs(accel: Accel, cpu: string, arch: string, kernel: string, serialFile: string): string[] {
  const tty = arch === 'arm64' ? 'ttyAMA0' : 'ttyS0';
  return [
    '-accel', accel, '-cpu', cpu, '-machine', machine(arch), '-m', '256M', '-nodefaults', '-display', 'none', '-no-user-config', '-no-reboot',
    '-serial', `file:${serialFile}`, '-kernel', kernel, '-append', `console=${tty} panic=-1 root=/dev/devcluster-probe-none`,
  ];
}

/** The kernel ran far enough to look for its root device: the CPU, memory and interrupts work. */
export function bootReachedKernel(serial: string): boolean {
  return /Kernel panic|VFS: Unable to mount root/.test(serial);
}

const PAUSED_TIMEOUT_MS = 20_000;
const BOOT_TIMEOUT_MS = 30_000;

async function runPaused(exec: Exec, qemu: string, accel: Accel, cpu: string, arch: string): Promise<ProbeRun> {
  try {
    const r = await exec(qemu, pausedProbeArgs(accel, cpu, arch), { timeoutMs: PAUSED_TIMEOUT_MS, parse: true, input: pausedProbeInput(accel), okExitCodes: [1] });
    return interpretPausedProbe(accel, r.exitCode, r.stdout, r.stderr);
  } catch (e) {
    return failedRun(e, PAUSED_TIMEOUT_MS);
  }
}

async function runBoot(exec: Exec, qemu: string, accel: Accel, cpu: string, arch: string, kernel: string): Promise<ProbeRun> {
  const dir = await mkdtemp(join(tmpdir(), 'devcluster-accel-probe-'));
  const serial = join(dir, 'serial.log');
  try {
    let r;
    try {
      r = await exec(qemu, bootProbeArgs(accel, cpu, arch, kernel, serial), { timeoutMs: BOOT_TIMEOUT_MS, parse: true, okExitCodes: [1] });
    } catch (e) {
      return failedRun(e, BOOT_TIMEOUT_MS);
    }
    if (bootReachedKernel(await readFile(serial, 'utf8').catch(() => ''))) return { ok: true, detail: 'a test boot reached the kernel' };
    return { ok: false, detail: qemuComplaint(r.stderr, `QEMU exited with ${r.exitCode} before the kernel ran`) };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

function failedRun(e: unknown, timeoutMs: number): ProbeRun {
  if (isDevclusterError(e)) {
    if (e.id === 'HOST_COMMAND_TIMEOUT') return { ok: false, detail: `QEMU hung for ${timeoutMs / 1000}s (typical of nested virtualisation)` };
    if (e.id === 'HOST_COMMAND_FAILED') {
      // QEMU aborts (SIGABRT) when KVM refuses the host CPU model under nested virtualisation.
      const stderr = typeof e.details['stderrTail'] === 'string' ? e.details['stderrTail'] : '';
      return { ok: false, detail: qemuComplaint(stderr, e.message) };
    }
    return { ok: false, spawnFailed: true, detail: e.message };
  }
  return { ok: false, spawnFailed: true, detail: e instanceof Error ? e.message : String(e) };
}

interface ProbeResult {
  usable: boolean;
  cpu?: string;
  reason: string;
  definitive: boolean;
}

/**
 * Each CPU model in turn: a paused VM must start and answer, then (with a
 * kernel) a test boot must reach the kernel. When none works, the same probe
 * under TCG tells whether the failure is the accelerator's (TCG passes: a
 * definitive "unusable") or the probe's own (a bad option, a broken QEMU:
 * nothing learnt, nothing cached).
 */
async function probe(exec: Exec, qemu: string, accel: HardwareAccel, arch: string, kernel: string | undefined): Promise<ProbeResult> {
  const name = accel.toUpperCase();
  let failed: { kind: 'paused' | 'boot'; run: ProbeRun; cpu: string } | undefined;
  for (const cpu of cpuCandidates(accel)) {
    const paused = await runPaused(exec, qemu, accel, cpu, arch);
    if (paused.spawnFailed === true) return { usable: false, definitive: false, reason: `QEMU could not be run: ${paused.detail}` };
    if (!paused.ok) {
      failed = { kind: 'paused', run: paused, cpu };
      continue;
    }
    if (kernel === undefined) return { usable: true, cpu, definitive: true, reason: `${paused.detail} with ${name} and -cpu ${cpu} (no kernel to boot-test)` };
    const boot = await runBoot(exec, qemu, accel, cpu, arch, kernel);
    if (boot.ok) return { usable: true, cpu, definitive: true, reason: `${boot.detail} under ${name} with -cpu ${cpu}` };
    failed = { kind: 'boot', run: boot, cpu };
  }
  if (failed === undefined) return { usable: false, definitive: false, reason: 'no CPU model to try' };
  const control = failed.kind === 'paused' ? await runPaused(exec, qemu, 'tcg', 'max', arch) : await runBoot(exec, qemu, 'tcg', 'max', arch, kernel ?? '');
  const what = failed.kind === 'paused' ? `a paused VM with -cpu ${failed.cpu}` : `a test boot with -cpu ${failed.cpu}`;
  if (control.ok) return { usable: false, definitive: true, reason: `${what} failed under ${name}: ${failed.run.detail}` };
  return { usable: false, definitive: false, reason: `${what} failed under ${name} (${failed.run.detail}), and under TCG too (${control.detail}): the probe itself could not run` };
}

interface CacheEntry {
  usable: boolean;
  cpu?: string;
  reason: string;
  at: string;
}

interface CacheFile {
  bootId: string;
  entries: Record<string, CacheEntry>;
}

/** What the verdict depends on besides the boot: the QEMU binary (path, size, mtime) and the kernel. */
async function cacheKey(qemu: string, kernel: string | undefined, accel: HardwareAccel, arch: string): Promise<string | undefined> {
  try {
    const q = await stat(qemu);
    const k = kernel === undefined ? undefined : await stat(kernel);
    return JSON.stringify([accel, arch, qemu, q.size, q.mtimeMs, kernel ?? null, k?.size ?? null, k?.mtimeMs ?? null]);
  } catch {
    return undefined;
  }
}

async function readCache(file: string, bootId: string): Promise<CacheFile> {
  const raw = (await readJsonIfExists(file).catch(() => undefined)) as Partial<CacheFile> | undefined;
  // Entries of an earlier boot say nothing about this one.
  return raw?.bootId === bootId && raw.entries !== null && typeof raw.entries === 'object' ? { bootId, entries: raw.entries } : { bootId, entries: {} };
}

export interface VerdictOptions {
  /** The qemu-accel setting: auto, kvm, hvf, whpx or tcg. */
  setting: string;
  qemu: string;
  kernel: string | undefined;
  /** <home>/cache/qemu-accel.json */
  cacheFile: string;
  platform?: NodeJS.Platform;
  arch?: string;
  exec?: Exec;
  /** Tests pass a boot id; null means "unknown" (no caching). */
  bootId?: string | null;
  /** False for callers that must leave the disk alone (the doctor, also run as start's preflight): they read the cache but never write it. */
  writeCache?: boolean;
}

/**
 * The accelerator and CPU model for this host, QEMU binary and kernel. A
 * verdict is cached (until the next boot, or a new QEMU or kernel) only when
 * the probe ran soundly; /dev/kvm permissions are checked every time, as the
 * user may fix them at any moment.
 */
export async function acceleratorVerdict(options: VerdictOptions): Promise<AccelVerdict> {
  const platform = options.platform ?? process.platform;
  const arch = options.arch ?? process.arch;
  const exec = options.exec ?? run;
  if (options.setting === 'tcg') return { accel: 'tcg', cpu: 'max', reason: 'software emulation (TCG) set by qemu-accel', degraded: false };
  const forced = options.setting !== 'auto';
  const wanted = forced ? (options.setting as HardwareAccel) : nativeAccel(platform);
  if (wanted === undefined) return { accel: 'tcg', cpu: 'max', reason: `no hardware accelerator on ${platform}; using TCG software emulation (much slower)`, degraded: true };

  let result: ProbeResult | undefined;
  let fromCache = false;
  if (wanted === 'kvm') {
    try {
      await access('/dev/kvm', constants.R_OK | constants.W_OK);
    } catch (e) {
      result = { usable: false, definitive: false, reason: `/dev/kvm is not usable (${(e as NodeJS.ErrnoException).code ?? 'error'})` };
    }
  }
  if (result === undefined) {
    const bootId = options.bootId === undefined ? await hostBootId(platform, exec) : (options.bootId ?? undefined);
    const key = bootId === undefined ? undefined : await cacheKey(options.qemu, options.kernel, wanted, arch);
    const cache = bootId === undefined ? undefined : await readCache(options.cacheFile, bootId);
    const hit = key === undefined ? undefined : cache?.entries[key];
    if (hit !== undefined && typeof hit.usable === 'boolean' && typeof hit.reason === 'string') {
      result = { usable: hit.usable, ...(hit.cpu === undefined ? {} : { cpu: hit.cpu }), reason: hit.reason, definitive: true };
      fromCache = true;
    } else {
      result = await probe(exec, options.qemu, wanted, arch, options.kernel);
      if (result.definitive && key !== undefined && cache !== undefined && options.writeCache !== false) {
        cache.entries[key] = { usable: result.usable, ...(result.cpu === undefined ? {} : { cpu: result.cpu }), reason: result.reason, at: new Date().toISOString() };
        // A cache that cannot be written only costs a probe next time.
        await writeJsonAtomic(options.cacheFile, cache).catch(() => undefined);
      }
    }
  }
  const hardware = { accel: wanted, usable: result.usable, definitive: result.definitive, fromCache };
  const name = wanted.toUpperCase();
  if (result.usable) return { accel: wanted, cpu: result.cpu ?? cpuCandidates(wanted)[0] ?? 'host', reason: result.reason, degraded: false, hardware };
  if (forced) return { accel: wanted, cpu: cpuCandidates(wanted)[0] ?? 'host', reason: `${name} set by qemu-accel although it failed its probe: ${result.reason}`, degraded: false, hardware };
  return { accel: 'tcg', cpu: 'max', reason: `${name} unusable: ${result.reason}; using TCG software emulation (much slower)`, degraded: true, hardware };
}

