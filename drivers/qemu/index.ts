import { createHash } from 'node:crypto';
import { mkdir, readFile, rename, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { run, tail } from '../../src/host/exec.ts';
import { homePaths } from '../../src/profile/paths.ts';
import { DevclusterError } from '../../src/ui/errors.ts';
import type { Availability, CrashReport, Driver, DriverContext, GuestAddress, HostContext, NetworkPlan, StopOptions, VmDetails, VmSpec, VmState } from '../driver.ts';
import { driverDataStore } from '../driver-data.ts';
import { acceleratorVerdict } from './accel.ts';
import { findQemu, qemuArch, requireQemu } from './binaries.ts';
import { buildQemuArgs, macForProfile } from './command-line.ts';
import type { QemuLaunch, QemuNetdev } from './command-line.ts';
import { launchQemu, ourQemuPid, processAlive, tryQmp, waitForExit } from './process.ts';
import { monitorAddress, prepareMonitorAddress } from './monitor-address.ts';
import type { MonitorAddress } from './monitor-address.ts';
import { userNetworkPlan } from './user-network.ts';
import { LOOPBACK, chooseForwards, forwardEndpoints } from '../../src/host/port-forwards.ts';
import type { PortForwards } from '../../src/host/port-forwards.ts';
import { bridgedNetwork } from './bridged-network.ts';
import './errors.ts';

/** What the QEMU driver keeps in the profile's state between commands. */
interface QemuData {
  mode: 'user' | 'bridged';
  /** User mode: host port per guest port. */
  forwards?: PortForwards;
  plan?: NetworkPlan;
  tap?: string;
  guestIp?: string;
  vm?: Omit<QemuLaunch, 'accel' | 'netdev' | 'qmp' | 'pidFile' | 'serialLog' | 'name' | 'arch'>;
  accel?: string;
  accelReason?: string;
  accelDegraded?: boolean;
  startedAt?: string;
}

const qemuData = driverDataStore<QemuData>('qemu', () => ({ mode: 'user' }));
const data = qemuData.get;
const saveData = qemuData.update;

function files(ctx: DriverContext) {
  const dir = ctx.paths.dir;
  return {
    disk: join(ctx.paths.disks, 'disk.qcow2'),
    pidFile: join(dir, 'qemu.pid'),
    qemuLog: join(ctx.paths.logs, 'qemu.log'),
    serialLog: ctx.paths.serialLog,
    accelCache: join(homePaths(ctx.home).home, 'cache', 'qemu-accel.json'),
  };
}

/** The monitor's AF_UNIX socket: in the profile, or a private run directory when that path is too long. */
function qmpAddress(ctx: DriverContext): MonitorAddress {
  return monitorAddress(ctx.paths.dir, ctx.home);
}

function mode(ctx: HostContext): 'user' | 'bridged' {
  return ctx.settings['qemu-network'] === 'bridged' ? 'bridged' : 'user';
}

async function qemuImgInfo(img: string, file: string): Promise<{ virtualSize: number; format: string }> {
  const r = await run(img, ['info', '--output=json', '-U', file], { parse: true, timeoutMs: 30_000 });
  const info = JSON.parse(r.stdout) as { 'virtual-size': number; format: string };
  return { virtualSize: info['virtual-size'], format: info.format };
}

/** A pid file must not outlive its QEMU: the pid may later belong to anything. */
async function forgetPidFile(ctx: DriverContext): Promise<void> {
  await rm(files(ctx).pidFile, { force: true });
}

export const qemuDriver: Driver = {
  info: {
    name: 'qemu',
    displayName: 'QEMU',
    platforms: ['linux', 'darwin', 'win32'],
    features: {
      networkModes: {
        user: { description: 'user-mode NAT: the guest is reached through ports forwarded on 127.0.0.1; no root', address: 'port-forward', elevation: {} },
        bridged: { description: 'a Linux bridge with NAT: the guest has its own address; root', address: 'static', elevation: { network: 'root', start: 'root', stop: 'root', delete: 'root' } },
      },
      networkModeSetting: 'qemu-network',
      macKnown: 'plan',
      directKernelBoot: true,
      diskFormats: ['qcow2', 'raw'],
      registersBaseMedia: false,
    },
  },

  async available(ctx): Promise<Availability> {
    if (ctx.platform === 'win32') {
      // QEMU on Windows serves its monitor on an AF_UNIX socket, and Node.js cannot connect to one there yet;
      // a TCP monitor would let any local user control the VM.
      return { status: 'unavailable', reason: 'the QEMU monitor needs an AF_UNIX socket, which Node.js cannot connect to on Windows yet (nodejs/node#55979)', fix: 'Use another driver on Windows; devcluster does not expose QEMU\'s monitor on a TCP port.' };
    }
    const found = await findQemu();
    if (found === undefined) return { status: 'unavailable', reason: `qemu-system-${qemuArch()} or qemu-img is not installed`, fix: 'Run `devcluster doctor --fix` to install QEMU.' };
    if (mode(ctx) === 'bridged') {
      if (ctx.platform !== 'linux') return { status: 'unavailable', reason: `bridged networking is for Linux hosts; this is ${ctx.platform}`, fix: 'Use --qemu-network=user.' };
      if (process.getuid?.() !== 0) return { status: 'needs-elevation', elevation: 'root', reason: 'bridged networking creates a bridge, a tap device and NAT rules' };
    }
    return { status: 'available', detail: found.system };
  },

  async ensureNetwork(ctx, request) {
    const mac = macForProfile(ctx.profile, (s) => createHash('sha256').update(s).digest());
    // A created VM keeps the network its seed was written for.
    const saved = ctx.state.require().created !== undefined && data(ctx).plan !== undefined ? data(ctx).mode : undefined;
    const m = saved ?? mode(ctx);
    if (saved !== undefined && saved !== mode(ctx)) {
      ctx.report(`qemu-network of an existing VM cannot change (it uses ${saved} networking); delete it and start again to change it`, 'warn');
    }
    if (m === 'user') {
      // A running VM holds its recorded ports, so they look taken but are ours;
      // start() checks them again before it launches QEMU.
      const running = (await ourQemuPid(files(ctx).pidFile)) !== undefined;
      const forwards = await chooseForwards(request.ports, data(ctx).forwards, running);
      const plan = userNetworkPlan(mac, forwards);
      await saveData(ctx, (d) => {
        d.mode = 'user';
        d.forwards = forwards;
        d.plan = plan;
        delete d.guestIp;
      });
      return plan;
    }
    const { plan, tap } = await bridgedNetwork.ensure(ctx, mac);
    await saveData(ctx, (d) => {
      d.mode = 'bridged';
      d.plan = plan;
      d.tap = tap;
      d.guestIp = plan.guestAddress.kind === 'static' ? plan.guestAddress.cidr.split('/')[0] : undefined;
    });
    return plan;
  },

  async create(ctx, spec: VmSpec) {
    const qemu = await requireQemu();
    const f = files(ctx);
    if (spec.image.format !== 'qcow2' && spec.image.format !== 'raw') {
      throw new DevclusterError('QEMU_IMAGE_UNSUITABLE', `QEMU boots qcow2 or raw disks; the image is ${spec.image.format}`);
    }
    if (spec.network.mac === undefined) throw new Error('qemu: the network plan has no MAC');
    await mkdir(ctx.paths.disks, { recursive: true });
    await mkdir(ctx.paths.logs, { recursive: true });
    const exists = await stat(f.disk).then(() => true, () => false);
    if (!exists) {
      const base = await qemuImgInfo(qemu.img, spec.image.disk);
      const wanted = spec.diskMiB * 1024 * 1024;
      if (wanted < base.virtualSize) {
        throw new DevclusterError('QEMU_DISK_TOO_SMALL', `disk-size ${spec.diskMiB}MiB is smaller than the image (${Math.ceil(base.virtualSize / 1048576)}MiB)`, {
          advice: `Use --disk-size ${Math.ceil(base.virtualSize / 1073741824)}g or more.`,
          input: true,
        });
      }
      await ctx.state.record('file', f.disk);
      // The cached base is only ever read: the VM writes to its own overlay.
      const tmp = `${f.disk}.creating`;
      await rm(tmp, { force: true });
      await run(qemu.img, ['create', '-q', '-f', 'qcow2', '-F', base.format, '-b', spec.image.disk, tmp, String(wanted)], { timeoutMs: 60_000 });
      await rename(tmp, f.disk);
    }
    await saveData(ctx, (d) => {
      d.vm = {
        cpus: spec.cpus,
        memoryMiB: spec.memoryMiB,
        disk: f.disk,
        seedIso: spec.seedIso,
        dataIsos: [...spec.dataIsos],
        mac: spec.network.mac as string,
        ...(spec.image.kernel === undefined ? {} : { kernel: spec.image.kernel }),
        ...(spec.image.initrd === undefined ? {} : { initrd: spec.image.initrd }),
        ...(spec.image.kernelCmdline === undefined ? {} : { append: spec.image.kernelCmdline }),
      };
    });
  },

  async start(ctx) {
    const f = files(ctx);
    const d = data(ctx);
    if (d.vm === undefined) throw new Error('qemu: start before create');
    if ((await ourQemuPid(f.pidFile)) !== undefined) return;
    const qemu = await requireQemu();
    const choice = await acceleratorVerdict({ setting: String(ctx.settings['qemu-accel'] ?? 'auto'), qemu: qemu.system, kernel: d.vm.kernel, cacheFile: f.accelCache });
    if (choice.degraded) ctx.report(choice.reason, 'warn');
    let netdev: QemuNetdev;
    if (d.mode === 'user') {
      const wanted = Object.keys(d.forwards ?? {}).map((g) => ({ name: `port ${g}`, guestPort: Number(g) }));
      const forwards = await chooseForwards(wanted, d.forwards);
      const moved = Object.entries(forwards).filter(([g, h]) => d.forwards?.[g] !== h);
      if (moved.length > 0) {
        ctx.report(`forwarded ports changed (the previous ones are in use): ${moved.map(([g, h]) => `guest ${g} -> 127.0.0.1:${h}`).join(', ')}`, 'warn');
      }
      await saveData(ctx, (x) => {
        x.forwards = forwards;
        x.plan = userNetworkPlan(x.vm?.mac ?? '', forwards);
      });
      netdev = { kind: 'user', bindAddress: LOOPBACK, forwards: Object.entries(forwards).map(([g, h]) => ({ guestPort: Number(g), hostPort: h })) };
    } else {
      if (d.tap === undefined) throw new Error('qemu: bridged start before ensureNetwork');
      await bridgedNetwork.ensureTap(ctx, d.tap);
      netdev = { kind: 'tap', ifname: d.tap };
    }
    const launch: QemuLaunch = {
      ...d.vm,
      name: `devcluster-${ctx.profile}`,
      arch: qemuArch(),
      accel: choice.accel,
      cpuModel: choice.cpu,
      netdev,
      qmp: qmpAddress(ctx),
      pidFile: f.pidFile,
      serialLog: f.serialLog,
    };
    await mkdir(ctx.paths.logs, { recursive: true });
    await ctx.state.record('process', f.pidFile);
    await prepareMonitorAddress(launch.qmp);
    const pid = await launchQemu({ binary: qemu.system, args: buildQemuArgs(launch), logFile: f.qemuLog, pidFile: f.pidFile, qmp: launch.qmp, signal: ctx.signal, profileDir: ctx.paths.dir });
    await saveData(ctx, (x) => {
      x.accel = choice.accel;
      x.accelReason = choice.reason;
      x.accelDegraded = choice.degraded;
      x.startedAt = new Date().toISOString();
    });
    ctx.report(`QEMU pid ${pid} (${choice.accel})`);
  },

  async resume(ctx) {
    const qmp = await tryQmp(qmpAddress(ctx));
    if (qmp === undefined) throw new DevclusterError('QEMU_MONITOR_UNREACHABLE', 'QEMU runs but its monitor does not answer, so the VM cannot be resumed');
    try {
      const status = await qmp.execute<{ status: string }>('query-status');
      // A guest suspended to RAM wakes up; one paused by the monitor continues.
      await qmp.execute(status.status === 'suspended' ? 'system_wakeup' : 'cont');
    } finally {
      qmp.close();
    }
  },

  async stop(ctx, options: StopOptions) {
    const f = files(ctx);
    const pid = await ourQemuPid(f.pidFile);
    if (pid === undefined) return;
    const qmp = await tryQmp(qmpAddress(ctx));
    if (qmp !== undefined) {
      await qmp.execute('system_powerdown').catch(() => undefined);
      qmp.close();
      if (await waitForExit(pid, options.timeoutMs, ctx.signal)) {
        await forgetPidFile(ctx);
        return;
      }
      ctx.report(`the guest did not power off within ${Math.round(options.timeoutMs / 1000)}s; stopping QEMU`, 'warn');
      const again = await tryQmp(qmpAddress(ctx));
      await again?.execute('quit').catch(() => undefined);
      again?.close();
      if (await waitForExit(pid, 5000, ctx.signal)) {
        await forgetPidFile(ctx);
        return;
      }
    }
    await qemuDriver.kill(ctx);
  },

  async kill(ctx) {
    const f = files(ctx);
    const pid = await ourQemuPid(f.pidFile);
    if (pid === undefined) {
      await forgetPidFile(ctx);
      return;
    }
    try {
      process.kill(pid, 'SIGKILL');
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code === 'EPERM') {
        throw new DevclusterError('QEMU_STOP_TIMEOUT', `QEMU (pid ${pid}) belongs to another user and cannot be stopped`, {
          advice: 'It was probably started with sudo (bridged mode): run the command with sudo too.',
        });
      }
      if (code !== 'ESRCH') throw e;
    }
    if (!(await waitForExit(pid, 10_000))) {
      throw new DevclusterError('QEMU_STOP_TIMEOUT', `QEMU (pid ${pid}) is still running after SIGKILL`);
    }
    await forgetPidFile(ctx);
  },

  async delete(ctx) {
    const f = files(ctx);
    await qemuDriver.kill(ctx);
    // A home too long for any socket path never had a monitor to remove.
    const qmp = (() => {
      try {
        return qmpAddress(ctx);
      } catch {
        return undefined;
      }
    })();
    if (qmp !== undefined) await rm(qmp.path, { force: true });
    await rm(f.pidFile, { force: true });
    await ctx.state.forget('process', f.pidFile);
    await rm(f.disk, { force: true });
    await rm(`${f.disk}.creating`, { force: true });
    await ctx.state.forget('file', f.disk);
    // Also when the state was lost: teardown finds this profile in the shared bridge registry.
    await bridgedNetwork.teardown(ctx);
  },

  async state(ctx): Promise<VmState> {
    const f = files(ctx);
    const d = qemuData.peek(ctx);
    const pid = await ourQemuPid(f.pidFile);
    if (pid === undefined) {
      const disk = await stat(f.disk).then(() => true, () => false);
      return disk || d?.vm !== undefined ? 'stopped' : 'absent';
    }
    const qmp = await tryQmp(qmpAddress(ctx));
    if (qmp === undefined) {
      const young = d?.startedAt !== undefined && Date.now() - Date.parse(d.startedAt) < 15_000;
      return young ? 'starting' : 'broken';
    }
    try {
      const status = await qmp.execute<{ status: string; running: boolean }>('query-status');
      if (status.status === 'paused' || status.status === 'suspended') return 'paused';
      if (status.status === 'shutdown') return 'stopping';
      if (status.running) return 'running';
      return processAlive(pid) ? 'broken' : 'stopped';
    } catch {
      return 'broken';
    } finally {
      qmp.close();
    }
  },

  async address(ctx): Promise<GuestAddress> {
    // Both modes know the address from the plan: forwards (user) or the static lease (bridged).
    const d = data(ctx);
    if (d.mode === 'user') {
      if (d.forwards === undefined) throw new Error('qemu: address before ensureNetwork');
      return { forwards: forwardEndpoints(d.forwards), source: 'port-forward' };
    }
    if (d.guestIp === undefined) throw new Error('qemu: address before ensureNetwork');
    return { ip: d.guestIp, source: 'static' };
  },

  async details(ctx): Promise<VmDetails> {
    const d = data(ctx);
    const pid = await ourQemuPid(files(ctx).pidFile);
    return {
      ...(pid === undefined ? {} : { pid }),
      ...(pid === undefined || d.accel === undefined ? {} : { acceleration: { accelerator: d.accel, hardware: d.accel !== 'tcg', reason: d.accelReason ?? '' } }),
    };
  },

  async crashReport(ctx): Promise<CrashReport> {
    const f = files(ctx);
    const log = tail(await readFile(f.qemuLog, 'utf8').catch(() => ''), 10);
    const pid = await ourQemuPid(f.pidFile);
    const cause = pid === undefined ? 'the QEMU process is gone (it crashed, was killed, or the guest powered off)' : 'QEMU runs but its monitor does not answer';
    return { cause, ...(log === '' ? {} : { log }) };
  },
};
