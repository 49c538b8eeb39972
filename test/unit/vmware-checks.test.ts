import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { chmod, mkdir, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { compareVersions, parseProductVersion, parseScState, vmwareChecks } from '../../drivers/vmware/checks.ts';
import type { VmwareHost } from '../../drivers/vmware/host.ts';
import { runChecks } from '../../src/doctor/runner.ts';
import type { CheckResult, DoctorContext, ExecFn } from '../../src/doctor/types.ts';
import { run } from '../../src/host/exec.ts';
import type { RunResult } from '../../src/host/exec.ts';
import { REPO, tempDir } from '../helpers/cli.ts';
import { fakeExec, powershellStdout, testContext } from '../helpers/doctor.ts';

/**
 * The VMware driver's doctor checks through the doctor's runner. vmrun and
 * `vmware -v` are real programs (scripts printing the fixtures); reg.exe,
 * sc.exe, pgrep and PowerShell answer from test/fixtures/vmware.
 */

const FIXTURES = join(REPO, 'test', 'fixtures', 'vmware');
const fx = (name: string) => readFileSync(join(FIXTURES, name), 'utf8');
const dirs: string[] = [];
after(async () => {
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});

type Answer = (args: readonly string[]) => Partial<RunResult> | Error;

/** A folder with a vmrun printing `usage` (or failing `-T ws list` with Player's words) and a `vmware -v`. */
async function vmwareBin(o: { player?: boolean; version?: string } = {}): Promise<string> {
  const dir = await tempDir('vmware-checks-');
  dirs.push(dir);
  const bin = join(dir, 'bin');
  await mkdir(bin);
  const script = [
    '#!/bin/sh',
    `[ $# -eq 0 ] && { cat '${join(FIXTURES, 'vmrun-usage.txt')}'; exit 255; }`,
    o.player === true ? `cat '${join(FIXTURES, 'vmrun-player.txt')}'; exit 255` : `cat '${join(FIXTURES, 'vmrun-list-empty.txt')}'`,
    '',
  ].join('\n');
  await writeFile(join(bin, 'vmrun'), script);
  await writeFile(join(bin, 'vmware'), `#!/bin/sh\ncat '${join(FIXTURES, o.version ?? 'vmware-v-workstation.txt')}'\n`);
  await chmod(join(bin, 'vmrun'), 0o755);
  await chmod(join(bin, 'vmware'), 0o755);
  return bin;
}

function execWith(bin: string | undefined, answers: Record<string, Answer>): ExecFn & { calls: Array<{ command: string; args: readonly string[] }> } {
  const fake = fakeExec(answers);
  const exec = (async (command, args, options) => (bin !== undefined && command.startsWith(bin) ? run(command, args, options) : fake(command, args, options))) as ExecFn & { calls: typeof fake.calls };
  exec.calls = fake.calls;
  return exec;
}

function context(platform: NodeJS.Platform, exec: ExecFn, bin?: string): DoctorContext {
  return testContext({ host: { platform }, driver: 'vmware', exec, env: { PATH: bin ?? '/nonexistent' } });
}

/** Windows, with vmrun given by the vmware-vmrun setting (a Linux script: a Windows path cannot exist here). */
function windows(exec: ExecFn, bin: string): DoctorContext {
  return testContext({ host: { platform: 'win32' }, driver: 'vmware', exec, env: { Path: 'C:\\nowhere' }, settings: { 'vmware-vmrun': join(bin, 'vmrun') } });
}

async function check(id: string, ctx: DoctorContext, host: Partial<VmwareHost> & { networkConfig: string }): Promise<CheckResult> {
  const checks = vmwareChecks((c) => ({ platform: c.host.platform, env: c.env, installDirs: [], leaseFiles: [], ...host }));
  const results = await runChecks(ctx, { checks, only: [id] });
  const r = results.find((x) => x.id === id);
  assert.ok(r !== undefined, `${id} ran`);
  return r;
}

const NET = join(FIXTURES, 'networking-linux');
const pgrep = (running: string[]): Answer => (args) => ({ exitCode: running.includes(args[1] ?? '') ? 0 : 1 });

describe('VMWARE_NOT_INSTALLED', () => {
  test('found on PATH: path, how it was found, vmrun\'s and Workstation\'s versions', async () => {
    const bin = await vmwareBin();
    const r = await check('VMWARE_NOT_INSTALLED', context('linux', execWith(bin, {}), bin), { networkConfig: NET });
    assert.equal(r.status, 'pass');
    assert.equal(r.summary, `${join(bin, 'vmrun')} (found on PATH), vmrun 1.17.0 build-24319021, VMware Workstation 17.6.2`);
  });

  test('missing: fails (fatal) naming every place looked at, with a fix, on this Linux host too', async () => {
    const r = await check('VMWARE_NOT_INSTALLED', context('linux', execWith(undefined, {})), { networkConfig: NET, installDirs: ['/nonexistent/vmware/bin'] });
    assert.equal(r.status, 'fail');
    assert.equal(r.fatal, true);
    assert.equal(r.summary, 'vmrun was not found (looked at PATH; /nonexistent/vmware/bin/vmrun)');
    assert.match(r.fix?.description ?? '', /Workstation Pro/);
    assert.deepEqual(r.related, ['kubernetes/minikube#11307', 'kubernetes/minikube#18088']);
  });

  test('a Mac with Apple silicon fails before vmrun is looked for: the images are x86_64', async () => {
    const bin = await vmwareBin();
    const exec = execWith(bin, {});
    const ctx = testContext({ host: { platform: 'darwin', arch: 'arm64' }, driver: 'vmware', exec, env: { PATH: bin } });
    const r = await check('VMWARE_NOT_INSTALLED', ctx, { networkConfig: NET });
    assert.equal(r.status, 'fail');
    assert.match(r.summary, /Apple silicon \(arm64\).*x86_64/);
    assert.match(r.fix?.description ?? '', /QEMU driver/);
    const intel = testContext({ host: { platform: 'darwin', arch: 'x64' }, driver: 'vmware', exec, env: { PATH: bin } });
    assert.equal((await check('VMWARE_NOT_INSTALLED', intel, { networkConfig: NET })).status, 'pass');
  });

  test('Fusion: its version from the app bundle\'s Info.plist beside vmrun\'s folder; before 12.2 it fails', async () => {
    const bin = await vmwareBin();
    const plist = join(bin, '..', 'Info.plist');
    const exec = execWith(bin, {});
    const mac = () => testContext({ host: { platform: 'darwin', arch: 'x64' }, driver: 'vmware', exec, env: { PATH: bin } });
    await writeFile(plist, fx('fusion-Info.plist'));
    const ok = await check('VMWARE_NOT_INSTALLED', mac(), { networkConfig: NET });
    assert.equal(ok.status, 'pass');
    assert.match(ok.summary, /VMware Fusion 13\.6\.2$/);
    await writeFile(plist, fx('fusion-Info.plist').replace('13.6.2', '12.1.2'));
    const old = await check('VMWARE_NOT_INSTALLED', mac(), { networkConfig: NET });
    assert.equal(old.status, 'fail');
    assert.match(old.summary, /VMware Fusion 12\.1\.2: older than 12\.2\.0$/);
    assert.match(old.fix?.description ?? '', /VMware Fusion 13\.6\.2 or later/);
  });

  test('a Workstation older than the hardware version the driver writes fails', async () => {
    const bin = await vmwareBin({ version: 'vmware-v-player.txt' });
    const r = await check('VMWARE_NOT_INSTALLED', context('linux', execWith(bin, {}), bin), { networkConfig: NET });
    assert.equal(r.status, 'fail');
    assert.match(r.summary, /VMware Player 16\.1\.0: older than 16\.2\.0$/);
  });
});

describe('VMWARE_WORKSTATION_PRO_MISSING', () => {
  test('-T ws accepted passes; Player\'s VIX refusing it fails with Workstation Pro as the fix', async () => {
    const ok = await vmwareBin();
    assert.equal((await check('VMWARE_WORKSTATION_PRO_MISSING', context('linux', execWith(ok, {}), ok), { networkConfig: NET })).status, 'pass');
    const player = await vmwareBin({ player: true });
    const r = await check('VMWARE_WORKSTATION_PRO_MISSING', context('linux', execWith(player, {}), player), { networkConfig: NET });
    assert.equal(r.status, 'fail');
    assert.equal(r.summary, 'vmrun -T ws is refused: Error: The specified version was not found');
    assert.match(r.fix?.description ?? '', /free for personal and commercial use since 17\.6\.2/);
  });
});

describe('vmnet8 and its services', () => {
  test('vmnet8 NAT with DHCP passes with its subnet; host-only or missing fails with the restore command', async () => {
    const bin = await vmwareBin();
    const ctx = context('linux', execWith(bin, { pgrep: pgrep(['vmnet-natd', 'vmnet-dhcpd']) }), bin);
    const good = await check('VMWARE_VMNET8_MISSING', ctx, { networkConfig: NET });
    assert.equal(good.status, 'pass');
    assert.match(good.summary, /^192\.168\.79\.0\/24, NAT on, DHCP on/);
    const hostOnly = await check('VMWARE_VMNET8_MISSING', ctx, { networkConfig: join(FIXTURES, 'networking-vmnet8-hostonly') });
    assert.equal(hostOnly.status, 'fail');
    assert.match(hostOnly.summary, /^vmnet8 is not a NAT network/);
    const none = await check('VMWARE_VMNET8_MISSING', ctx, { networkConfig: join(FIXTURES, 'networking-no-vmnet8') });
    assert.equal(none.status, 'fail');
    assert.deepEqual(none.fix?.commands.map((c) => c.run), ['sudo vmware-networks --start']);
  });

  test('Linux: vmnet-natd and vmnet-dhcpd processes; a stopped one fails', async () => {
    const bin = await vmwareBin();
    const up = await check('VMWARE_NAT_STOPPED', context('linux', execWith(bin, { pgrep: pgrep(['vmnet-natd', 'vmnet-dhcpd']) }), bin), { networkConfig: NET });
    assert.equal(up.status, 'pass');
    const down = await check('VMWARE_NAT_STOPPED', context('linux', execWith(bin, { pgrep: pgrep(['vmnet-dhcpd']) }), bin), { networkConfig: NET });
    assert.equal(down.status, 'fail');
    assert.equal(down.summary, 'not running: vmnet-natd');
  });

  test('Windows: the two services through sc.exe; stopped and not installed are named', async () => {
    const bin = await vmwareBin();
    const sc = (nat: string, dhcp: string): Answer => (args) => ({ stdout: fx(args[1] === 'VMnetDHCP' ? dhcp : nat), exitCode: args[1] === 'VMnetDHCP' || nat !== 'sc-query-missing.txt' ? 0 : 1060 });
    const natConf = join(FIXTURES, 'vmnetnat.conf');
    const run = async (a: Answer) => {
      const exec = execWith(bin, { 'sc.exe': a, reg: () => ({ exitCode: 1 }) });
      const r = await check('VMWARE_NAT_STOPPED', windows(exec, bin), { networkConfig: natConf, platform: 'win32' });
      return { r, exec };
    };
    const up = await run(sc('sc-query-nat-running.txt', 'sc-query-nat-running.txt'));
    assert.equal(up.r.status, 'pass');
    assert.deepEqual(up.exec.calls.filter((c) => c.command === 'sc.exe').map((c) => c.args), [['query', 'VMware NAT Service'], ['query', 'VMnetDHCP']]);
    const down = await run(sc('sc-query-missing.txt', 'sc-query-dhcp-stopped.txt'));
    assert.equal(down.r.status, 'fail');
    assert.equal(down.r.summary, 'not running: VMware NAT Service (not installed), VMnetDHCP (STOPPED)');
    assert.deepEqual(down.r.fix?.commands.map((c) => c.run), ["Start-Service -Name 'VMware NAT Service', 'VMnetDHCP'"]);
    assert.equal(parseScState(fx('sc-query-nat-running.txt')), 'RUNNING');
    assert.equal(parseScState(fx('sc-query-dhcp-stopped.txt')), 'STOPPED');
    assert.equal(parseScState(fx('sc-query-missing.txt')), undefined);
  });
});

describe('VMWARE_HYPERV_CONFLICT', () => {
  test('versions: Workstation 15.5.5 and later run beside Hyper-V', () => {
    assert.equal(parseProductVersion(fx('reg-query-productversion.txt')), '17.6.2');
    assert.equal(parseProductVersion(fx('vmware-v-workstation.txt')), '17.6.2');
    assert.ok(compareVersions('15.5.4', '15.5.5') < 0);
    assert.ok(compareVersions('15.5.5', '15.5.5') === 0);
    assert.ok(compareVersions('16.0.0', '15.5.5') > 0);
    assert.ok(compareVersions('15.10.0', '15.5.5') > 0);
  });

  const ps = (present: boolean): Answer => () => ({ stdout: powershellStdout(String(present)) });
  const reg = (version: string | undefined): Answer => (args) =>
    version !== undefined && args[1]?.includes('WOW6432Node') === true && args[3] === 'ProductVersion'
      ? { stdout: fx('reg-query-productversion.txt').replace('17.6.2.24409262', version) }
      : { exitCode: 1, stdout: fx('reg-query-missing.txt') };
  const hyperv = async (present: boolean, version: string | undefined) => {
    const bin = await vmwareBin();
    const exec = execWith(bin, { 'powershell.exe': ps(present), reg: reg(version) });
    return check('VMWARE_HYPERV_CONFLICT', windows(exec, bin), { networkConfig: join(FIXTURES, 'vmnetnat.conf'), platform: 'win32' });
  };

  test('no hypervisor under Windows passes', async () => {
    const r = await hyperv(false, '17.6.2.24409262');
    assert.equal(r.status, 'pass');
    assert.match(r.summary, /no hypervisor runs under Windows/);
  });

  test('Hyper-V with Workstation 17.6.2 passes (Windows Hypervisor Platform); with 15.5.1 fails with the bcdedit fix; unknown version warns', async () => {
    const ok = await hyperv(true, '17.6.2.24409262');
    assert.equal(ok.status, 'pass');
    assert.match(ok.summary, /Workstation 17\.6\.2 runs its VMs on the Windows Hypervisor Platform/);
    const old = await hyperv(true, '15.5.1.12345');
    assert.equal(old.status, 'fail');
    assert.match(old.summary, /Workstation 15\.5\.1 is older than 15\.5\.5/);
    assert.deepEqual(old.fix?.commands.map((c) => c.run), ['bcdedit /set hypervisorlaunchtype off']);
    assert.deepEqual(old.fix?.requires, ['reboot']);
    const unknown = await hyperv(true, undefined);
    assert.equal(unknown.status, 'warn');
  });
});
