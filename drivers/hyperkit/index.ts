import { randomUUID } from 'node:crypto';
import { constants as fsConstants } from 'node:fs';
import { copyFile, mkdir, readFile, rename, rm, stat, truncate } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Availability, CrashReport, Driver, DriverContext, GuestAddress, NetworkPlan, StopOptions, VmDetails, VmSpec, VmState } from '../driver.ts';
import { driverDataStore } from '../driver-data.ts';
import { ANY_EXIT_CODE, run, tail } from '../../src/host/exec.ts';
import { processAlive, processCommandLine, provedOurs, readPidFile, spawnDetached, waitForExit } from '../../src/host/process.ts';
import { logLine } from '../../src/ui/context.ts';
import { DevclusterError } from '../../src/ui/errors.ts';
import { buildHyperkitArgs, kernelCmdline, macQueryArgs, parseMacReport } from './command-line.ts';
import { findHyperkit, HYPERKIT_PROGRAM, MACOS_HOST, parseTranslated, sudoersLine } from './host.ts';
import type { HyperkitHost } from './host.ts';
import { waitForLease } from './lease-wait.ts';
import './errors.ts';

/** What the HyperKit driver keeps in the profile's state between commands. */
interface HyperkitData {
  uuid?: string;
  /** The MAC vmnet derives from the UUID, learnt with `hyperkit -M` at create. */
  mac?: string;
  vm?: { cpus: number; memoryMiB: number; disk: string; isos: string[]; kernel: string; initrd: string; cmdline: string };
  guestIp?: string;
  startedAt?: string;
}

const NETWORK_MODE = 'vmnet-shared';

/** The last lines of a log; the console ring is NUL-padded to its full size, so NULs go. */
async function logTail(path: string, lines: number): Promise<string> {
  return tail((await readFile(path, 'latin1').catch(() => '')).replaceAll('\0', ''), lines);
}

const hyperkitData = driverDataStore<HyperkitData>('hyperkit', () => ({}));
const data = hyperkitData.get;
const saveData = hyperkitData.update;

function files(ctx: DriverContext) {
  return {
    disk: join(ctx.paths.disks, 'disk.raw'),
    pidFile: join(ctx.paths.dir, 'hyperkit.pid'),
    tty: join(ctx.paths.dir, 'tty'),
    log: join(ctx.paths.logs, 'hyperkit.log'),
    // HyperKit keeps the console in a 64 KiB ring it truncates at each start, not in an appended log.
    consoleRing: join(ctx.paths.logs, 'console-ring'),
  };
}

/**
 * The driver over one Mac (or, in tests, its doubles). vmnet needs root, so
 * hyperkit runs through `sudo -n` (a sudoers line, never a setuid binary);
 * the VM's address comes from bootpd's leases for the MAC vmnet derives
 * from the VM's stored UUID, which keeps it across restarts.
 */
export function createHyperkitDriver(host: HyperkitHost): Driver {
  async function binary(ctx: { settings: Readonly<Record<string, unknown>> }): Promise<string> {
    const setting = String(ctx.settings['hyperkit-path'] ?? 'auto');
    const found = await findHyperkit(setting, process.env, host);
    if (found === undefined) {
      throw new DevclusterError('HYPERKIT_NOT_FOUND', setting === 'auto' ? 'hyperkit was not found on PATH, in /usr/local/bin or in Docker Desktop' : `hyperkit-path ${setting} is not an executable file`, {
        advice: 'Homebrew disabled its hyperkit formula in 2025: point --hyperkit-path at a hyperkit you have, or use --driver=qemu (HVF), the recommended driver on macOS.',
      });
    }
    return found;
  }

  /** Runs a command as root without a prompt; a refusal names the sudoers line that allows it. */
  async function asRoot(ctx: { settings: Readonly<Record<string, unknown>> }, argv: readonly string[], timeoutMs = 30_000) {
    const r = await run(host.sudo, ['-n', ...argv], { timeoutMs, parse: true, okExitCodes: ANY_EXIT_CODE });
    if (r.exitCode !== 0 && /password is required|a terminal is required|not allowed to execute/i.test(r.stderr)) {
      throw new DevclusterError('HYPERKIT_SUDO_REQUIRED', `sudo -n refused to run ${argv[0] ?? ''}: ${tail(r.stderr, 1)}`, {
        advice: `Allow it without a password (sudo visudo -f /etc/sudoers.d/devcluster-hyperkit):\n    ${sudoersLine(process.env['USER'] ?? '<you>', await binary(ctx), host)}\n    \`devcluster doctor --driver hyperkit\` checks it.`,
      });
    }
    return r;
  }

  async function ourPid(ctx: DriverContext): Promise<number | undefined> {
    const f = files(ctx);
    const proof = await provedOurs({ pidFile: f.pidFile, program: HYPERKIT_PROGRAM, mustInclude: [f.pidFile, ctx.paths.dir] });
    if (!proof.ours && proof.pid !== undefined) logLine('debug', `hyperkit: not ours: ${proof.reason}`);
    return proof.ours ? proof.pid : undefined;
  }

  /** hyperkit runs as root: only root can signal it. */
  async function signalRoot(ctx: DriverContext, pid: number, sig: 'TERM' | 'KILL'): Promise<void> {
    const r = await asRoot(ctx, [host.kill, `-${sig}`, String(pid)]);
    if (r.exitCode !== 0 && processAlive(pid)) throw new DevclusterError('HYPERKIT_STOP_TIMEOUT', `kill -${sig} ${pid} failed: ${tail(r.stderr, 1)}`);
  }

  /**
   * Called when the pid file proved nothing: a live process whose command
   * line cannot be read may still be this VM's hyperkit, and booting a
   * second VM on the same disk would corrupt it.
   */
  async function refuseUnknownOwner(pidFile: string): Promise<void> {
    const pid = await readPidFile(pidFile);
    if (pid === undefined || !processAlive(pid) || (await processCommandLine(pid)) !== undefined) return;
    throw new DevclusterError('HYPERKIT_START_FAILED', `${pidFile} names process ${pid}, which runs but whose command line cannot be read, so it may be this VM's hyperkit; starting another would share its disk`, {
      advice: `If it is this VM, stop it: sudo kill ${pid}. If it is not, remove ${pidFile}. Then start again.`,
    });
  }

  const driver: Driver = {
    info: {
      name: 'hyperkit',
      displayName: 'HyperKit',
      platforms: ['darwin'],
      features: {
        networkModes: {
          [NETWORK_MODE]: { description: 'vmnet shared mode (NAT, 192.168.64.0/24 by default); the address from macOS\'s DHCP server; root through sudo', address: 'dhcp-leases', elevation: { create: 'sudo', start: 'sudo', stop: 'sudo', delete: 'sudo' } },
        },
        macKnown: 'after-create',
        directKernelBoot: true,
        diskFormats: ['raw'],
        registersBaseMedia: false,
      },
    },

    async available(ctx): Promise<Availability> {
      if (ctx.platform !== 'darwin') return { status: 'unavailable', reason: `HyperKit runs only on macOS; this is ${ctx.platform}`, fix: 'Use the QEMU driver: --driver=qemu.' };
      // An x64 Node under Rosetta 2 reports x64 on Apple silicon; the kernel tells the truth.
      const translated = await run('sysctl', ['sysctl.proc_translated'], { timeoutMs: 5000, parse: true, okExitCodes: ANY_EXIT_CODE }).then((r) => parseTranslated(r.stdout), () => undefined);
      if (host.arch !== 'x64' || translated === true) return { status: 'unavailable', reason: 'HyperKit runs only on Intel Macs; this Mac has Apple silicon', fix: 'Use --driver=qemu, which runs on HVF here.' };
      const path = await findHyperkit(String(ctx.settings['hyperkit-path'] ?? 'auto'), process.env, host);
      if (path === undefined) return { status: 'unavailable', reason: 'hyperkit is not installed (Homebrew disabled its formula in 2025)', fix: 'Use --driver=qemu (recommended on macOS), or set --hyperkit-path to a hyperkit you have.' };
      const probe = await run(host.sudo, ['-n', path, '-v'], { timeoutMs: 10_000, parse: true, okExitCodes: ANY_EXIT_CODE });
      if (probe.exitCode !== 0) {
        return { status: 'needs-elevation', elevation: 'sudo', reason: `vmnet needs root and \`sudo -n ${path}\` asks for a password; add: ${sudoersLine(process.env['USER'] ?? '<you>', path, host)}` };
      }
      return { status: 'available', detail: path };
    },

    async ensureNetwork(): Promise<NetworkPlan> {
      // vmnet's shared network exists on every Mac and is made by macOS when the first VM starts: nothing to create.
      return { mode: NETWORK_MODE, guestAddress: { kind: 'dhcp' }, dns: [] };
    },

    async create(ctx, spec: VmSpec) {
      const f = files(ctx);
      const { kernel, initrd } = spec.image;
      if (spec.image.format !== 'raw' || kernel === undefined || initrd === undefined) {
        throw new DevclusterError('HYPERKIT_IMAGE_UNSUITABLE', `HyperKit boots a raw disk with its own kernel and initrd; the image gives ${spec.image.format}${kernel === undefined ? ' without a kernel' : ''}`, {
          advice: 'Use --image photon-5 (it has a raw disk, a kernel and an initrd), or --driver=qemu.',
          input: true,
        });
      }
      const hyperkit = await binary(ctx);
      await mkdir(ctx.paths.disks, { recursive: true });
      await mkdir(ctx.paths.logs, { recursive: true });
      if (!(await stat(f.disk).then(() => true, () => false))) {
        const base = (await stat(spec.image.disk)).size;
        const wanted = spec.diskMiB * 1024 * 1024;
        if (wanted < base) {
          throw new DevclusterError('HYPERKIT_DISK_TOO_SMALL', `disk-size ${spec.diskMiB}MiB is smaller than the image (${Math.ceil(base / 1048576)}MiB)`, {
            advice: `Use --disk-size ${Math.ceil(base / 1073741824)}g or more.`,
            input: true,
          });
        }
        await ctx.state.record('file', f.disk);
        const creating = `${f.disk}.creating`;
        await rm(creating, { force: true });
        // A raw disk has no backing file: an APFS clone shares the base's blocks until the guest writes them.
        try {
          await copyFile(spec.image.disk, creating, fsConstants.COPYFILE_FICLONE_FORCE);
        } catch {
          ctx.report(`this file system cannot clone files (APFS can): copying the ${Math.round(base / 1048576)} MiB base image instead`, 'warn');
          await copyFile(spec.image.disk, creating);
        }
        await truncate(creating, wanted);
        await rename(creating, f.disk);
      }
      const uuid = data(ctx).uuid ?? randomUUID();
      await saveData(ctx, (d) => {
        d.uuid = uuid;
      });
      if (data(ctx).mac === undefined) {
        const r = await asRoot(ctx, [hyperkit, ...macQueryArgs(uuid, kernel, initrd)]);
        const mac = parseMacReport(r.stdout);
        if (mac === undefined) {
          throw new DevclusterError('HYPERKIT_MAC_UNKNOWN', `hyperkit -M printed no MAC address (exit ${r.exitCode}): ${tail(`${r.stdout}${r.stderr}`, 1)}`, {
            advice: 'vmnet may be unavailable: run `devcluster doctor --driver hyperkit`.',
          });
        }
        await saveData(ctx, (d) => {
          d.mac = mac;
        });
      }
      await saveData(ctx, (d) => {
        d.vm = { cpus: spec.cpus, memoryMiB: spec.memoryMiB, disk: f.disk, isos: [spec.seedIso, ...spec.dataIsos], kernel, initrd, cmdline: kernelCmdline(spec.image.kernelCmdline) };
      });
    },

    async start(ctx) {
      const d = data(ctx);
      if (d.vm === undefined || d.uuid === undefined) throw new Error('hyperkit: start before create');
      if ((await ourPid(ctx)) !== undefined) return;
      const f = files(ctx);
      await refuseUnknownOwner(f.pidFile);
      const hyperkit = await binary(ctx);
      const args = buildHyperkitArgs({ ...d.vm, uuid: d.uuid, pidFile: f.pidFile, tty: f.tty, consoleRing: f.consoleRing });
      await rm(f.pidFile, { force: true });
      await rm(f.tty, { force: true });
      await ctx.state.record('process', f.pidFile);
      const exitOf = spawnDetached(host.sudo, ['-n', hyperkit, ...args], f.log);
      await saveData(ctx, (x) => {
        x.startedAt = new Date().toISOString();
      });
      const deadline = Date.now() + 30_000;
      while (Date.now() < deadline) {
        ctx.signal.throwIfAborted();
        // hyperkit writes its pid file before it sets up its devices, vmnet first; the tty comes after them.
        const pid = await ourPid(ctx);
        if (pid !== undefined && (await stat(f.tty).then(() => true, () => false))) {
          ctx.report(`hyperkit pid ${pid}`);
          return;
        }
        const exited = exitOf();
        if (exited !== undefined) {
          const last = await logTail(f.log, 5);
          if (/password is required|a terminal is required/i.test(last)) await asRoot(ctx, [hyperkit, '-v']);
          throw new DevclusterError('HYPERKIT_START_FAILED', `hyperkit exited while starting (code ${exited.code ?? exited.signal}): ${last.split('\n').pop() ?? ''}`, {
            advice: `Its own output is in ${f.log}. After a macOS upgrade an old hyperkit often fails this way; \`devcluster doctor --driver hyperkit\` checks it.`,
            details: { hyperkitOutput: last },
          });
        }
        await sleep(200);
      }
      throw new DevclusterError('HYPERKIT_START_FAILED', `hyperkit did not finish setting up its devices (pid file ${f.pidFile}, console ${f.tty}) within 30s`, { advice: `Its own output is in ${f.log}.` });
    },

    async resume(ctx) {
      // HyperKit cannot pause a VM, so there is nothing to continue: a VM that is not running is started.
      await driver.start(ctx);
    },

    async stop(ctx, options: StopOptions) {
      const pid = await ourPid(ctx);
      if (pid === undefined) return;
      // hyperkit turns SIGTERM into an ACPI power-button press.
      await signalRoot(ctx, pid, 'TERM');
      if (await waitForExit(pid, options.timeoutMs, ctx.signal)) {
        await rm(files(ctx).pidFile, { force: true });
        return;
      }
      ctx.report(`the guest did not power off within ${Math.round(options.timeoutMs / 1000)}s; killing hyperkit`, 'warn');
      await driver.kill(ctx);
    },

    async kill(ctx) {
      const pid = await ourPid(ctx);
      if (pid !== undefined) {
        await signalRoot(ctx, pid, 'KILL');
        if (!(await waitForExit(pid, 10_000))) throw new DevclusterError('HYPERKIT_STOP_TIMEOUT', `hyperkit (pid ${pid}) is still running after SIGKILL`);
      }
      await rm(files(ctx).pidFile, { force: true });
    },

    async delete(ctx) {
      const f = files(ctx);
      await driver.kill(ctx);
      await ctx.state.forget('process', f.pidFile);
      await rm(f.tty, { force: true });
      await rm(f.disk, { force: true });
      await rm(`${f.disk}.creating`, { force: true });
      await ctx.state.forget('file', f.disk);
      await hyperkitData.clear(ctx);
    },

    async state(ctx): Promise<VmState> {
      if ((await ourPid(ctx)) !== undefined) return 'running';
      const d = hyperkitData.peek(ctx);
      const disk = await stat(files(ctx).disk).then(() => true, () => false);
      return disk || d?.vm !== undefined ? 'stopped' : 'absent';
    },

    async address(ctx, wait): Promise<GuestAddress> {
      const d = data(ctx);
      if (d.mac === undefined) throw new Error('hyperkit: address before create');
      const ip = await waitForLease({
        leasesFile: host.leasesFile,
        mac: d.mac,
        deadline: wait.deadline,
        signal: ctx.signal,
        alive: async () => (await ourPid(ctx)) !== undefined,
        lastWords: () => logTail(files(ctx).log, 5),
        ...(wait.onProgress === undefined ? {} : { onProgress: wait.onProgress }),
      });
      if (ip !== d.guestIp) {
        await saveData(ctx, (x) => {
          x.guestIp = ip;
        });
      }
      return { ip, source: 'dhcp-leases' };
    },

    async details(ctx): Promise<VmDetails> {
      const pid = await ourPid(ctx);
      return pid === undefined ? {} : { pid, acceleration: { accelerator: 'hvf', hardware: true, reason: 'HyperKit runs on Hypervisor.framework' } };
    },

    async crashReport(ctx): Promise<CrashReport> {
      const f = files(ctx);
      const log = [await logTail(f.log, 10), await logTail(f.consoleRing, 10)].filter((t) => t !== '').join('\n--- the guest\'s console (HyperKit\'s ring buffer, oldest lines may be missing) ---\n');
      const pid = await ourPid(ctx);
      const cause = pid === undefined ? 'the hyperkit process is gone (it crashed, was killed, or the guest powered off)' : 'hyperkit runs but the guest does not answer';
      return { cause, ...(log === '' ? {} : { log }) };
    },
  };
  return driver;
}

export const hyperkitDriver: Driver = createHyperkitDriver(MACOS_HOST);
