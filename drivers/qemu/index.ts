import { createHash } from 'node:crypto';
import { mkdir, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { run } from '../../src/host/exec.ts';
import { homePaths } from '../../src/profile/paths.ts';
import { DevclusterError } from '../../src/ui/errors.ts';
import type { Driver, DriverContext, Endpoints, NetworkPlan, StopOptions, VmSpec, VmState } from '../driver.ts';
import { chooseAccel } from './accel.ts';
import { findQemu, qemuArch, requireQemu } from './binaries.ts';
import { buildQemuArgs, macForProfile } from './command-line.ts';
import type { QemuLaunch, QemuNetdev } from './command-line.ts';
import { launchQemu, ourQemuPid, processAlive, tryQmp, waitForExit } from './process.ts';
import type { QmpAddress } from './qmp.ts';
import { GUEST_API_SERVER_PORT, LOOPBACK, SLIRP_GUEST_IP, choosePorts, userNetworkPlan } from './user-network.ts';
import type { UserPorts } from './user-network.ts';
import { bridgedNetwork } from './bridged-network.ts';
import './errors.ts';

/** What the QEMU driver keeps in the profile's state between commands. */
interface QemuData {
  mode: 'user' | 'bridged';
  ports?: UserPorts;
  plan?: NetworkPlan;
  tap?: string;
  guestIp?: string;
  vm?: Omit<QemuLaunch, 'accel' | 'netdev' | 'qmp' | 'pidFile' | 'serialLog' | 'name' | 'arch'>;
  accel?: string;
  accelReason?: string;
  startedAt?: string;
}

function data(ctx: DriverContext): QemuData {
  return (ctx.state.require().driverData['qemu'] ?? { mode: 'user' }) as QemuData;
}

async function saveData(ctx: DriverContext, change: (d: QemuData) => void): Promise<void> {
  await ctx.state.update((s) => {
    const d = (s.driverData['qemu'] ?? { mode: 'user' }) as QemuData;
    change(d);
    s.driverData['qemu'] = d;
  });
}

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

/**
 * Unix socket paths are limited to about 104 bytes; a long home moves the
 * monitor socket to the temp directory under a name derived from the profile dir.
 */
function qmpAddress(ctx: DriverContext): QmpAddress {
  const inProfile = join(ctx.paths.dir, 'qmp.sock');
  if (process.platform === 'win32') {
    const port = 40000 + (createHash('sha256').update(ctx.paths.dir).digest().readUInt16BE(0) % 20000);
    return { host: LOOPBACK, port };
  }
  if (Buffer.byteLength(inProfile) < 100) return { path: inProfile };
  const id = createHash('sha256').update(ctx.paths.dir).digest('hex').slice(0, 16);
  return { path: join('/tmp', `devcluster-${id}.qmp`) };
}

function mode(ctx: DriverContext): 'user' | 'bridged' {
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
      elevation: { user: false, bridged: true },
      networkModes: ['user', 'bridged'],
      ipDiscovery: { user: 'port-forward', bridged: 'static' },
      directKernelBoot: true,
    },
    diskFormats: ['qcow2', 'raw'],
    seedMedia: ['iso'],
  },

  async available() {
    const found = await findQemu();
    return found === undefined ? { ok: false, reason: `qemu-system-${qemuArch()} or qemu-img is not installed` } : { ok: true };
  },

  async ensureNetwork(ctx) {
    const mac = macForProfile(ctx.profile, (s) => createHash('sha256').update(s).digest());
    // A created VM keeps the network its seed was written for.
    const saved = ctx.state.require().created !== undefined && data(ctx).plan !== undefined ? data(ctx).mode : undefined;
    const m = saved ?? mode(ctx);
    if (saved !== undefined && saved !== mode(ctx)) {
      ctx.report(`qemu-network of an existing VM cannot change (it uses ${saved} networking); delete it and start again to change it`, 'warn');
    }
    if (m === 'user') {
      // Recorded ports are kept: a running VM holds them (so they look taken),
      // and start() checks them again before it launches QEMU.
      const ports = data(ctx).ports ?? (await choosePorts(undefined));
      const plan = userNetworkPlan(mac, ports);
      await saveData(ctx, (d) => {
        d.mode = 'user';
        d.ports = ports;
        d.plan = plan;
        d.guestIp = SLIRP_GUEST_IP;
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
      const { rename } = await import('node:fs/promises');
      await rename(tmp, f.disk);
    }
    await saveData(ctx, (d) => {
      d.vm = {
        cpus: spec.cpus,
        memoryMiB: spec.memoryMiB,
        disk: f.disk,
        seedIso: spec.seedIso,
        mac: spec.network.mac,
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
    const choice = await chooseAccel({ setting: String(ctx.settings['qemu-accel'] ?? 'auto'), qemu: qemu.system, kernel: d.vm.kernel, cacheFile: f.accelCache });
    if (choice.degraded) ctx.report(choice.reason, 'warn');
    let netdev: QemuNetdev;
    if (d.mode === 'user') {
      const ports = await choosePorts(d.ports);
      if (ports.sshPort !== d.ports?.sshPort || ports.apiServerPort !== d.ports?.apiServerPort) {
        ctx.report(`forwarded ports changed to ${ports.sshPort} (ssh) and ${ports.apiServerPort} (API server): the previous ones are in use`, 'warn');
      }
      await saveData(ctx, (x) => {
        x.ports = ports;
        x.plan = userNetworkPlan(x.vm?.mac ?? '', ports);
      });
      netdev = { kind: 'user', bindAddress: LOOPBACK, sshPort: ports.sshPort, apiServerPort: ports.apiServerPort, guestApiServerPort: GUEST_API_SERVER_PORT };
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
      netdev,
      qmp: qmpAddress(ctx),
      pidFile: f.pidFile,
      serialLog: f.serialLog,
    };
    await mkdir(ctx.paths.logs, { recursive: true });
    await ctx.state.record('process', f.pidFile);
    const pid = await launchQemu({ binary: qemu.system, args: buildQemuArgs(launch), logFile: f.qemuLog, pidFile: f.pidFile, qmp: launch.qmp, signal: ctx.signal });
    await saveData(ctx, (x) => {
      x.accel = choice.accel;
      x.accelReason = choice.reason;
      x.startedAt = new Date().toISOString();
    });
    ctx.report(`QEMU pid ${pid} (${choice.accel})`);
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
    const qmp = qmpAddress(ctx);
    if ('path' in qmp) await rm(qmp.path, { force: true });
    await rm(f.pidFile, { force: true });
    await ctx.state.forget('process', f.pidFile);
    await rm(f.disk, { force: true });
    await rm(`${f.disk}.creating`, { force: true });
    await ctx.state.forget('file', f.disk);
    if (data(ctx).mode === 'bridged' || ctx.state.require().resources.some((r) => r.kind.startsWith('linux-'))) {
      await bridgedNetwork.teardown(ctx);
    }
  },

  async state(ctx): Promise<VmState> {
    const f = files(ctx);
    const d = ctx.state.state?.driverData['qemu'] as QemuData | undefined;
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

  async endpoints(ctx): Promise<Endpoints> {
    const d = data(ctx);
    if (d.mode === 'user') {
      if (d.ports === undefined) throw new Error('qemu: endpoints before ensureNetwork');
      return { ssh: { host: LOOPBACK, port: d.ports.sshPort }, apiServer: { host: LOOPBACK, port: d.ports.apiServerPort }, guestIp: SLIRP_GUEST_IP };
    }
    if (d.guestIp === undefined) throw new Error('qemu: endpoints before ensureNetwork');
    return { ssh: { host: d.guestIp, port: 22 }, apiServer: { host: d.guestIp, port: GUEST_API_SERVER_PORT }, guestIp: d.guestIp };
  },
};
