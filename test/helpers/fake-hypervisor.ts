/**
 * The "hypervisor" behind the fake driver (test/helpers/fake-driver.ts). It
 * keeps its switches and VMs in a JSON file inside the test's home, so a
 * second process (a CLI run, a worker that is killed half-way) sees the same
 * VMs, as with a real hypervisor. A running VM is a real process: the
 * guest's OpenSSH server, started in a private mount namespace where the
 * seed's user exists and /var/lib is the guest's own, so the pipeline's SSH
 * wait (banner, login with the pinned host key, readiness marker) runs
 * against a real sshd. Its "cloud-init" reads the seed ISO the pipeline
 * wrote (isoinfo), so the guest only accepts the keys that seed carries.
 *
 * Needs root (mount namespace), /usr/sbin/sshd, unshare, isoinfo.
 */
import { spawn } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, openSync, readFileSync } from 'node:fs';
import { appendFile, mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { parse as parseYaml } from 'yaml';
import { commandExists, run, tail } from '../../src/host/exec.ts';
import { procStat } from '../../src/host/process.ts';
import { writeJsonAtomic } from '../../src/profile/atomic.ts';
import { sshdConfigText } from './sshd-config.ts';

export type FakeVmPower = 'stopped' | 'running' | 'paused' | 'saved';

export interface FakeVm {
  name: string;
  /** The profile directory that created it: how delete proves a VM is a profile's when its state is lost. */
  profileDir: string;
  disk: string;
  seedIso: string;
  /** The read-only ISOs attached besides the seed. */
  dataIsos?: string[];
  serialLog: string;
  cpus: number;
  memoryMiB: number;
  /** Where the guest's sshd listens: 127.0.0.1:<forwarded port>, or its own loopback address on port 22. */
  listen: { host: string; port: number };
  /** Routable mode: the address the guest got at boot (its "DHCP lease"). */
  lease?: string;
  power: FakeVmPower;
  /** The hypervisor cannot talk to the VM (a hung monitor). */
  broken?: boolean;
  pid?: number;
  /** /proc start time of pid: a reused pid is never taken for the VM. */
  startTime?: string;
  boots: number;
}

export interface FakeSwitch {
  /** Profile directories using it: it goes when the last one does. */
  users: string[];
}

export interface FakeRegistry {
  switches: Record<string, FakeSwitch>;
  vms: Record<string, FakeVm>;
}

export function hypervisorDir(home: string): string {
  return join(home, 'fake-hypervisor');
}

function registryPath(home: string): string {
  return join(hypervisorDir(home), 'registry.json');
}

export function guestDir(home: string, vm: string): string {
  return join(hypervisorDir(home), 'guests', vm);
}

export async function readRegistry(home: string): Promise<FakeRegistry> {
  const text = await readFile(registryPath(home), 'utf8').catch((e: NodeJS.ErrnoException) => {
    if (e.code === 'ENOENT') return undefined;
    throw e;
  });
  if (text === undefined) return { switches: {}, vms: {} };
  return JSON.parse(text) as FakeRegistry;
}

/** Read, change, write atomically; the profile lock serialises the writers of one profile. */
export async function changeRegistry(home: string, change: (r: FakeRegistry) => void): Promise<FakeRegistry> {
  const r = await readRegistry(home);
  change(r);
  await writeJsonAtomic(registryPath(home), r);
  return r;
}

/** The hypervisor's own log of what it did to each VM (crashReport's "last words"). */
async function hvLog(home: string, vm: string, line: string): Promise<void> {
  await mkdir(guestDir(home, vm), { recursive: true });
  await appendFile(join(guestDir(home, vm), 'hypervisor.log'), `${new Date().toISOString()} ${line}\n`);
}

export async function hypervisorLogTail(home: string, vm: string): Promise<string> {
  return tail(await readFile(join(guestDir(home, vm), 'hypervisor.log'), 'utf8').catch(() => ''), 10);
}

/** The VM's process is alive and is the one the hypervisor started (pid and start time). */
export function vmProcessAlive(vm: Pick<FakeVm, 'pid' | 'startTime'>): boolean {
  if (vm.pid === undefined) return false;
  const st = procStat(vm.pid);
  return st !== undefined && st.state !== 'Z' && st.startTime === vm.startTime;
}

async function signalGroup(vm: FakeVm, signal: NodeJS.Signals): Promise<void> {
  if (!vmProcessAlive(vm) || vm.pid === undefined) return;
  try {
    // The guest is its own process group: sshd and its per-connection children.
    process.kill(-vm.pid, signal);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ESRCH') throw e;
  }
}

async function waitGone(vm: FakeVm, limitMs: number): Promise<boolean> {
  const until = Date.now() + limitMs;
  while (vmProcessAlive(vm)) {
    if (Date.now() > until) return false;
    await sleep(10);
  }
  return true;
}

/** Powers the VM's process off at once (SIGKILL); the registry is the caller's to update. */
export async function killVmProcess(home: string, vm: FakeVm, why: string): Promise<void> {
  if (!vmProcessAlive(vm)) return;
  await signalGroup(vm, 'SIGKILL');
  if (!(await waitGone(vm, 10_000))) throw new Error(`fake hypervisor: VM ${vm.name} (pid ${vm.pid}) survived SIGKILL`);
  await hvLog(home, vm.name, `process ${vm.pid} killed (${why})`);
}

/** ACPI-like: SIGTERM, then SIGKILL after the timeout. */
export async function shutdownVmProcess(home: string, vm: FakeVm, timeoutMs: number): Promise<void> {
  if (!vmProcessAlive(vm)) return;
  await signalGroup(vm, 'SIGCONT');
  await signalGroup(vm, 'SIGTERM');
  if (await waitGone(vm, timeoutMs)) {
    await hvLog(home, vm.name, `process ${vm.pid} powered off`);
    return;
  }
  await killVmProcess(home, vm, 'did not power off in time');
}

/** A paused VM keeps its memory: the process is frozen (SIGSTOP), not ended. */
export async function freezeVmProcess(vm: FakeVm): Promise<void> {
  await signalGroup(vm, 'SIGSTOP');
}

export async function thawVmProcess(vm: FakeVm): Promise<void> {
  await signalGroup(vm, 'SIGCONT');
}

// Inside the guest's mount namespace: the seed's user exists (passwd), /var/lib
// is the guest's own (the readiness marker lives there), the test's own
// directories are mounted where it asked, then sshd runs in the foreground as
// the VM's one process (sh execs it, so the pid stays).
const BOOT_SCRIPT = [
  'set -e',
  'mount --make-rprivate /',
  'mount --bind "$1" /etc/passwd',
  'mount --bind "$2" /var/lib',
  'config="$3"',
  'shift 3',
  'while [ "$#" -gt 1 ]; do mount --bind "$1" "$2"; shift 2; done',
  // The guest's systemctl is a stub that ends this VM on `poweroff`: the host's
  // must never run here. cloud-init's instance id is written only once the stub
  // is in place, and devcluster powers off only a guest that shows the id.
  'if [ -n "${FAKE_GUEST_INSTANCE:-}" ] && mount --bind "$FAKE_GUEST_SYSTEMCTL" /usr/bin/systemctl; then',
  '  mkdir -p /var/lib/cloud/data && printf "%s\\n" "$FAKE_GUEST_INSTANCE" > /var/lib/cloud/data/instance-id',
  'fi',
  // A stalled boot: the kernel printed its first lines and hangs, sshd never starts.
  'if [ "${FAKE_GUEST_STALL:-}" = 1 ]; then echo "fake guest: probing devices"; exec sleep 3600; fi',
  'exec /usr/sbin/sshd -D -e -f "$config"',
].join('\n');

export interface GuestBehaviour {
  /** at-boot: cloud-init finishes at once and writes the readiness marker; never: provisioning hangs. */
  ready: 'at-boot' | 'never';
  /**
   * Host directories the guest sees at existing paths of this machine
   * (/usr/local/bin, /var/log): what a test puts there is what the guest's
   * commands find, as files and programs installed in a real guest.
   */
  mounts?: ReadonlyArray<{ hostDir: string; guestPath: string }>;
  /** The first this many boots hang after a first console line, as a kernel under emulation sometimes does. */
  stalledBoots?: number;
  /** The cloud-init instance id the guest shows: the seed's (default), or another machine's. */
  instance?: 'seed' | 'foreign';
}

/** The fake guest's systemctl: `poweroff` ends the VM's process group, as a guest's shutdown ends its VM. */
const SYSTEMCTL_STUB = [
  '#!/bin/sh',
  'if [ "$1" != poweroff ]; then echo "fake guest: systemctl $* is not emulated" >&2; exit 1; fi',
  'echo "fake guest: powering off" >> /var/lib/poweroff-requests',
  'kill -TERM "-$(cat /var/lib/vm.pgid)"',
  '',
].join('\n');

interface CloudConfig {
  users?: Array<{ name?: string; ssh_authorized_keys?: string[] }>;
  ssh_keys?: { ed25519_private?: string };
  runcmd?: unknown[];
}

/** What the guest's cloud-init takes from the seed: its user, authorized keys, host key and readiness marker. */
async function readSeed(seedIso: string): Promise<{ user: string; authorizedKeys: string[]; hostKey: string; marker: string; instanceId: string }> {
  const r = await run('isoinfo', ['-i', seedIso, '-R', '-x', '/user-data'], { timeoutMs: 10_000, parse: true });
  const meta = parseYaml((await run('isoinfo', ['-i', seedIso, '-R', '-x', '/meta-data'], { timeoutMs: 10_000, parse: true })).stdout) as { 'instance-id'?: string };
  const doc = parseYaml(r.stdout) as CloudConfig;
  const user = doc.users?.[0];
  const touch = (doc.runcmd ?? []).find((c): c is string[] => Array.isArray(c) && c[0] === 'touch');
  if (user?.name === undefined || user.ssh_authorized_keys === undefined || doc.ssh_keys?.ed25519_private === undefined || touch?.[1] === undefined) {
    throw new Error(`fake guest: the seed ${seedIso} lacks a user, keys or a readiness marker:\n${r.stdout}`);
  }
  if (meta['instance-id'] === undefined) throw new Error(`fake guest: the seed ${seedIso} has no instance-id`);
  return { user: user.name, authorizedKeys: user.ssh_authorized_keys, hostKey: doc.ssh_keys.ed25519_private, marker: touch[1], instanceId: meta['instance-id'] };
}

/**
 * Boots the VM: fake cloud-init from the seed, then sshd in its namespace,
 * detached (the VM outlives the devcluster process that started it). Returns
 * once sshd listens: a guest that boots at once.
 */
export async function bootVmProcess(home: string, vm: FakeVm, behaviour: GuestBehaviour): Promise<{ pid: number; startTime: string }> {
  const dir = guestDir(home, vm.name);
  const varlib = join(dir, 'var-lib');
  await mkdir(varlib, { recursive: true });
  const seed = await readSeed(vm.seedIso);
  if (!seed.marker.startsWith('/var/lib/')) throw new Error(`fake guest: the readiness marker ${seed.marker} is outside /var/lib`);
  const marker = join(varlib, seed.marker.slice('/var/lib/'.length));
  const hostKey = join(dir, 'ssh_host_ed25519_key');
  await writeFile(hostKey, seed.hostKey, { mode: 0o600 });
  await writeFile(join(dir, 'authorized_keys'), `${seed.authorizedKeys.join('\n')}\n`, { mode: 0o600 });
  const passwd = (await readFile('/etc/passwd', 'utf8')).split('\n').filter((l) => l !== '' && !l.startsWith(`${seed.user}:`));
  // uid 0 so sshd (StrictModes off) can read the key files in the root-owned test home.
  await writeFile(join(dir, 'passwd'), `${[...passwd, `${seed.user}:x:0:0:devcluster fake guest:/:/bin/sh`].join('\n')}\n`);
  if (behaviour.ready === 'at-boot') {
    await mkdir(join(marker, '..'), { recursive: true });
    await writeFile(marker, '');
  } else {
    await rm(marker, { force: true });
  }
  const systemctl = join(dir, 'systemctl');
  await writeFile(systemctl, SYSTEMCTL_STUB, { mode: 0o755 });
  await rm(join(varlib, 'poweroff-requests'), { force: true });
  const config = join(dir, 'sshd_config');
  await writeFile(config, sshdConfigText({ port: vm.listen.port, listen: vm.listen.host, hostKey, authorizedKeys: join(dir, 'authorized_keys'), user: seed.user }));
  mkdirRunSshd();
  await mkdir(join(vm.serialLog, '..'), { recursive: true });
  await appendFile(vm.serialLog, `fake guest ${vm.name}: boot ${vm.boots + 1}; cloud-init: user ${seed.user}, ${seed.authorizedKeys.length} authorized key(s), marker ${behaviour.ready === 'at-boot' ? 'written' : 'withheld'}\n`);
  const console = openSync(vm.serialLog, 'a');
  let child;
  try {
    const mounts = (behaviour.mounts ?? []).flatMap((m) => [m.hostDir, m.guestPath]);
    child = spawn('unshare', ['--mount', '--', 'sh', '-c', BOOT_SCRIPT, 'fake-guest', join(dir, 'passwd'), varlib, config, ...mounts], {
      detached: true,
      stdio: ['ignore', console, console],
      env: {
        ...process.env,
        FAKE_GUEST_STALL: vm.boots < (behaviour.stalledBoots ?? 0) ? '1' : '0',
        FAKE_GUEST_INSTANCE: behaviour.instance === 'foreign' ? 'i-someone-else' : seed.instanceId,
        FAKE_GUEST_SYSTEMCTL: systemctl,
      },
    });
  } finally {
    closeSync(console);
  }
  child.unref();
  const pid = child.pid;
  if (pid === undefined) throw new Error('fake hypervisor: the VM process did not start');
  let exited: number | null | undefined;
  child.once('exit', (code) => {
    exited = code;
  });
  const startTime = procStat(pid)?.startTime ?? '';
  await writeFile(join(varlib, 'vm.pgid'), `${pid}\n`);
  if (vm.boots < (behaviour.stalledBoots ?? 0)) {
    await hvLog(home, vm.name, `process ${pid} started (boot ${vm.boots + 1}, stalls)`);
    return { pid, startTime };
  }
  const until = Date.now() + 15_000;
  const listening = `Server listening on ${vm.listen.host} port ${vm.listen.port}`;
  while (!readFileSync(vm.serialLog, 'utf8').includes(listening)) {
    if (exited !== undefined || Date.now() > until) {
      if (exited === undefined) process.kill(-pid, 'SIGKILL');
      throw new Error(`fake hypervisor: the guest's sshd did not come up:\n${tail(readFileSync(vm.serialLog, 'utf8'), 15)}`);
    }
    await sleep(10);
  }
  // Only this boot's "listening" line counts on the next boot.
  await appendFile(vm.serialLog, `fake guest ${vm.name}: up (pid ${pid})\n`);
  await hvLog(home, vm.name, `process ${pid} started (boot ${vm.boots + 1})`);
  return { pid, startTime };
}

function mkdirRunSshd(): void {
  // sshd running as root needs its privilege separation directory.
  mkdirSync('/run/sshd', { recursive: true, mode: 0o755 });
}

/** Why the fake hypervisor cannot run here, or undefined when it can. */
export async function fakeHypervisorMissing(): Promise<string | undefined> {
  if (process.platform !== 'linux') return 'the fake hypervisor runs guests in Linux mount namespaces';
  if (process.getuid?.() !== 0) return 'the fake hypervisor needs root (a mount namespace per guest)';
  for (const tool of ['unshare', 'isoinfo', 'qemu-img']) {
    if (!(await commandExists(tool))) return `${tool} is not installed (Debian: util-linux, genisoimage, qemu-utils)`;
  }
  if (!existsSync('/usr/sbin/sshd')) return '/usr/sbin/sshd is missing (Debian: openssh-server)';
  return undefined;
}
