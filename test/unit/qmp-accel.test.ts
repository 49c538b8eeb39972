import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { acceleratorVerdict, bootReachedKernel, cpuCandidates, interpretPausedProbe, pausedProbeArgs, pausedProbeInput, qemuComplaint } from '../../drivers/qemu/accel.ts';
import { parseKernBoottime } from '../../src/host/boot-id.ts';
import type { Exec } from '../../src/host/process.ts';
import { DevclusterError } from '../../src/ui/errors.ts';

const GREETING = '{"QMP": {"version": {"qemu": {"micro": 0, "minor": 2, "major": 9}, "package": ""}, "capabilities": ["oob"]}}';
const answered = (kvm: boolean | undefined) =>
  [
    GREETING,
    '{"return": {}, "id": "caps"}',
    '{"return": {"status": "prelaunch", "singlestep": false, "running": false}, "id": "status"}',
    ...(kvm === undefined ? [] : [`{"return": {"enabled": ${kvm}, "present": true}, "id": "kvm"}`]),
    '{"timestamp": {"seconds": 1, "microseconds": 0}, "event": "SHUTDOWN", "data": {"guest": false, "reason": "host-qmp-quit"}}',
    '{"return": {}, "id": "quit"}',
  ].join('\n');

test('the paused probe: a real option set (no "-qmp none"), commands with ids, KVM asked only for KVM', () => {
  const args = pausedProbeArgs('kvm', 'host', 'x64');
  assert.deepEqual(args, ['-accel', 'kvm', '-cpu', 'host', '-machine', 'q35', '-m', '64', '-S', '-nodefaults', '-display', 'none', '-no-user-config', '-qmp', 'stdio']);
  assert.ok(pausedProbeArgs('hvf', 'host', 'arm64').includes('virt'));
  const input = pausedProbeInput('kvm').trim().split('\n').map((l) => JSON.parse(l) as { execute: string; id: string });
  assert.deepEqual(input.map((c) => c.execute), ['qmp_capabilities', 'query-status', 'query-kvm', 'quit']);
  assert.ok(!pausedProbeInput('whpx').includes('query-kvm'));
});

test('the paused probe is read by reply id: prelaunch status, and for KVM enabled:true', () => {
  assert.equal(interpretPausedProbe('kvm', 0, answered(true), '').ok, true);
  assert.deepEqual(interpretPausedProbe('kvm', 0, answered(false), ''), { ok: false, detail: 'QEMU started without KVM enabled' });
  assert.equal(interpretPausedProbe('whpx', 0, answered(undefined), '').ok, true);
  const refused = interpretPausedProbe('whpx', 1, GREETING, 'qemu-system-x86_64.exe: -accel whpx: WHPX: No accelerator found, hr=00000000');
  assert.deepEqual(refused, { ok: false, detail: '-accel whpx: WHPX: No accelerator found, hr=00000000' });
  const aborted = interpretPausedProbe('kvm', -1, '', "qemu-system-x86_64: warning: host doesn't support requested feature: CPUID.01H:ECX.pni [bit 0]\nqemu-system-x86_64: error: failed to set MSR 0x10a to 0x69\nAborted");
  assert.equal(aborted.detail, 'failed to set MSR 0x10a to 0x69');
  assert.equal(qemuComplaint('', 'fallback'), 'fallback');
});

test('CPU models: WHPX tries host then max; KVM and HVF host; TCG max', () => {
  assert.deepEqual(cpuCandidates('whpx'), ['host', 'max']);
  assert.deepEqual(cpuCandidates('kvm'), ['host']);
  assert.deepEqual(cpuCandidates('hvf'), ['host']);
  assert.deepEqual(cpuCandidates('tcg'), ['max']);
});

test('a test boot counts only when the kernel ran as far as its root device', () => {
  assert.equal(bootReachedKernel('[    1.2] VFS: Unable to mount root fs on unknown-block(0,0)\n'), true);
  assert.equal(bootReachedKernel('[    1.3] Kernel panic - not syncing: VFS'), true);
  assert.equal(bootReachedKernel('SeaBIOS (version 1.16)\nBooting from ROM..'), false);
});

test('kern.boottime parses to seconds.microseconds', () => {
  assert.equal(parseKernBoottime('{ sec = 1764000000, usec = 123456 } Mon Nov 24 10:00:00 2025\n'), '1764000000.123456');
  assert.equal(parseKernBoottime('garbage'), undefined);
});

/**
 * WHPX cannot run on Linux: QEMU's documented WHPX answers are replayed
 * (host refused, max accepted), and the verdict must name max.
 */
test('WHPX: -cpu host refused, -cpu max verified paused: the verdict is whpx with max, cached for this boot', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'devcluster-accel-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const qemu = join(dir, 'qemu-system-x86_64.exe');
  await writeFile(qemu, 'x');
  const cacheFile = join(dir, 'cache', 'qemu-accel.json');
  const seen: string[] = [];
  const exec: Exec = async (command, args) => {
    const cpu = args[args.indexOf('-cpu') + 1] ?? '';
    seen.push(`${args[1]}/${cpu}`);
    if (cpu === 'host') {
      throw new DevclusterError('HOST_COMMAND_FAILED', `${command} exited with code 3`, { details: { stderrTail: 'qemu-system-x86_64.exe: WHPX: Failed to set up partition property (host CPU model), hr=c0350005' } });
    }
    return { command, args, stdout: answered(undefined), stderr: '', exitCode: 0, durationMs: 5 };
  };
  const v = await acceleratorVerdict({ setting: 'auto', qemu, kernel: undefined, cacheFile, platform: 'win32', arch: 'x64', exec, bootId: 'win32:2026-01-01T00:00:00Z' });
  assert.equal(v.accel, 'whpx');
  assert.equal(v.cpu, 'max');
  assert.equal(v.degraded, false);
  assert.deepEqual(seen, ['whpx/host', 'whpx/max']);
  const again = await acceleratorVerdict({ setting: 'auto', qemu, kernel: undefined, cacheFile, platform: 'win32', arch: 'x64', exec, bootId: 'win32:2026-01-01T00:00:00Z' });
  assert.deepEqual({ accel: again.accel, cpu: again.cpu, fromCache: again.hardware?.fromCache }, { accel: 'whpx', cpu: 'max', fromCache: true });
  assert.equal(seen.length, 2, 'a cached verdict starts no QEMU');
  const cache = JSON.parse(await readFile(cacheFile, 'utf8')) as { bootId: string };
  assert.equal(cache.bootId, 'win32:2026-01-01T00:00:00Z');
});

test('WHPX refusing every CPU model while TCG starts falls back to TCG with the reason', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'devcluster-accel-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const qemu = join(dir, 'qemu-system-x86_64.exe');
  await writeFile(qemu, 'x');
  const exec: Exec = async (command, args) => {
    if (args[1] === 'whpx') return { command, args, stdout: GREETING, stderr: 'qemu-system-x86_64.exe: -accel whpx: WHPX: No accelerator found, hr=00000000\n', exitCode: 1, durationMs: 5 };
    return { command, args, stdout: answered(undefined), stderr: '', exitCode: 0, durationMs: 5 };
  };
  const v = await acceleratorVerdict({ setting: 'auto', qemu, kernel: undefined, cacheFile: join(dir, 'c.json'), platform: 'win32', arch: 'x64', exec, bootId: 'b' });
  assert.equal(v.accel, 'tcg');
  assert.equal(v.cpu, 'max');
  assert.equal(v.degraded, true);
  assert.match(v.reason, /WHPX unusable: .*-cpu max.*No accelerator found.*TCG/);
  assert.deepEqual(v.hardware, { accel: 'whpx', usable: false, definitive: true, fromCache: false });
  const forced = await acceleratorVerdict({ setting: 'whpx', qemu, kernel: undefined, cacheFile: join(dir, 'c.json'), platform: 'win32', arch: 'x64', exec, bootId: 'b' });
  assert.equal(forced.accel, 'whpx', 'a forced accelerator is used as set');
  assert.equal(forced.hardware?.usable, false);
});

test('qemu-accel=tcg and a platform without an accelerator start nothing', async () => {
  const exec: Exec = async () => {
    throw new Error('no QEMU may run');
  };
  assert.deepEqual(await acceleratorVerdict({ setting: 'tcg', qemu: 'q', kernel: undefined, cacheFile: '/nonexistent/c.json', exec }), { accel: 'tcg', cpu: 'max', reason: 'software emulation (TCG) set by qemu-accel', degraded: false });
  const none = await acceleratorVerdict({ setting: 'auto', qemu: 'q', kernel: undefined, cacheFile: '/nonexistent/c.json', platform: 'freebsd', exec });
  assert.equal(none.accel, 'tcg');
  assert.equal(none.hardware, undefined);
});
