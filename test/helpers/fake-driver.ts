/**
 * A driver that implements the whole contract (drivers/driver.ts) over the
 * fake hypervisor (test/helpers/fake-hypervisor.ts), with injectable
 * failures, latencies and an operation log, for the lifecycle tests. Like
 * the real drivers it records every host object in the profile's state
 * BEFORE creating it, creates the disk as a real qcow2 child of the cached
 * base (staged as *.creating), and reads the truth from its hypervisor, so
 * what a test sees after a crash is what a user would see.
 *
 * Tests use it through their own registry:
 *   new DriverRegistry([FAKE_DESCRIPTOR], { fake: async () => fakeDriver })
 */
import { writeSync } from 'node:fs';
import { mkdir, rename, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Availability, CrashReport, Driver, DriverContext, DriverDescriptor, GuestAddress, HostContext, NetworkPlan, NetworkRequest, StopOptions, VmDetails, VmSpec, VmState } from '../../drivers/driver.ts';
import { DriverRegistry } from '../../drivers/index.ts';
import { run } from '../../src/host/exec.ts';
import { freePort } from '../integration/ssh-server.ts';
import {
  bootVmProcess,
  changeRegistry,
  freezeVmProcess,
  guestDir,
  hypervisorLogTail,
  killVmProcess,
  readRegistry,
  shutdownVmProcess,
  thawVmProcess,
  vmProcessAlive,
} from './fake-hypervisor.ts';
import type { FakeVm, GuestBehaviour } from './fake-hypervisor.ts';

export const FAKE_DRIVER = 'fake';
export const FAKE_SWITCH = 'devcluster-fake-switch';

export const FAKE_DESCRIPTOR: DriverDescriptor = {
  name: FAKE_DRIVER,
  displayName: 'Fake',
  aliases: [],
  platforms: ['linux'],
  priority: { linux: 1 },
  settings: [],
};

/**
 * Named points inside each method where a fault can strike, in the order a
 * method passes them: `<method>:before` and `<method>:after` for every
 * method, and the moments between "recorded" and "created" for those that
 * create something.
 */
export const POINTS = {
  ensureNetwork: ['ensureNetwork:before', 'ensureNetwork:recorded', 'ensureNetwork:after'],
  create: ['create:before', 'create:recorded', 'create:disk-staged', 'create:after'],
  start: ['start:before', 'start:recorded', 'start:after'],
  resume: ['resume:before', 'resume:after'],
  stop: ['stop:before', 'stop:guest-down', 'stop:after'],
  kill: ['kill:before', 'kill:after'],
  delete: ['delete:before', 'delete:vm-removed', 'delete:after'],
  state: ['state:before'],
  address: ['address:before'],
} as const;

export type FaultAction =
  /** The method throws. */
  | 'throw'
  /** The whole process exits at once (a crash): no finally block runs. */
  | 'exit'
  /** Prints `REACHED <point>` on stdout and never returns: the test kills the process. */
  | 'hang'
  /** The VM's process is killed (an OOM kill, a hypervisor crash); the method goes on. */
  | 'crash-vm';

export interface Fault {
  at: string;
  /** The nth time the point is reached (default 1). */
  nth?: number;
  action: FaultAction;
}

export interface FakeDriverOptions {
  /** forwarded: guest ports reached through 127.0.0.1 forwards (user-mode NAT); routable: the guest has its own address, learnt at boot. */
  mode?: 'forwarded' | 'routable';
  faults?: Fault[];
  /** Milliseconds to wait at a point (a slow hypervisor). */
  latencyMs?: Readonly<Record<string, number>>;
  guest?: GuestBehaviour;
  availability?: Availability;
}

export const INJECTED = 'injected failure at';
/** Exit status of a process ended by an 'exit' fault. */
export const CRASH_EXIT_CODE = 86;

interface FakeData {
  forwards?: Record<number, number>;
}

function vmName(ctx: { profile: string }): string {
  return `devcluster-${ctx.profile}`;
}

function data(ctx: DriverContext): FakeData {
  return (ctx.state.state?.driverData['fake'] ?? {}) as FakeData;
}

/** What a stopped or killed VM's record keeps: no process, no boot time, no failure. */
function powerOff(vm: FakeVm): void {
  vm.power = 'stopped';
  delete vm.pid;
  delete vm.startTime;
  delete vm.broken;
}

function macFor(profile: string): string {
  let h = 0;
  for (const c of profile) h = (h * 31 + c.charCodeAt(0)) >>> 0;
  const b = [(h >>> 24) & 0xff, (h >>> 16) & 0xff, (h >>> 8) & 0xff, h & 0xff];
  return `52:54:00:${b.slice(1).map((x) => x.toString(16).padStart(2, '0')).join(':')}`;
}

export class FakeDriver implements Driver {
  readonly options: FakeDriverOptions;
  /** Every point reached, in order, by this driver instance. */
  readonly ops: string[] = [];
  private readonly counts = new Map<string, number>();
  readonly info: Driver['info'];

  constructor(options: FakeDriverOptions = {}) {
    this.options = options;
    const mode = options.mode ?? 'forwarded';
    this.info = {
      name: FAKE_DRIVER,
      displayName: 'Fake',
      platforms: ['linux'],
      features: {
        networkModes:
          mode === 'forwarded'
            ? { forwarded: { description: 'guest ports forwarded on 127.0.0.1', address: 'port-forward', elevation: {} } }
            : { routable: { description: 'the guest has its own address, from a DHCP lease', address: 'dhcp-leases', elevation: {} } },
        macKnown: 'plan',
        directKernelBoot: false,
        diskFormats: ['qcow2'],
        registersBaseMedia: false,
      },
    };
  }

  /** The methods called, without the inner points. */
  calls(): string[] {
    return this.ops.filter((p) => p.endsWith(':before')).map((p) => p.slice(0, -':before'.length));
  }

  private async point(name: string, ctx: HostContext & { profile?: string }): Promise<void> {
    const n = (this.counts.get(name) ?? 0) + 1;
    this.counts.set(name, n);
    this.ops.push(name);
    const latency = this.options.latencyMs?.[name];
    if (latency !== undefined) await sleep(latency, undefined, { signal: ctx.signal });
    for (const f of this.options.faults ?? []) {
      if (f.at !== name || (f.nth ?? 1) !== n) continue;
      if (f.action === 'throw') throw new Error(`${INJECTED} ${name}`);
      if (f.action === 'exit') {
        writeSync(1, `EXIT ${name}\n`);
        process.exit(CRASH_EXIT_CODE);
      }
      if (f.action === 'hang') {
        writeSync(1, `REACHED ${name}\n`);
        await new Promise(() => setInterval(() => undefined, 1 << 30));
      }
      if (f.action === 'crash-vm' && ctx.profile !== undefined) {
        const vm = (await readRegistry(ctx.home)).vms[vmName({ profile: ctx.profile })];
        if (vm !== undefined) await killVmProcess(ctx.home, vm, `crash injected at ${name}`);
      }
    }
  }

  private async vm(ctx: DriverContext): Promise<FakeVm | undefined> {
    const vm = (await readRegistry(ctx.home)).vms[vmName(ctx)];
    return vm !== undefined && vm.profileDir === ctx.paths.dir ? vm : undefined;
  }

  private async setVm(ctx: DriverContext, change: (vm: FakeVm) => void): Promise<void> {
    await changeRegistry(ctx.home, (r) => {
      const vm = r.vms[vmName(ctx)];
      if (vm === undefined) throw new Error(`fake hypervisor: no VM ${vmName(ctx)}`);
      change(vm);
    });
  }

  async available(ctx: HostContext): Promise<Availability> {
    await this.point('available:before', ctx);
    return this.options.availability ?? { status: 'available' };
  }

  async ensureNetwork(ctx: DriverContext, request: NetworkRequest): Promise<NetworkPlan> {
    await this.point('ensureNetwork:before', ctx);
    await ctx.state.record('fake-switch', FAKE_SWITCH, undefined, true);
    await this.point('ensureNetwork:recorded', ctx);
    await changeRegistry(ctx.home, (r) => {
      const sw = (r.switches[FAKE_SWITCH] ??= { users: [] });
      if (!sw.users.includes(ctx.paths.dir)) sw.users.push(ctx.paths.dir);
    });
    const mac = macFor(ctx.profile);
    let plan: NetworkPlan;
    if ((this.options.mode ?? 'forwarded') === 'forwarded') {
      // A created VM keeps its forwards; new ones are chosen once.
      const known = data(ctx).forwards ?? {};
      const existing = await this.vm(ctx);
      const forwards: Record<number, number> = {};
      for (const p of request.ports) forwards[p.guestPort] = existing?.listen.port ?? known[p.guestPort] ?? (await freePort());
      await ctx.state.update((s) => {
        s.driverData['fake'] = { forwards };
      });
      plan = {
        mode: 'forwarded',
        mac,
        guestAddress: { kind: 'forwarded' },
        dns: [],
        forwards: Object.fromEntries(Object.entries(forwards).map(([g, h]) => [Number(g), { host: '127.0.0.1', port: h }])),
      };
    } else {
      plan = { mode: 'routable', mac, guestAddress: { kind: 'dhcp' }, dns: ['127.0.0.53'], subnet: '127.77.0.0/24', gateway: '127.77.0.1' };
    }
    await this.point('ensureNetwork:after', ctx);
    return plan;
  }

  async create(ctx: DriverContext, spec: VmSpec): Promise<void> {
    await this.point('create:before', ctx);
    const name = vmName(ctx);
    const disk = join(ctx.paths.disks, 'disk.qcow2');
    await ctx.state.record('fake-vm', name);
    await ctx.state.record('file', disk);
    await this.point('create:recorded', ctx);
    if (!(await stat(disk).then(() => true, () => false))) {
      await mkdir(ctx.paths.disks, { recursive: true });
      const staging = `${disk}.creating`;
      await rm(staging, { force: true });
      await run('qemu-img', ['create', '-q', '-f', 'qcow2', '-F', spec.image.format, '-b', spec.image.disk, staging, `${spec.diskMiB}M`], { timeoutMs: 30_000 });
      await this.point('create:disk-staged', ctx);
      await rename(staging, disk);
    }
    const port = spec.network.forwards?.[22]?.port;
    await changeRegistry(ctx.home, (r) => {
      const old = r.vms[name];
      if (old !== undefined && old.profileDir !== ctx.paths.dir) throw new Error(`fake hypervisor: VM ${name} belongs to ${old.profileDir}`);
      r.vms[name] = {
        ...(old ?? { power: 'stopped' as const, boots: 0 }),
        name,
        profileDir: ctx.paths.dir,
        disk,
        seedIso: spec.seedIso,
        dataIsos: [...spec.dataIsos],
        serialLog: ctx.paths.serialLog,
        cpus: spec.cpus,
        memoryMiB: spec.memoryMiB,
        listen: old?.listen ?? (port === undefined ? { host: '', port: 22 } : { host: '127.0.0.1', port }),
      };
    });
    await this.point('create:after', ctx);
  }

  private async boot(ctx: DriverContext): Promise<void> {
    const vm = await this.vm(ctx);
    if (vm === undefined) throw new Error('fake: start before create');
    if ((this.options.mode ?? 'forwarded') === 'routable' && vm.lease === undefined) {
      // The guest's "DHCP lease": a loopback address of its own.
      const taken = new Set(Object.values((await readRegistry(ctx.home)).vms).map((v) => v.lease));
      let n = 2;
      while (taken.has(`127.77.0.${n}`)) n++;
      vm.lease = `127.77.0.${n}`;
      vm.listen = { host: vm.lease, port: 22 };
      await this.setVm(ctx, (v) => {
        v.lease = vm.lease;
        v.listen = vm.listen;
      });
    }
    const proc = await bootVmProcess(ctx.home, vm, this.options.guest ?? { ready: 'at-boot' });
    await this.setVm(ctx, (v) => {
      v.power = 'running';
      v.pid = proc.pid;
      v.startTime = proc.startTime;
      v.boots += 1;
      delete v.broken;
    });
  }

  async start(ctx: DriverContext): Promise<void> {
    await this.point('start:before', ctx);
    const vm = await this.vm(ctx);
    if (vm === undefined) throw new Error('fake: start before create');
    if (vm.power === 'running' && vmProcessAlive(vm) && vm.broken !== true) return;
    await ctx.state.record('process', vmName(ctx));
    await this.point('start:recorded', ctx);
    await killVmProcess(ctx.home, vm, 'restarted');
    await this.boot(ctx);
    await this.point('start:after', ctx);
  }

  async resume(ctx: DriverContext): Promise<void> {
    await this.point('resume:before', ctx);
    const vm = await this.vm(ctx);
    if (vm === undefined) throw new Error('fake: resume of a VM that does not exist');
    if (vm.power === 'paused' && vmProcessAlive(vm)) {
      await thawVmProcess(vm);
      await this.setVm(ctx, (v) => {
        v.power = 'running';
      });
    } else if (vm.power === 'saved') {
      await this.boot(ctx);
    } else {
      throw new Error(`fake: resume of a VM that is ${vm.power}`);
    }
    await this.point('resume:after', ctx);
  }

  async stop(ctx: DriverContext, options: StopOptions): Promise<void> {
    await this.point('stop:before', ctx);
    const vm = await this.vm(ctx);
    if (vm === undefined) return;
    await shutdownVmProcess(ctx.home, vm, options.timeoutMs);
    await this.point('stop:guest-down', ctx);
    await this.setVm(ctx, powerOff);
    await this.point('stop:after', ctx);
  }

  async kill(ctx: DriverContext): Promise<void> {
    await this.point('kill:before', ctx);
    const vm = await this.vm(ctx);
    if (vm === undefined) return;
    await killVmProcess(ctx.home, vm, 'kill');
    await this.setVm(ctx, powerOff);
    await this.point('kill:after', ctx);
  }

  /** Removes what the state recorded and, when the state was lost, every VM the hypervisor says this profile directory made. */
  async delete(ctx: DriverContext): Promise<void> {
    await this.point('delete:before', ctx);
    const registry = await readRegistry(ctx.home);
    const mine = Object.values(registry.vms).filter((v) => v.profileDir === ctx.paths.dir);
    for (const vm of mine) {
      await killVmProcess(ctx.home, vm, 'delete');
      await changeRegistry(ctx.home, (r) => {
        delete r.vms[vm.name];
      });
      await rm(guestDir(ctx.home, vm.name), { recursive: true, force: true });
    }
    await this.point('delete:vm-removed', ctx);
    await ctx.state.forget('process', vmName(ctx));
    await ctx.state.forget('fake-vm', vmName(ctx));
    const disk = join(ctx.paths.disks, 'disk.qcow2');
    await rm(disk, { force: true });
    await rm(`${disk}.creating`, { force: true });
    await ctx.state.forget('file', disk);
    await changeRegistry(ctx.home, (r) => {
      const sw = r.switches[FAKE_SWITCH];
      if (sw === undefined) return;
      sw.users = sw.users.filter((u) => u !== ctx.paths.dir);
      if (sw.users.length === 0) delete r.switches[FAKE_SWITCH];
    });
    await ctx.state.forget('fake-switch', FAKE_SWITCH);
    await this.point('delete:after', ctx);
  }

  async state(ctx: DriverContext): Promise<VmState> {
    await this.point('state:before', ctx);
    const vm = await this.vm(ctx);
    if (vm === undefined) return 'absent';
    if (vm.broken === true) return 'broken';
    if (vm.power === 'running' || vm.power === 'paused') return vmProcessAlive(vm) ? vm.power : 'stopped';
    return vm.power;
  }

  async address(ctx: DriverContext, wait: { deadline: number; onProgress?: (d: string) => void }): Promise<GuestAddress> {
    await this.point('address:before', ctx);
    for (;;) {
      const vm = await this.vm(ctx);
      if (vm === undefined) throw new Error('fake: address of a VM that does not exist');
      if ((this.options.mode ?? 'forwarded') === 'forwarded') {
        return { forwards: { 22: { host: '127.0.0.1', port: vm.listen.port } }, source: 'port-forward' };
      }
      if (vm.lease !== undefined && vmProcessAlive(vm)) return { ip: vm.lease, source: 'dhcp-leases' };
      if (Date.now() > wait.deadline) throw new Error(`fake: VM ${vm.name} got no DHCP lease in time`);
      wait.onProgress?.('waiting for the guest\'s DHCP lease');
      await sleep(20, undefined, { signal: ctx.signal });
    }
  }

  async details(ctx: DriverContext): Promise<VmDetails> {
    const vm = await this.vm(ctx);
    return vm?.pid !== undefined && vmProcessAlive(vm) ? { pid: vm.pid } : {};
  }

  async crashReport(ctx: DriverContext): Promise<CrashReport> {
    const vm = await this.vm(ctx);
    const log = await hypervisorLogTail(ctx.home, vmName(ctx));
    const cause = vm === undefined ? 'the VM does not exist' : vmProcessAlive(vm) ? 'the VM runs but the hypervisor cannot reach it' : `the VM's process ${vm.pid ?? ''} is gone`;
    return { cause, ...(log === '' ? {} : { log }) };
  }
}

export function fakeRegistry(driver: FakeDriver): DriverRegistry {
  return new DriverRegistry([FAKE_DESCRIPTOR], { [FAKE_DRIVER]: async () => driver });
}

/** Test controls over a VM, as a user or the host would act on it behind devcluster's back. */
export const hypervisor = {
  async vm(home: string, profile: string): Promise<FakeVm | undefined> {
    return (await readRegistry(home)).vms[vmName({ profile })];
  },
  /** The VM's process dies (OOM kill, crash); the hypervisor still lists it as running. */
  async crash(home: string, profile: string): Promise<void> {
    const vm = await hypervisor.vm(home, profile);
    if (vm !== undefined) await killVmProcess(home, vm, 'crashed (test)');
  },
  /** Paused by the hypervisor: memory kept, process frozen. */
  async pause(home: string, profile: string): Promise<void> {
    const vm = await hypervisor.vm(home, profile);
    if (vm === undefined) throw new Error('no VM');
    await freezeVmProcess(vm);
    await changeRegistry(home, (r) => {
      (r.vms[vm.name] as FakeVm).power = 'paused';
    });
  },
  /** Saved (Hyper-V Saved): memory on disk, no process. */
  async save(home: string, profile: string): Promise<void> {
    const vm = await hypervisor.vm(home, profile);
    if (vm === undefined) throw new Error('no VM');
    await killVmProcess(home, vm, 'saved');
    await changeRegistry(home, (r) => {
      const v = r.vms[vm.name] as FakeVm;
      v.power = 'saved';
      delete v.pid;
      delete v.startTime;
    });
  },
  /** The hypervisor still says running, but the guest is hung: its sshd accepts and never greets. */
  async hangGuest(home: string, profile: string): Promise<void> {
    const vm = await hypervisor.vm(home, profile);
    if (vm === undefined) throw new Error('no VM');
    await freezeVmProcess(vm);
  },
  async markBroken(home: string, profile: string): Promise<void> {
    await changeRegistry(home, (r) => {
      (r.vms[vmName({ profile })] as FakeVm).broken = true;
    });
  },
};
