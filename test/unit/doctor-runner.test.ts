import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { allChecks, categoryOfExitCode, findCheck, registerDriverChecks } from '../../src/doctor/registry.ts';
import { runChecks } from '../../src/doctor/runner.ts';
import { buildReport, reportToJson, summarize } from '../../src/doctor/report.ts';
import { renderReport, summaryLine } from '../../src/doctor/render.ts';
import { applyFixes } from '../../src/doctor/fix.ts';
import { runPreflight } from '../../src/doctor/preflight.ts';
import { errorDefinition, isDevclusterError } from '../../src/ui/errors.ts';
import type { Check, CheckOutcome } from '../../src/doctor/types.ts';
import { captureOutput, fakeExec, powershellStdout, testContext } from '../helpers/doctor.ts';
import { REPO } from '../helpers/cli.ts';
import { loadDriverChecks } from '../../src/doctor/driver-checks.ts';

await loadDriverChecks();

const fixture = (name: string) => readFileSync(join(REPO, 'test', 'fixtures', 'doctor', name), 'utf8');

function check(id: string, outcome: CheckOutcome | (() => Promise<CheckOutcome>), extra: Partial<Check> = {}): Check {
  return {
    id, title: id.toLowerCase(), category: 'host', looksAt: 'a test', exitCode: 30,
    run: typeof outcome === 'function' ? outcome : async () => outcome,
    ...extra,
  };
}

describe('registry', () => {
  test('every check ID is an error ID with the check\'s exit code, in the decade scheme', () => {
    const checks = allChecks();
    assert.ok(checks.length >= 25);
    assert.equal(new Set(checks.map((c) => c.id)).size, checks.length);
    for (const c of checks) {
      const d = errorDefinition(c.id);
      assert.ok(d !== undefined, `${c.id} is not registered`);
      assert.equal(d.exitCode, c.exitCode, c.id);
      assert.equal(d.category, categoryOfExitCode(c.exitCode));
      assert.ok(c.exitCode >= 10, `${c.id}: ${c.exitCode}`);
      for (const r of c.requires ?? []) assert.ok(findCheck(r) !== undefined, `${c.id} requires unknown ${r}`);
    }
  });

  test('checks are in category order, and drivers contribute theirs', () => {
    const order = ['host', 'hypervisor', 'network', 'guest', 'kubernetes', 'tools'];
    const cats = allChecks().map((c) => order.indexOf(c.category));
    assert.deepEqual(cats, [...cats].sort((a, b) => a - b));
    assert.deepEqual(findCheck('QEMU_ACCEL_UNAVAILABLE')?.drivers, ['qemu']);
    registerDriverChecks('testdrv', [check('TESTDRV_PROBE', { status: 'pass', summary: 'ok' }, { category: 'hypervisor', exitCode: 65 })]);
    assert.deepEqual(findCheck('TESTDRV_PROBE')?.drivers, ['testdrv']);
    assert.equal(errorDefinition('TESTDRV_PROBE')?.exitCode, 65);
    // Registering again replaces the driver's set.
    registerDriverChecks('testdrv', []);
    assert.equal(findCheck('TESTDRV_PROBE'), undefined);
    assert.throws(() => registerDriverChecks('other', [check('HOST_DISK_LOW', { status: 'pass', summary: '' })]), /already registered/);
  });
});

describe('runner', () => {
  test('results come back in order, with a crash and a timeout reported as errors, never thrown', async () => {
    const checks = [
      check('A_PASS', { status: 'pass', summary: 'fine' }),
      check('B_CRASH', async () => {
        throw new TypeError('cannot read properties of undefined');
      }),
      check('C_HANG', () => new Promise<CheckOutcome>(() => undefined), { timeoutMs: 50 }),
      check('D_FAIL', { status: 'fail', summary: 'broken' }, { exitCode: 26 }),
    ];
    const results = await runChecks(testContext(), { checks });
    assert.deepEqual(results.map((r) => [r.id, r.status]), [['A_PASS', 'pass'], ['B_CRASH', 'error'], ['C_HANG', 'error'], ['D_FAIL', 'fail']]);
    assert.match(results[1]?.summary ?? '', /could not run: cannot read properties/);
    assert.match(results[2]?.summary ?? '', /did not finish within/);
    assert.equal(summarize(results).exitCode, 26);
  });

  test('a check waits for its prerequisites and is skipped when one fails; named checks pull theirs in unseen', async () => {
    let ranDependent = 0;
    const checks = [
      check('BASE_FAIL', { status: 'fail', summary: 'no' }),
      check('BASE_WARN', { status: 'warn', summary: 'meh' }),
      check('NEEDS_FAIL', async () => ((ranDependent += 1), { status: 'pass', summary: 'x' }), { requires: ['BASE_FAIL'] }),
      check('NEEDS_WARN', { status: 'pass', summary: 'ran' }, { requires: ['BASE_WARN'] }),
    ];
    const results = await runChecks(testContext(), { checks });
    const byId = Object.fromEntries(results.map((r) => [r.id, r]));
    assert.equal(byId['NEEDS_FAIL']?.status, 'skip');
    assert.match(byId['NEEDS_FAIL']?.summary ?? '', /skipped because "base_fail" failed/);
    assert.equal(ranDependent, 0);
    assert.equal(byId['NEEDS_WARN']?.status, 'pass');
    const only = await runChecks(testContext(), { checks, only: ['NEEDS_WARN'] });
    assert.deepEqual(only.map((r) => r.id), ['NEEDS_WARN']);
  });

  test('platform and driver filters; a named check that does not apply says so', async () => {
    const checks = [check('WIN_ONLY', { status: 'pass', summary: '' }, { platforms: ['win32'] }), check('ANY', { status: 'pass', summary: '' })];
    assert.deepEqual((await runChecks(testContext(), { checks })).map((r) => r.id), ['ANY']);
    const named = await runChecks(testContext(), { checks, only: ['WIN_ONLY'] });
    assert.equal(named[0]?.status, 'skip');
    assert.match(named[0]?.summary ?? '', /does not apply to linux/);
  });

  test('muted warnings are flagged and do not count as problems; muted failures still do', async () => {
    const checks = [check('W', { status: 'warn', summary: 'w' }), check('F', { status: 'fail', summary: 'f' })];
    const results = await runChecks(testContext(), { checks, muted: ['W', 'F'] });
    assert.deepEqual(results.map((r) => r.muted), [true, false]);
    const s = summarize(results);
    assert.equal(s.warn, 0);
    assert.equal(s.muted, 1);
    assert.equal(s.fail, 1);
  });

  test('commands a check runs are its evidence, redacted', async () => {
    const exec = fakeExec({ tool: () => ({ stdout: 'token: abcdef.0123456789abcdef\n', exitCode: 0 }) });
    const c = check('EV', { status: 'pass', summary: '' });
    c.run = async (ctx) => {
      await ctx.exec('tool', ['--password', 'hunter2']);
      return { status: 'pass', summary: '' };
    };
    const [r] = await runChecks(testContext({ exec }), { checks: [c] });
    assert.equal(r?.evidence[0]?.command, "tool --password '********'");
    assert.doesNotMatch(r?.evidence[0]?.stdout ?? '', /0123456789abcdef/);
  });
});

describe('platform checks from recorded command output', () => {
  test('Windows: OS version and routes come from PowerShell JSON between markers', async () => {
    const exec = fakeExec({
      'powershell.exe': (args) => {
        const script = Buffer.from(args[args.length - 1] as string, 'base64').toString('utf16le');
        if (script.includes('Win32_OperatingSystem')) return { stdout: powershellStdout(fixture('windows-os.json')) };
        if (script.includes('Get-NetRoute')) return { stdout: powershellStdout(fixture('windows-get-netroute.json')) };
        return new Error(`unexpected script ${script}`);
      },
    });
    const ctx = testContext({ host: { platform: 'win32' }, driver: 'hyperv', exec, settings: { subnet: '192.168.211.0/24' } });
    const results = await runChecks(ctx, { only: ['HOST_OS_UNSUPPORTED', 'NETWORK_SUBNET_CONFLICT'] });
    assert.equal(results[0]?.summary, 'Microsoft Windows 11 Pro (version 10.0.22631, build 22631), 64-bit');
    assert.equal(results[1]?.status, 'fail');
    assert.match(results[1]?.summary ?? '', /192\.168\.211\.0\/24 overlaps 192\.168\.211\.0\/24 via Ethernet 3 \(gateway 10\.64\.0\.1\)/);
    assert.match(results[0]?.evidence[0]?.command ?? '', /^powershell\.exe -NoLogo -NoProfile -NonInteractive -ExecutionPolicy Bypass -Command <<'EOF'\n/);
    assert.equal(results[1]?.exitCode, 71);
  });

  test('macOS: sw_vers and netstat', async () => {
    const exec = fakeExec({ sw_vers: () => ({ stdout: fixture('macos-sw-vers.txt') }), netstat: () => ({ stdout: fixture('macos-netstat-rn.txt') }) });
    const ctx = testContext({ host: { platform: 'darwin', arch: 'arm64' }, exec, cluster: { exists: true, running: false, subnet: '192.168.105.0/24' } });
    const results = await runChecks(ctx, { only: ['HOST_OS_UNSUPPORTED', 'NETWORK_SUBNET_CONFLICT', 'HOST_ARCH_UNSUPPORTED'] });
    assert.deepEqual(results.map((r) => [r.id, r.status]), [['HOST_OS_UNSUPPORTED', 'pass'], ['HOST_ARCH_UNSUPPORTED', 'pass'], ['NETWORK_SUBNET_CONFLICT', 'pass']]);
    assert.equal(results[0]?.summary, 'macOS 14.5 (23F79), arm64');
    const vpn = testContext({ host: { platform: 'darwin', arch: 'arm64' }, exec, cluster: { exists: true, running: false, subnet: '192.168.211.0/24' } });
    const [conflict] = await runChecks(vpn, { only: ['NETWORK_SUBNET_CONFLICT'] });
    assert.match(conflict?.summary ?? '', /overlaps 192\.168\.211\.0\/24 via utun4 \(gateway 10\.8\.0\.1\)/);
    assert.deepEqual(exec.calls.find((c) => c.command === 'netstat')?.args, ['-rn', '-f', 'inet']);
  });

  test('the architecture check accepts x64 and arm64 for every driver (HyperKit\'s Intel-only rule is its own check) and refuses others', async () => {
    const [arm] = await runChecks(testContext({ host: { platform: 'darwin', arch: 'arm64' }, driver: 'hyperkit' }), { only: ['HOST_ARCH_UNSUPPORTED'] });
    assert.equal(arm?.status, 'pass');
    const [ia32] = await runChecks(testContext({ host: { platform: 'linux', arch: 'ia32' }, driver: 'qemu' }), { only: ['HOST_ARCH_UNSUPPORTED'] });
    assert.equal(ia32?.status, 'fail');
  });
});

describe('text output', () => {
  const report = async () => {
    const checks = [
      check('OK_ONE', { status: 'pass', summary: 'all good' }),
      check('WARN_ONE', { status: 'warn', summary: 'hmm', details: ['why it matters'] }, { category: 'network' }),
      check('FAIL_ONE', { status: 'fail', summary: 'broken', fix: { description: 'Repair it.', commands: [{ shell: 'sh', run: 'repair --now', elevated: true }], apply: async () => undefined } }, { exitCode: 38 }),
      check('SKIP_ONE', { status: 'skip', summary: 'no cluster' }, { category: 'guest' }),
    ];
    const ctx = testContext();
    return buildReport(ctx, await runChecks(ctx, { checks }));
  };

  test('grouped by category, with symbols, problems explained, and the closing summary', async () => {
    const cap = captureOutput();
    renderReport(cap.out, await report(), { verbose: false, includeMuted: false });
    const text = cap.stdout();
    assert.match(text, /^Host\n\[✓\] ok_one: +all good\n\[✗\] fail_one: +broken\n {4}FAIL_ONE {2}https:\S+doctor\.md#fail_one\n {4}Fix: Repair it\.\n {6}sh \(as root\) {2}repair --now\n {6}Automatic: devcluster doctor --fix FAIL_ONE$/m);
    assert.match(text, /^Network\n\[!\] warn_one: +hmm\n {4}WARN_ONE .*\n {4}• why it matters$/m);
    assert.match(text, /^Guest\n\[-\] skip_one: +no cluster$/m);
    assert.match(text, /✗ 1 problem, 1 warning; 1 can be fixed automatically: devcluster doctor --fix\n$/);
    assert.ok(!text.includes('\u001b['));
  });

  test('ASCII consoles get [OK] [WARN] [FAIL] [SKIP]', async () => {
    const cap = captureOutput({ NO_COLOR: '1', DEVCLUSTER_ASCII: '1' });
    renderReport(cap.out, await report(), { verbose: false, includeMuted: false });
    const text = cap.stdout();
    for (const box of ['[OK]', '[WARN]', '[FAIL]', '[SKIP]']) assert.ok(text.includes(box), box);
    assert.doesNotMatch(text, /[^\t\n\r -~]/);
    assert.match(text, /^X 1 problem/m);
  });

  test('colour only when allowed: FORCE_COLOR paints, NO_COLOR wins', async () => {
    const colour = captureOutput({ FORCE_COLOR: '1', LANG: 'C.UTF-8' });
    renderReport(colour.out, await report(), { verbose: false, includeMuted: false });
    assert.ok(colour.stdout().includes('\u001b[31m[✗]\u001b[0m'));
    const none = captureOutput({ FORCE_COLOR: '1', NO_COLOR: '1', LANG: 'C.UTF-8' });
    renderReport(none.out, await report(), { verbose: false, includeMuted: false });
    assert.ok(!none.stdout().includes('\u001b['));
  });

  test('summary lines', async () => {
    const cap = captureOutput();
    const r = await report();
    const clean = { ...r, summary: { ...r.summary, fail: 0, warn: 0, fixable: 0, muted: 2, error: 1 } };
    assert.equal(summaryLine(cap.out, clean, false), '✓ No problems found. (1 check could not run; 2 muted warnings hidden (--include-muted shows them))');
    const warnOnly = { ...r, summary: { ...r.summary, fail: 0, warn: 2, fixable: 0, muted: 0, error: 0 } };
    assert.equal(summaryLine(cap.out, warnOnly, false), '! 2 warnings.');
    // Named checks that all do not apply here checked nothing: that is not "no problems".
    const allSkipped = { ...r, summary: { ...r.summary, pass: 0, fail: 0, warn: 0, error: 0, fixable: 0, muted: 0, skip: 2 } };
    assert.equal(summaryLine(cap.out, allSkipped, false), '- No check applied here, so nothing was checked.');
  });

  test('JSON data drops the apply function and says the fix is automatic', async () => {
    const doc = reportToJson(await report()) as { checks: Array<{ id: string; fix?: Record<string, unknown> }> };
    const fix = doc.checks.find((c) => c.id === 'FAIL_ONE')?.fix;
    assert.deepEqual(fix, { description: 'Repair it.', commands: [{ shell: 'sh', run: 'repair --now', elevated: true, target: 'host' }], automatic: true, elevated: false, requires: [], disruptive: false });
  });
});

describe('--fix', () => {
  function fixable(id: string, state: { fixed: boolean }, extra: Partial<NonNullable<CheckOutcome['fix']>> = {}): Check {
    return check(id, async () => (state.fixed ? { status: 'pass', summary: 'now fine' } : { status: 'fail', summary: 'broken', fix: { description: 'Repair it.', commands: [], apply: async () => void (state.fixed = true), ...extra } }));
  }

  test('without a terminal and without --yes nothing changes', async () => {
    const state = { fixed: false };
    const checks = [fixable('FIXME', state)];
    const ctx = testContext();
    const cap = captureOutput();
    const run = await applyFixes(ctx, await runChecks(ctx, { checks }), { yes: false, interactive: false, out: cap.out, checks, confirm: async () => assert.fail('must not ask') });
    assert.equal(state.fixed, false);
    assert.equal(run.outcomes[0]?.status, 'not-run');
    assert.match(cap.stdout(), /nothing was changed\. Run `devcluster doctor --fix --yes`/);
  });

  test('asks once per elevation boundary, applies, and re-runs the check', async () => {
    const a = { fixed: false };
    const b = { fixed: false };
    const c = { fixed: false };
    const checks = [fixable('USER_ONE', a), fixable('USER_TWO', b), fixable('ROOT_ONE', c, { elevated: true })];
    const ctx = testContext();
    const cap = captureOutput();
    const questions: string[] = [];
    const run = await applyFixes(ctx, await runChecks(ctx, { checks }), {
      yes: false, interactive: true, out: cap.out, checks,
      confirm: async (q) => (questions.push(q), !q.includes('root')),
    });
    assert.deepEqual(questions, ['Make these changes?', 'Make these changes as root?']);
    assert.deepEqual(run.outcomes.map((o) => [o.id, o.status]), [['USER_ONE', 'fixed'], ['USER_TWO', 'fixed'], ['ROOT_ONE', 'declined']]);
    assert.deepEqual(run.results.map((r) => r.status), ['pass', 'pass', 'fail']);
    assert.equal(c.fixed, false);
    assert.match(cap.stdout(), /\[✓\] USER_ONE: fixed: now fine/);
  });

  test('a fix that needs a new sign-in is pending, not done; a fix that does not help is reported', async () => {
    const pending = { fixed: false };
    const checks = [
      fixable('NEEDS_RELOGIN', pending, { requires: ['relogin'] }),
      check('STUBBORN', { status: 'fail', summary: 'still broken', fix: { description: 'Try.', commands: [], apply: async () => undefined } }),
    ];
    const ctx = testContext();
    const cap = captureOutput();
    const run = await applyFixes(ctx, await runChecks(ctx, { checks }), { yes: true, interactive: false, out: cap.out, checks, confirm: async () => false });
    assert.deepEqual(run.outcomes.map((o) => o.status), ['pending', 'still-failing']);
    assert.match(cap.stdout(), /NEEDS_RELOGIN: applied; takes effect after you sign out and back in/);
    assert.equal(summarize(run.results).fail, 2);
  });
});

describe('preflight', () => {
  test('throws the first fatal failure as a DevclusterError with the check\'s ID, exit code and advice', async () => {
    // A one-CPU host: the CPU check is fatal and comes before the other fatal checks.
    const ctx = testContext({ settings: { 'qemu-accel': 'kvm' }, host: { cpus: 1 } });
    await assert.rejects(runPreflight(ctx, 'qemu'), (e: unknown) => {
      assert.ok(isDevclusterError(e));
      assert.equal(e.id, 'HOST_CPUS_LOW');
      assert.equal(e.exitCode, 29);
      assert.match(e.message, /^CPUs: this host has 1 CPU; a Kubernetes control plane needs at least 2$/);
      assert.match(e.docs ?? '', /doctor\.md#host_cpus_low$/);
      return true;
    });
  });
});
