import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, writeFile } from 'node:fs/promises';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  evaluateEdition,
  evaluateGetVmSources,
  evaluateHypervisor,
  evaluateNetNats,
  evaluatePresence,
  evaluateRights,
  HYPERV_CHECK_SCRIPTS,
  HYPERV_CHECKS,
  isHomeEdition,
  parseEdition,
  parseHypervisorFacts,
} from '../../drivers/hyperv/checks.ts';
import { hypervRegistryPath } from '../../drivers/hyperv/network.ts';
import { runChecks } from '../../src/doctor/runner.ts';
import type { CheckResult, DoctorContext } from '../../src/doctor/types.ts';
import { decodePowerShell, ERROR_BEGIN, ERROR_END, powershellExecutable, RESULT_BEGIN, RESULT_END } from '../../src/host/powershell.ts';
import { REPO, tempDir } from '../helpers/cli.ts';
import { fakeExec, testContext } from '../helpers/doctor.ts';

/**
 * The Hyper-V doctor checks through the doctor's runner, on a context that
 * says "Windows, driver hyperv". Their PowerShell runs through the driver's
 * runner and src/host/powershell.ts with the doctor's exec: a fake
 * powershell.exe that decodes -EncodedCommand, reads the script's
 * `# devcluster-op:` line and answers with a fixture from
 * test/fixtures/hyperv (README there names each format's source) between
 * the runner's markers, or with an error record.
 */

const fx = (name: string) => readFileSync(join(REPO, 'test', 'fixtures', 'hyperv', name), 'utf8');
const POWERSHELL = powershellExecutable({}, 'win32', 'x64');

type Answer = string | { error: { fullyQualifiedErrorId: string; exceptionType: string; category?: string; message?: string } };

/** A powershell.exe double: op -> fixture name (or an error record); every op the test did not expect fails it loudly. */
function windows(answers: Record<string, Answer>) {
  const seen: string[] = [];
  const exec = fakeExec({
    [POWERSHELL]: (args) => {
      const encoded = args[args.indexOf('-EncodedCommand') + 1] ?? '';
      const script = decodePowerShell(encoded);
      const op = /^# devcluster-op: ([\w-]+)/.exec(script)?.[1] ?? '?';
      seen.push(op);
      const answer = answers[op];
      if (answer === undefined) return { exitCode: 1, stdout: '', stderr: `the test double has no answer for ${op}` };
      if (typeof answer === 'string') return { stdout: `a profile banner\r\n${RESULT_BEGIN}\r\n${fx(answer)}\r\n${RESULT_END}\r\n` };
      return { exitCode: 1, stdout: `${ERROR_BEGIN}\n${JSON.stringify({ category: 'PermissionDenied', message: 'localized text', ...answer.error })}\n${ERROR_END}\n` };
    },
  });
  return { exec, seen };
}

const HEALTHY: Record<string, Answer> = {
  'doctor-edition': 'doctor-edition-pro.json',
  'doctor-hypervisor': 'doctor-hypervisor-running.json',
  'hyperv-presence': 'presence-ok.json',
  'query-rights': 'rights-admin.json',
  'host-network': 'host-network-quiet.json',
  'doctor-get-vm-sources': 'get-vm-sources-hyperv.json',
};

function windowsContext(answers: Record<string, Answer>, o: { settings?: Record<string, string>; home?: string; cluster?: DoctorContext['cluster'] } = {}) {
  const { exec, seen } = windows(answers);
  const ctx = testContext({ driver: 'hyperv', host: { platform: 'win32', arch: 'x64' }, exec, ...(o.settings === undefined ? {} : { settings: o.settings }), ...(o.home === undefined ? {} : { home: o.home }), ...(o.cluster === undefined ? {} : { cluster: o.cluster }) });
  return { ctx, seen };
}

async function runOne(id: string, answers: Record<string, Answer>, o: Parameters<typeof windowsContext>[1] = {}): Promise<CheckResult> {
  const { ctx } = windowsContext(answers, o);
  const results = await runChecks(ctx, { checks: HYPERV_CHECKS, only: [id] });
  const r = results.find((x) => x.id === id);
  assert.ok(r !== undefined, `no result for ${id}`);
  return r;
}

describe('the check set', () => {
  test('ids, order (multipass health check), Windows and hyperv only, every fix command a PowerShell line', async () => {
    assert.deepEqual(
      HYPERV_CHECKS.map((c) => c.id),
      ['HYPERV_EDITION_UNSUPPORTED', 'HYPERV_HYPERVISOR_ABSENT', 'HYPERV_MODULE_MISSING', 'HYPERV_RIGHTS', 'HYPERV_NAT_CONFLICT', 'HYPERV_POWERCLI_SHADOWING', 'HYPERV_VPN_ROUTE'],
    );
    for (const c of HYPERV_CHECKS) {
      assert.deepEqual(c.platforms, ['win32'], c.id);
      assert.deepEqual(c.drivers, ['hyperv'], c.id);
    }
    assert.equal(Object.keys(HYPERV_CHECK_SCRIPTS).length, 6);
  });

  test('on Linux every check is skipped as not applicable, and nothing is run', async () => {
    const { exec, seen } = windows(HEALTHY);
    const ctx = testContext({ driver: 'hyperv', exec });
    const results = await runChecks(ctx, { checks: HYPERV_CHECKS });
    assert.ok(results.every((r) => r.status === 'skip'), JSON.stringify(results.map((r) => [r.id, r.status])));
    assert.deepEqual(seen, []);
  });

  test('a healthy Windows Pro host: every check passes, each query runs once', async () => {
    const { ctx, seen } = windowsContext(HEALTHY);
    const results = await runChecks(ctx, { checks: HYPERV_CHECKS });
    assert.deepEqual(
      results.map((r) => [r.id, r.status]),
      HYPERV_CHECKS.map((c) => [c.id, 'pass']),
    );
    assert.deepEqual([...seen].sort(), Object.keys(HEALTHY).sort());
  });
});

describe('Windows edition', () => {
  test('Home (Core*) fails with the QEMU driver as the fix; Pro passes', async () => {
    const home = await runOne('HYPERV_EDITION_UNSUPPORTED', { ...HEALTHY, 'doctor-edition': 'doctor-edition-home.json' });
    assert.equal(home.status, 'fail');
    assert.equal(home.exitCode, 36);
    assert.match(home.summary, /Home Single Language.*no Hyper-V/);
    assert.deepEqual(home.fix?.commands.map((c) => c.run), ['devcluster config set driver qemu']);
    assert.equal((await runOne('HYPERV_EDITION_UNSUPPORTED', HEALTHY)).status, 'pass');
  });
  test('edition IDs', () => {
    for (const id of ['Core', 'CoreN', 'CoreSingleLanguage', 'CoreCountrySpecific']) assert.ok(isHomeEdition(id), id);
    for (const id of ['Professional', 'Enterprise', 'Education', 'ServerStandard', 'ProfessionalWorkstation']) assert.ok(!isHomeEdition(id), id);
    assert.equal(evaluateEdition(parseEdition([])).status, 'warn');
  });
});

describe('Hyper-V hypervisor', () => {
  test('not enabled: Enable-WindowsOptionalFeature as Administrator, then a reboot', async () => {
    const r = await runOne('HYPERV_HYPERVISOR_ABSENT', { ...HEALTHY, 'doctor-hypervisor': 'doctor-hypervisor-disabled.json' });
    assert.equal(r.status, 'fail');
    assert.equal(r.exitCode, 63);
    assert.deepEqual(r.fix?.commands, [{ shell: 'powershell', run: 'Enable-WindowsOptionalFeature -Online -FeatureName Microsoft-Hyper-V -All', elevated: true }]);
    assert.deepEqual(r.fix?.requires, ['reboot']);
    assert.equal(r.fix?.apply, undefined, 'the doctor does not enable Windows features itself');
  });
  test('enabled but not started (Features as a bare object): restart, else hypervisorlaunchtype auto', () => {
    const r = evaluateHypervisor(parseHypervisorFacts(JSON.parse(fx('doctor-hypervisor-not-started.json'))));
    assert.equal(r.status, 'fail');
    assert.match(r.summary, /not running/);
    assert.deepEqual(r.fix?.commands.map((c) => c.run), ['bcdedit /set hypervisorlaunchtype auto']);
  });
  test('a hypervisor from WSL 2 or Memory Integrity without the Hyper-V feature still fails', () => {
    const r = evaluateHypervisor(parseHypervisorFacts(JSON.parse(fx('doctor-hypervisor-wsl-only.json'))));
    assert.equal(r.status, 'fail');
    assert.match(r.summary, /not for Hyper-V/);
  });
  test('no Hyper-V feature at all: the QEMU driver', () => {
    const r = evaluateHypervisor(parseHypervisorFacts(JSON.parse(fx('doctor-hypervisor-absent.json'))));
    assert.equal(r.status, 'fail');
    assert.deepEqual(r.fix?.commands.map((c) => c.run), ['devcluster config set driver qemu']);
  });
  test('skipped when the edition check fails (the cause is named there)', async () => {
    const { ctx } = windowsContext({ ...HEALTHY, 'doctor-edition': 'doctor-edition-home.json', 'doctor-hypervisor': 'doctor-hypervisor-absent.json' });
    const results = await runChecks(ctx, { checks: HYPERV_CHECKS, only: ['HYPERV_HYPERVISOR_ABSENT'] });
    assert.equal(results.find((r) => r.id === 'HYPERV_HYPERVISOR_ABSENT')?.status, 'skip');
  });
});

describe('Hyper-V module and vmms', () => {
  test('module missing, vmms stopped, vmms absent', async () => {
    const noModule = await runOne('HYPERV_MODULE_MISSING', { ...HEALTHY, 'hyperv-presence': 'presence-no-module.json' });
    assert.equal(noModule.status, 'fail');
    assert.equal(noModule.exitCode, 69);
    assert.match(noModule.summary, /module is not installed/);
    const stopped = await runOne('HYPERV_MODULE_MISSING', { ...HEALTHY, 'hyperv-presence': 'presence-vmms-stopped.json' });
    assert.equal(stopped.status, 'fail');
    assert.match(stopped.summary, /vmms\) is Stopped/);
    assert.deepEqual(stopped.fix?.commands, [{ shell: 'powershell', run: 'Start-Service -Name vmms', elevated: true }]);
    assert.equal(evaluatePresence({ module: true, vmmsStatus: '' }).status, 'fail');
  });
});

describe('Hyper-V rights', () => {
  test('neither right: join Hyper-V Administrators, then sign in again', async () => {
    const r = await runOne('HYPERV_RIGHTS', { ...HEALTHY, 'query-rights': 'rights-none.json' });
    assert.equal(r.status, 'fail');
    assert.equal(r.exitCode, 37);
    assert.match(r.fix?.commands[0]?.run ?? '', /^Add-LocalGroupMember -SID 'S-1-5-32-578' -Member "\$env:USERDOMAIN\\\$env:USERNAME"$/);
    assert.deepEqual(r.fix?.requires, ['relogin']);
  });
  test('Hyper-V Administrators only: a warning for the default network (it creates a switch and a NetNat), a pass on an existing switch', async () => {
    const winnat = await runOne('HYPERV_RIGHTS', { ...HEALTHY, 'query-rights': 'rights-hyperv-admins.json' });
    assert.equal(winnat.status, 'warn');
    assert.match(winnat.summary, /NetNat/);
    const sw = await runOne('HYPERV_RIGHTS', { ...HEALTHY, 'query-rights': 'rights-hyperv-admins.json' }, { settings: { 'hyperv-virtual-switch': 'Default Switch' } });
    assert.equal(sw.status, 'pass');
    assert.equal(evaluateRights({ administrator: false, hypervAdministrators: true }, 'ics', false).status, 'warn');
    assert.equal(evaluateRights({ administrator: false, hypervAdministrators: true }, 'ics', true).status, 'pass');
  });
  test('Hyper-V Administrators only, once the devcluster switch and its address are recorded on this host: a pass, as start allows it', async () => {
    const home = await tempDir();
    await mkdir(join(home, 'network'), { recursive: true });
    const entry = (kind: string, extra: object) => ({ kind, createdByDevcluster: true, createdAt: '2026-01-01T00:00:00Z', users: { devcluster: '' }, ...extra });
    await writeFile(hypervRegistryPath(home), JSON.stringify({ schemaVersion: 1, entries: { 'switch:devcluster': entry('switch', { id: '3f5d2a1e-9c7b-4b2e-8a41-7d0c5e9f1a22', name: 'devcluster' }), 'host-address:3f5d2a1e-9c7b-4b2e-8a41-7d0c5e9f1a22': entry('host-address', { subnet: '172.31.240.0/24', gateway: '172.31.240.1' }) } }));
    const r = await runOne('HYPERV_RIGHTS', { ...HEALTHY, 'query-rights': 'rights-hyperv-admins.json' }, { home });
    assert.equal(r.status, 'pass');
    assert.match(r.summary, /network exists/);
  });
  test("an access-denied error record from the query is the check's error, named by its id", async () => {
    const r = await runOne('HYPERV_RIGHTS', { ...HEALTHY, 'query-rights': { error: { fullyQualifiedErrorId: 'AccessDenied,Microsoft.HyperV.PowerShell.Commands.GetVM', exceptionType: 'Microsoft.HyperV.PowerShell.VirtualizationException' } } });
    assert.equal(r.status, 'error');
    assert.match(r.summary, /AccessDenied/);
  });
});

describe('NetNat conflicts', () => {
  test("Docker's /16 elsewhere and a /25 inside 172.31.240.0/24: start would choose another /24, so no conflict", async () => {
    const r = await runOne('HYPERV_NAT_CONFLICT', { ...HEALTHY, 'host-network': 'host-network-docker-nat.json' });
    assert.equal(r.status, 'pass', r.summary);
    assert.match(r.summary, /172\.31\.242\.0\/24 \(the subnet start would choose now\)/);
  });
  test('a recorded subnet that a foreign NetNat overlaps is a conflict, with that NetNat named', async () => {
    const r = await runOne('HYPERV_NAT_CONFLICT', { ...HEALTHY, 'host-network': 'host-network-docker-nat.json' }, { cluster: { exists: true, running: false, subnet: '172.31.240.0/24' } });
    assert.equal(r.status, 'fail');
    assert.equal(r.exitCode, 73);
    assert.match(r.summary, /"lab" \(172\.31\.240\.128\/25\)/);
    assert.deepEqual(r.fix?.commands, [{ shell: 'powershell', run: "NetNat\\Remove-NetNat -Name 'lab'", elevated: true }]);
  });
  test('the subnet recorded in the host-wide registry counts, and --hyperv-nat-subnet does', async () => {
    const home = await tempDir();
    await mkdir(join(home, 'network'), { recursive: true });
    await writeFile(hypervRegistryPath(home), JSON.stringify({ schemaVersion: 1, entries: { 'host-address:x': { kind: 'host-address', subnet: '172.20.9.0/24', createdByDevcluster: true, createdAt: '2026-01-01T00:00:00Z', users: {} } } }));
    const reuse = await runOne('HYPERV_NAT_CONFLICT', { ...HEALTHY, 'host-network': 'host-network-docker-nat.json' }, { home });
    assert.equal(reuse.status, 'pass');
    assert.match(reuse.summary, /"DockerNAT" already translates the devcluster switch's 172\.20\.9\.0\/24/);
    const setting = await runOne('HYPERV_NAT_CONFLICT', { ...HEALTHY, 'host-network': 'host-network-docker-nat.json' }, { settings: { 'hyperv-nat-subnet': '172.31.240.0/24' } });
    assert.equal(setting.status, 'fail');
    assert.match(setting.summary, /172\.31\.240\.0\/24 \(--hyperv-nat-subnet\)/);
    assert.match(setting.summary, /172\.31\.240\.0\/24 \(--hyperv-nat-subnet\)/);
  });
  test('--hyperv-nat-subnet over a route or an address is refused here as start refuses it', async () => {
    const r = await runOne('HYPERV_NAT_CONFLICT', { ...HEALTHY, 'host-network': 'host-network-docker-nat.json' }, { settings: { 'hyperv-nat-subnet': '192.168.1.0/24' } });
    assert.equal(r.status, 'fail');
    assert.match(r.summary, /192\.168\.1\.0\/24 \(--hyperv-nat-subnet\) is already used on this host: the route 192\.168\.1\.0\/24 via Wi-Fi; the address 192\.168\.1\.23\/24 of Wi-Fi/);
    assert.deepEqual(r.fix?.commands.map((c) => c.run), ['devcluster config set hyperv-nat-subnet auto']);
  });
  test('not applicable with ICS, an existing switch or an external adapter', async () => {
    const modes: Array<Record<string, string>> = [{ 'hyperv-nat': 'ics' }, { 'hyperv-virtual-switch': 'Default Switch' }, { 'hyperv-external-adapter': 'Ethernet' }];
    for (const settings of modes) {
      const r = await runOne('HYPERV_NAT_CONFLICT', HEALTHY, { settings });
      assert.equal(r.status, 'skip', JSON.stringify(settings));
    }
  });
  test('no free /24 left is a failure that offers ICS', () => {
    const r = evaluateNetNats([{ name: 'big', internalPrefix: '172.16.0.0/12', active: true }], undefined);
    assert.equal(r.status, 'fail');
    assert.match(r.details?.join(' ') ?? '', /big 172\.16\.0\.0\/12/);
  });
  test('a NetNat name with quotes is quoted in the fix command', () => {
    const r = evaluateNetNats([{ name: "it's ’ours’", internalPrefix: '172.31.240.0/25', active: true }], { subnet: '172.31.240.0/24', source: 'recorded' });
    assert.equal(r.fix?.commands[0]?.run, "NetNat\\Remove-NetNat -Name 'it''s ’’ours’’'");
  });
});

describe('Get-VM collision', () => {
  test('VMware PowerCLI exporting Get-VM is a warning (devcluster qualifies its calls); Hyper-V alone passes', async () => {
    const r = await runOne('HYPERV_POWERCLI_SHADOWING', { ...HEALTHY, 'doctor-get-vm-sources': 'get-vm-sources-powercli.json' });
    assert.equal(r.status, 'warn');
    assert.match(r.summary, /VMware\.VimAutomation\.Core \(VMware PowerCLI\)/);
    assert.equal(evaluateGetVmSources([]).status, 'pass');
  });
});

describe('VPN routes', () => {
  test('AnyConnect routing 172.31.0.0/16 over a recorded 172.31.240.0/24 fails', async () => {
    const r = await runOne('HYPERV_VPN_ROUTE', { ...HEALTHY, 'host-network': 'host-network-vpn.json' }, { cluster: { exists: true, running: true, subnet: '172.31.240.0/24' } });
    assert.equal(r.status, 'fail');
    assert.equal(r.exitCode, 71);
    assert.match(r.summary, /172\.31\.0\.0\/16 via Ethernet 4/);
    assert.match(r.details?.join(' ') ?? '', /Cisco AnyConnect/);
  });
  test('with nothing recorded, start would choose a subnet outside the VPN route: pass, naming it', async () => {
    const r = await runOne('HYPERV_VPN_ROUTE', { ...HEALTHY, 'host-network': 'host-network-vpn.json' });
    assert.equal(r.status, 'pass');
    assert.match(r.summary, /172\.30\.0\.0\/24/);
  });
  test('ICS mode checks its fixed 192.168.137.0/24', async () => {
    const r = await runOne('HYPERV_VPN_ROUTE', { ...HEALTHY, 'host-network': 'host-network-vpn.json' }, { settings: { 'hyperv-nat': 'ics' } });
    assert.equal(r.status, 'pass');
    assert.match(r.summary, /192\.168\.137\.0\/24/);
  });
  test('a full-tunnel WireGuard (default route through it) warns', async () => {
    const r = await runOne('HYPERV_VPN_ROUTE', { ...HEALTHY, 'host-network': 'host-network-full-tunnel.json' });
    assert.equal(r.status, 'warn');
    assert.match(r.summary, /wg0/);
  });
});
