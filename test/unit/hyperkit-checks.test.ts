import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { chmod, chown, readFile, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { cpuMaker, HYPERKIT_CHECKS, parseSharedNetAddress, SUDOERS_FILE } from '../../drivers/hyperkit/checks.ts';
import { parseTranslated } from '../../drivers/hyperkit/host.ts';
import { firewallVerdict, parseAllowBuiltIn, parseAppBlocked, parseBlockAll, parseGlobalState } from '../../drivers/hyperkit/firewall.ts';
import { MACOS_HOST, sudoersLine } from '../../drivers/hyperkit/host.ts';
import { commandMatches, parseSudoList, sudoVerdict } from '../../drivers/hyperkit/sudo-rules.ts';
import { fixContext, runChecks } from '../../src/doctor/runner.ts';
import type { CheckResult, DoctorContext, ExecFn } from '../../src/doctor/types.ts';
import { run } from '../../src/host/exec.ts';
import type { RunResult } from '../../src/host/exec.ts';
import { REPO, tempDir } from '../helpers/cli.ts';
import { fakeExec, testContext } from '../helpers/doctor.ts';
import { skipUnlessPresent } from '../helpers/prerequisite.ts';

/**
 * The HyperKit driver's doctor checks, each driven through the doctor's
 * runner on a context that says "macOS, x64, driver hyperkit". The macOS
 * commands answer from the fixtures in test/fixtures/hyperkit (their README
 * says where each format comes from); hyperkit itself is a real program
 * (a script printing a captured `hyperkit -v` on stderr) found through the
 * hyperkit-path setting or PATH.
 */

const FIXTURES = join(REPO, 'test', 'fixtures', 'hyperkit');
const fx = (name: string) => readFileSync(join(FIXTURES, name), 'utf8');
const SUDO = MACOS_HOST.sudo;
const FW = '/usr/libexec/ApplicationFirewall/socketfilterfw';
const MAC = { platform: 'darwin' as const, arch: 'x64' };
/** The hyperkit path in the captured sudo listings. */
const CAPTURED_HYPERKIT = '/usr/local/bin/hyperkit';

type Answer = (args: readonly string[]) => Partial<RunResult> | Error;

/** Fixture answers for the macOS commands; a real run for the hyperkit stand-in. */
function macExec(answers: Record<string, Answer>, hyperkit?: string): ExecFn & { calls: Array<{ command: string; args: readonly string[] }> } {
  const fake = fakeExec(answers);
  const exec = (async (command, args, options) => (command === hyperkit ? run(command, args, options) : fake(command, args, options))) as ExecFn & { calls: typeof fake.calls };
  exec.calls = fake.calls;
  return exec;
}

async function fakeHyperkit(versionFixture: string | undefined, exitCode = 0, name = 'hyperkit'): Promise<string> {
  const dir = await tempDir('devcluster-hyperkit-');
  const path = join(dir, name);
  const body = versionFixture === undefined ? 'echo "dyld: Library not loaded: /usr/lib/libSystem.B.dylib" >&2' : `cat '${join(FIXTURES, versionFixture)}' >&2`;
  await writeFile(path, `#!/bin/sh\n${body}\nexit ${exitCode}\n`);
  await chmod(path, 0o755);
  return path;
}

function macContext(exec: ExecFn, o: { hyperkitPath?: string; arch?: string; env?: NodeJS.ProcessEnv } = {}): DoctorContext {
  return testContext({
    host: { ...MAC, ...(o.arch === undefined ? {} : { arch: o.arch }) },
    driver: 'hyperkit',
    exec,
    env: o.env ?? { USER: 'alice', PATH: '/nonexistent' },
    settings: o.hyperkitPath === undefined ? {} : { 'hyperkit-path': o.hyperkitPath },
  });
}

async function check(id: string, ctx: DoctorContext): Promise<CheckResult> {
  const results = await runChecks(ctx, { checks: HYPERKIT_CHECKS, only: [id] });
  const r = results.find((x) => x.id === id);
  assert.ok(r !== undefined, `${id} ran`);
  return r;
}

const commands = (r: CheckResult) => r.fix?.commands.map((c) => c.run) ?? [];

describe('HYPERKIT_CPU_UNSUPPORTED', () => {
  const sysctl = (brand: string | undefined, translated: string | undefined): Answer => (args) => {
    if (args[0] === '-n' && args[1] === 'machdep.cpu.brand_string') return brand === undefined ? { exitCode: 1 } : { stdout: fx(brand) };
    // An Intel Mac has no sysctl.proc_translated: sysctl fails.
    if (args[0] === 'sysctl.proc_translated') return translated === undefined ? { exitCode: 1, stderr: "sysctl: unknown oid 'sysctl.proc_translated'" } : { stdout: fx(translated) };
    return new Error(`unexpected sysctl ${args.join(' ')}`);
  };

  test('Apple silicon (arm64) fails with the QEMU driver as the fix, without asking sysctl', async () => {
    const exec = macExec({ sysctl: sysctl('sysctl-brand-apple.txt', 'sysctl-translated-0.txt') });
    const r = await check('HYPERKIT_CPU_UNSUPPORTED', macContext(exec, { arch: 'arm64' }));
    assert.equal(r.status, 'fail');
    assert.match(r.summary, /^HyperKit runs only on Intel Macs; this Mac has Apple silicon \(arm64\)$/);
    assert.deepEqual(commands(r), ['devcluster config set driver qemu']);
    assert.equal(r.exitCode, 36);
    assert.equal(exec.calls.length, 0);
  });

  test('an Intel Mac passes and names its CPU', async () => {
    const r = await check('HYPERKIT_CPU_UNSUPPORTED', macContext(macExec({ sysctl: sysctl('sysctl-brand-intel.txt', undefined) })));
    assert.equal(r.status, 'pass');
    assert.equal(r.summary, 'Intel(R) Core(TM) i7-9750H CPU @ 2.60GHz (x64)');
    assert.deepEqual(r.evidence.map((e) => e.command), ['sysctl -n machdep.cpu.brand_string', 'sysctl sysctl.proc_translated']);
  });

  test('an x64 Node under Rosetta 2 on Apple silicon fails although the process says x64', async () => {
    const r = await check('HYPERKIT_CPU_UNSUPPORTED', macContext(macExec({ sysctl: sysctl('sysctl-brand-apple.txt', 'sysctl-translated-1.txt') })));
    assert.equal(r.status, 'fail');
    assert.match(r.summary, /Apple silicon \(Apple M1 Pro\); devcluster runs under Rosetta 2, which reports x64$/);
    assert.deepEqual(commands(r), ['devcluster config set driver qemu']);
  });

  test("Rosetta's VirtualApple brand fails even when proc_translated cannot be read", async () => {
    const r = await check('HYPERKIT_CPU_UNSUPPORTED', macContext(macExec({ sysctl: sysctl('sysctl-brand-rosetta.txt', undefined) })));
    assert.equal(r.status, 'fail');
    assert.match(r.summary, /VirtualApple @ 2\.50GHz processor/);
  });

  test('an unreadable brand on x64 still passes, saying so', async () => {
    const r = await check('HYPERKIT_CPU_UNSUPPORTED', macContext(macExec({ sysctl: sysctl(undefined, 'sysctl-translated-0.txt') })));
    assert.equal(r.status, 'pass');
    assert.equal(r.summary, 'x64 (the CPU brand could not be read)');
  });

  test('readers', () => {
    assert.equal(cpuMaker(fx('sysctl-brand-intel.txt')), 'intel');
    assert.equal(cpuMaker(fx('sysctl-brand-apple.txt')), 'apple');
    assert.equal(cpuMaker(fx('sysctl-brand-rosetta.txt')), 'apple');
    assert.equal(cpuMaker('Pentium'), undefined);
    assert.equal(parseTranslated(fx('sysctl-translated-1.txt')), true);
    assert.equal(parseTranslated(fx('sysctl-translated-0.txt')), false);
    assert.equal(parseTranslated(''), undefined);
  });
});

describe('HYPERKIT_NOT_INSTALLED', () => {
  test('a current hyperkit passes with its version and path (the version is read from stderr)', async () => {
    const hk = await fakeHyperkit('hyperkit-v-new.txt');
    const r = await check('HYPERKIT_NOT_INSTALLED', macContext(macExec({}, hk), { hyperkitPath: hk }));
    assert.equal(r.status, 'pass');
    assert.equal(r.summary, `hyperkit v0.20210107-2-g2f061e (${hk})`);
  });

  test('found on PATH with hyperkit-path=auto', async () => {
    const hk = await fakeHyperkit('hyperkit-v-new.txt');
    const dir = hk.slice(0, hk.lastIndexOf('/'));
    const r = await check('HYPERKIT_NOT_INSTALLED', macContext(macExec({}, hk), { env: { USER: 'alice', PATH: dir } }));
    assert.equal(r.status, 'pass');
    assert.match(r.summary, new RegExp(`\\(${hk.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')}\\)$`));
  });

  test('Docker Desktop\'s com.docker.hyperkit is found under its own name', async () => {
    const hk = await fakeHyperkit('hyperkit-v-new.txt', 0, 'com.docker.hyperkit');
    const dir = hk.slice(0, hk.lastIndexOf('/'));
    const r = await check('HYPERKIT_NOT_INSTALLED', macContext(macExec({}, hk), { env: { USER: 'alice', PATH: dir } }));
    assert.equal(r.status, 'pass');
    assert.match(r.summary, /com\.docker\.hyperkit\)$/);
  });

  test('a hyperkit older than v0.20190201 warns', async () => {
    const hk = await fakeHyperkit('hyperkit-v-old.txt');
    const r = await check('HYPERKIT_NOT_INSTALLED', macContext(macExec({}, hk), { hyperkitPath: hk }));
    assert.equal(r.status, 'warn');
    assert.equal(r.summary, `hyperkit 0.20180403 (${hk}) is older than v0.20190201`);
  });

  test('a version without a date warns that it cannot be read', async () => {
    const hk = await fakeHyperkit('hyperkit-v-garbage.txt');
    const r = await check('HYPERKIT_NOT_INSTALLED', macContext(macExec({}, hk), { hyperkitPath: hk }));
    assert.equal(r.status, 'warn');
    assert.equal(r.summary, `${hk} printed no version devcluster can read`);
  });

  test('a hyperkit that fails to run fails', async () => {
    const hk = await fakeHyperkit(undefined, 134);
    const r = await check('HYPERKIT_NOT_INSTALLED', macContext(macExec({}, hk), { hyperkitPath: hk }));
    assert.equal(r.status, 'fail');
    assert.equal(r.summary, `${hk} does not run: \`${hk} -v\` exited with code 134`);
  });

  test('a hyperkit-path that is not there fails with an honest fix: no Homebrew formula, the QEMU driver or a hyperkit you have', async () => {
    const r = await check('HYPERKIT_NOT_INSTALLED', macContext(macExec({}), { hyperkitPath: '/nonexistent/hyperkit' }));
    assert.equal(r.status, 'fail');
    assert.equal(r.summary, 'hyperkit-path /nonexistent/hyperkit is not an executable file');
    assert.match(r.details.join('\n'), /Homebrew disabled its hyperkit formula in 2025/);
    assert.deepEqual(commands(r), ['devcluster config set driver qemu', 'devcluster config set hyperkit-path /path/to/hyperkit']);
    assert.equal(r.fatal, true);
    assert.equal(r.exitCode, 65);
  });

  test('nothing on PATH or in the install folders fails', async () => {
    const r = await check('HYPERKIT_NOT_INSTALLED', macContext(macExec({}), { env: { USER: 'alice', PATH: await tempDir() } }));
    assert.equal(r.status, 'fail');
    assert.equal(r.summary, 'hyperkit was not found on PATH, in /usr/local/bin or in Docker Desktop');
  });
});

describe('HYPERKIT_SUDO_NOT_CONFIGURED', () => {
  /**
   * sudo answering from a captured listing (with the captured hyperkit path
   * replaced by the stand-in's) and, for `-l <command>`, what the real sudo
   * answered for the same sudoers file.
   */
  function sudo(listing: string | undefined, permits: { hyperkit: boolean; kill: boolean }, hk: string): Answer {
    return (args) => {
      if (args.join(' ') === '-n -k -l') {
        return listing === undefined ? { exitCode: 1, stderr: fx('sudo-password-required.stderr.txt') } : { stdout: fx(listing).replaceAll(CAPTURED_HYPERKIT, hk) };
      }
      if (args.slice(0, 3).join(' ') === '-n -k -l') {
        const argv = args.slice(3);
        const ok = argv[0] === hk ? permits.hyperkit : ['/bin/kill -TERM 1', '/bin/kill -KILL 1'].includes(argv.join(' ')) ? permits.kill : false;
        // Allowed: sudo prints the command line it would run (captured for kill).
        return ok ? { stdout: argv[0] === hk ? `${hk}\n` : fx('sudo-l-command-allowed.txt').replace('-TERM', argv[1] ?? '') } : { exitCode: 1 };
      }
      return new Error(`unexpected sudo ${args.join(' ')}`);
    };
  }

  async function sudoCheck(listing: string | undefined, permits = { hyperkit: true, kill: true }) {
    const hk = await fakeHyperkit('hyperkit-v-new.txt');
    const exec = macExec({ [SUDO]: sudo(listing, permits, hk) }, hk);
    return { hk, exec, r: await check('HYPERKIT_SUDO_NOT_CONFIGURED', macContext(exec, { hyperkitPath: hk })) };
  }

  for (const listing of ['sudo-l-nopasswd.txt', 'sudo-l-nopasswd-terminal.txt', 'sudo-l-admin-then-nopasswd.txt']) {
    test(`${listing}: both run without a password (as the real sudo did)`, async () => {
      const { hk, r, exec } = await sudoCheck(listing);
      assert.equal(r.status, 'pass', r.summary);
      assert.equal(r.summary, `sudo runs ${hk}, /bin/kill -TERM and /bin/kill -KILL as root without a password`);
      assert.deepEqual(
        exec.calls.filter((c) => c.command === SUDO).map((c) => c.args.join(' ')),
        ['-n -k -l', `-n -k -l ${hk}`, '-n -k -l /bin/kill -TERM 1', '-n -k -l /bin/kill -KILL 1'],
      );
    });
  }

  test('a NOPASSWD rule followed by the admin rule: the admin rule matches last and asks for a password', async () => {
    const { hk, r } = await sudoCheck('sudo-l-nopasswd-then-admin.txt');
    assert.equal(r.status, 'fail');
    assert.equal(r.summary, `sudo asks for a password for ${hk}, asks for a password for /bin/kill -TERM and asks for a password for /bin/kill -KILL`);
  });

  test('NOPASSWD for hyperkit only: stopping the VM would ask for a password', async () => {
    const { r } = await sudoCheck('sudo-l-hyperkit-only.txt');
    assert.equal(r.status, 'fail');
    assert.equal(r.summary, 'sudo asks for a password for /bin/kill -TERM and asks for a password for /bin/kill -KILL');
  });

  test('another program\'s NOPASSWD rule (Lima\'s socket_vmnet) is not mistaken for ours, although `sudo -l <command>` says "permitted"', async () => {
    const { hk, r } = await sudoCheck('sudo-l-other-nopasswd.txt');
    assert.equal(r.status, 'fail');
    assert.equal(r.summary, `sudo asks for a password for ${hk}, asks for a password for /bin/kill -TERM and asks for a password for /bin/kill -KILL`);
  });

  test('a rule that denies kill fails as "not allowed"', async () => {
    const { r } = await sudoCheck('sudo-l-kill-negated.txt', { hyperkit: true, kill: false });
    assert.equal(r.status, 'fail');
    assert.equal(r.summary, 'sudo is not allowed for /bin/kill -TERM and is not allowed for /bin/kill -KILL');
  });

  test('sudo -l answering "permitted" cannot override a listing sudo itself refuses to run', async () => {
    const { hk, r } = await sudoCheck('sudo-l-nopasswd.txt', { hyperkit: false, kill: true });
    assert.equal(r.status, 'fail');
    assert.equal(r.summary, `sudo is not allowed for ${hk}`);
  });

  test('no password-less rule at all fails with the sudoers line and a visudo-checked install as the fix', async () => {
    const { hk, r } = await sudoCheck(undefined);
    assert.equal(r.status, 'fail');
    assert.equal(r.summary, 'sudo asks for a password: no sudo rule lets this user run hyperkit without one');
    const line = `alice ALL=(root) NOPASSWD: ${hk}, /bin/kill -TERM *, /bin/kill -KILL *`;
    assert.equal(line, sudoersLine('alice', hk, MACOS_HOST));
    assert.deepEqual(commands(r), [
      `f=$(mktemp) && printf '%s\\n' '${line}' > "$f" && sudo visudo -c -f "$f" && sudo install -m 0440 -o root -g wheel "$f" ${SUDOERS_FILE}; rm -f "$f"`,
    ]);
    assert.equal(r.fix?.elevated, true);
    assert.equal(typeof r.fix?.apply, 'function');
    assert.equal(r.exitCode, 67);
  });

  test('the sudoers line the fix installs is accepted by the real visudo', async (t) => {
    const missing = existsSync('/usr/sbin/visudo') ? undefined : 'visudo (/usr/sbin/visudo)';
    if (skipUnlessPresent(missing)) return t.skip(missing);
    const file = join(await tempDir(), 'devcluster-hyperkit');
    await writeFile(file, `${sudoersLine('alice', '/usr/local/bin/hyperkit', MACOS_HOST)}\n`, { mode: 0o440 });
    const ok = await run('/usr/sbin/visudo', ['-c', '-f', file], { okExitCodes: [1] });
    assert.equal(ok.exitCode, 0, ok.stdout + ok.stderr);
    // The same check refuses a broken line, so the test above can fail.
    await writeFile(file, 'alice ALL=(root) NOPASSWD /bin/kill\n', { mode: 0o440 });
    assert.equal((await run('/usr/sbin/visudo', ['-c', '-f', file], { okExitCodes: [1] })).exitCode, 1);
  });

  test('--fix: visudo checks a private copy, the file is staged under a name sudo ignores, checked again, then renamed', async () => {
    const { hk, r } = await sudoCheck(undefined);
    const seen: Array<{ command: string; args: readonly string[]; content?: string }> = [];
    const elevated = (async (command: string, args: readonly string[]) => {
      const content = command === '/usr/sbin/visudo' && !String(args[2]).startsWith('/etc/') ? await readFile(String(args[2]), 'utf8') : undefined;
      seen.push({ command, args, ...(content === undefined ? {} : { content }) });
      return { command, args, stdout: '', stderr: '', exitCode: 0, durationMs: 1 };
    }) as ExecFn;
    const ctx = { ...macContext(macExec({}), { hyperkitPath: hk }), execElevated: elevated };
    await r.fix?.apply?.(fixContext(ctx, []));
    const tmp = String(seen[0]?.args[2]);
    assert.deepEqual(seen.map((s) => [s.command, ...s.args].join(' ')), [
      `/usr/sbin/visudo -c -f ${tmp}`,
      '/usr/bin/install -d -m 0755 -o root -g wheel /etc/sudoers.d',
      `/usr/bin/install -m 0440 -o root -g wheel ${tmp} ${SUDOERS_FILE}.new`,
      `/usr/sbin/visudo -c -f ${SUDOERS_FILE}.new`,
      `/bin/mv -f ${SUDOERS_FILE}.new ${SUDOERS_FILE}`,
    ]);
    assert.equal(seen[0]?.content, `alice ALL=(root) NOPASSWD: ${hk}, /bin/kill -TERM *, /bin/kill -KILL *\n`);
    assert.equal(existsSync(tmp), false, 'the private copy is removed');
  });

  test('--fix: a line visudo rejects installs nothing', async () => {
    const { hk, r } = await sudoCheck(undefined);
    const seen: string[] = [];
    const elevated = (async (command: string) => {
      seen.push(command);
      throw new Error('visudo: syntax error');
    }) as ExecFn;
    const ctx = { ...macContext(macExec({}), { hyperkitPath: hk }), execElevated: elevated };
    await assert.rejects(async () => r.fix?.apply?.(fixContext(ctx, [])), /syntax error/);
    assert.deepEqual(seen, ['/usr/sbin/visudo']);
  });

  test('skipped when hyperkit is not installed', async () => {
    const results = await runChecks(macContext(macExec({}), { hyperkitPath: '/nonexistent/hyperkit' }), { checks: HYPERKIT_CHECKS, only: ['HYPERKIT_SUDO_NOT_CONFIGURED'] });
    assert.equal(results[0]?.status, 'skip');
    assert.match(results[0]?.summary ?? '', /HyperKit" failed/);
  });
});

describe('HYPERKIT_BINARY_UNSAFE', () => {
  test('a hyperkit root owns, in directories only root may change, passes', async () => {
    const hk = await fakeHyperkit('hyperkit-v-new.txt');
    const r = await check('HYPERKIT_BINARY_UNSAFE', macContext(macExec({}, hk), { hyperkitPath: hk }));
    assert.equal(r.status, 'pass', r.summary);
  });

  test('a hyperkit in a directory another user owns, or reached through such a symlink, fails with a root-owned copy as the fix', { skip: skipUnlessPresent(process.getuid?.() !== 0 ? 'changing owners needs root' : false) }, async () => {
    const hk = await fakeHyperkit('hyperkit-v-new.txt');
    const userDir = await tempDir('devcluster-hyperkit-user-');
    await chown(userDir, 1000, 1000);
    const viaLink = join(userDir, 'hyperkit');
    await symlink(hk, viaLink);
    const linked = await check('HYPERKIT_BINARY_UNSAFE', macContext(macExec({}, viaLink), { hyperkitPath: viaLink }));
    assert.equal(linked.status, 'fail');
    assert.ok(linked.details?.some((d) => d === `${userDir} belongs to uid 1000, not root`), linked.details?.join('\n'));
    assert.deepEqual(linked.fix?.commands.map((c) => c.run), [
      `sudo install -d -o root -g wheel -m 755 /opt/devcluster/bin && sudo install -o root -g wheel -m 755 ${viaLink} /opt/devcluster/bin/hyperkit`,
      'devcluster config set hyperkit-path /opt/devcluster/bin/hyperkit',
      'alice ALL=(root) NOPASSWD: /opt/devcluster/bin/hyperkit, /bin/kill -TERM *, /bin/kill -KILL *',
    ]);
    await chmod(hk, 0o777);
    const writable = await check('HYPERKIT_BINARY_UNSAFE', macContext(macExec({}, hk), { hyperkitPath: hk }));
    assert.equal(writable.status, 'fail');
    assert.ok(writable.details?.includes(`${hk} is writable by its group or by everyone`), writable.details?.join('\n'));
  });
});

describe('the sudo listing reader', () => {
  test('a wrapped listing from a terminal reads the same as the one from a pipe', () => {
    assert.deepEqual(parseSudoList(fx('sudo-l-nopasswd-terminal.txt')), parseSudoList(fx('sudo-l-nopasswd.txt')));
    assert.deepEqual(parseSudoList(fx('sudo-l-nopasswd.txt')), [
      { asRoot: true, command: '/usr/local/bin/hyperkit', nopasswd: true },
      { asRoot: true, command: '/bin/kill -TERM *', nopasswd: true },
      { asRoot: true, command: '/bin/kill -KILL *', nopasswd: true },
    ]);
  });

  test('runas, two tags and escapes', () => {
    assert.deepEqual(parseSudoList(fx('sudo-l-other-nopasswd.txt')), [
      { asRoot: true, command: 'ALL', nopasswd: false },
      { asRoot: true, command: '/opt/socket_vmnet/bin/socket_vmnet --vmnet-gateway=192.168.105.1 /private/var/run/socket_vmnet', nopasswd: true },
    ]);
    assert.deepEqual(parseSudoList('User a may run the following commands on h:\n    (ALL, !root) NOPASSWD: /bin/ls\n    (www) NOPASSWD: /bin/kill\n'), [
      { asRoot: false, command: '/bin/ls', nopasswd: true },
      { asRoot: false, command: '/bin/kill', nopasswd: true },
    ]);
    assert.deepEqual(parseSudoList('User a may run the following commands on h:\n    (root) NOPASSWD: /bin/ls, PASSWD: /bin/kill\n'), [
      { asRoot: true, command: '/bin/ls', nopasswd: true },
      { asRoot: true, command: '/bin/kill', nopasswd: false },
    ]);
  });

  test('command matching follows sudoers', () => {
    assert.equal(commandMatches('ALL', ['/bin/kill', '-TERM', '1']), true);
    assert.equal(commandMatches('/bin/kill', ['/bin/kill', '-TERM', '1']), true);
    assert.equal(commandMatches('/bin/kill -TERM *', ['/bin/kill', '-TERM', '1']), true);
    assert.equal(commandMatches('/bin/kill -KILL *', ['/bin/kill', '-TERM', '1']), false);
    assert.equal(commandMatches('/bin/kill ""', ['/bin/kill', '-TERM', '1']), false);
    assert.equal(commandMatches('/bin/', ['/bin/kill', '-TERM', '1']), true);
    assert.equal(commandMatches('/usr/bin/', ['/bin/kill']), false);
    assert.equal(commandMatches('/usr/local/bin/hyper*', ['/usr/local/bin/hyperkit']), true);
    assert.equal(commandMatches('!/bin/kill', ['/bin/kill', '-TERM', '1']), true);
    assert.equal(sudoVerdict(parseSudoList(fx('sudo-l-kill-negated.txt')), ['/bin/kill', '-TERM', '1']), 'denied');
    assert.equal(sudoVerdict([], ['/bin/kill']), 'unknown');
  });
});

describe('HYPERKIT_BOOTPD_BLOCKED', () => {
  function firewall(files: { state: string; blockAll?: string; allowSigned?: string; app?: string }): Answer {
    return (args) => {
      const file = { '--getglobalstate': files.state, '--getblockall': files.blockAll, '--getallowsigned': files.allowSigned, '--getappblocked': files.app }[args[0] ?? ''];
      if (args[0] === '--getappblocked' && args[1] !== '/usr/libexec/bootpd') return new Error(`asked about ${args[1]}`);
      return file === undefined ? new Error(`unexpected socketfilterfw ${args.join(' ')}`) : { stdout: fx(file) };
    };
  }
  const fwCheck = async (files: Parameters<typeof firewall>[0]) => {
    const exec = macExec({ [FW]: firewall(files) });
    return { exec, r: await check('HYPERKIT_BOOTPD_BLOCKED', macContext(exec)) };
  };
  const ALLOW = [`sudo ${FW} --add /usr/libexec/bootpd`, `sudo ${FW} --unblockapp /usr/libexec/bootpd`];

  test('firewall off: passes after one question', async () => {
    const { r, exec } = await fwCheck({ state: 'socketfilterfw-globalstate-disabled.txt' });
    assert.equal(r.status, 'pass');
    assert.equal(r.summary, 'the application firewall is off');
    assert.deepEqual(exec.calls.map((c) => c.args.join(' ')), ['--getglobalstate']);
  });

  test('firewall on, bootpd without a rule but built-in signed software allowed (macOS 15): passes', async () => {
    const { r } = await fwCheck({ state: 'socketfilterfw-globalstate-enabled.txt', blockAll: 'socketfilterfw-blockall-disabled.txt', allowSigned: 'socketfilterfw-allowsigned-enabled.txt', app: 'socketfilterfw-appblocked-unlisted.txt' });
    assert.equal(r.status, 'pass');
    assert.match(r.summary, /automatically allows built-in signed software/);
  });

  test('firewall on, bootpd permitted by a rule: passes', async () => {
    const { r } = await fwCheck({ state: 'socketfilterfw-globalstate-enabled.txt', blockAll: 'socketfilterfw-blockall-disabled.txt', allowSigned: 'socketfilterfw-allowsigned-disabled.txt', app: 'socketfilterfw-appblocked-permitted.txt' });
    assert.equal(r.status, 'pass');
    assert.match(r.summary, /has a rule that allows \/usr\/libexec\/bootpd/);
  });

  test('a rule that blocks bootpd fails with the socketfilterfw commands that allow it', async () => {
    const { r } = await fwCheck({ state: 'socketfilterfw-globalstate-enabled.txt', blockAll: 'socketfilterfw-blockall-disabled.txt', allowSigned: 'socketfilterfw-allowsigned-enabled.txt', app: 'socketfilterfw-appblocked-blocked.txt' });
    assert.equal(r.status, 'fail');
    assert.equal(r.summary, 'bootpd cannot give the VM an address: the firewall has a rule that blocks incoming connections to /usr/libexec/bootpd');
    assert.deepEqual(commands(r), ALLOW);
    assert.equal(r.exitCode, 75);
    assert.equal(r.fatal, false);
  });

  test('no rule and built-in signed software not allowed: fails', async () => {
    const { r } = await fwCheck({ state: 'socketfilterfw-globalstate-enabled.txt', blockAll: 'socketfilterfw-blockall-disabled.txt', allowSigned: 'socketfilterfw-allowsigned-disabled.txt', app: 'socketfilterfw-appblocked-unlisted.txt' });
    assert.equal(r.status, 'fail');
    assert.deepEqual(commands(r), ALLOW);
  });

  test('"block all incoming connections" warns and offers to turn it off', async () => {
    const { r } = await fwCheck({ state: 'socketfilterfw-globalstate-enabled.txt', blockAll: 'socketfilterfw-blockall-enabled.txt', allowSigned: 'socketfilterfw-allowsigned-enabled.txt', app: 'socketfilterfw-appblocked-permitted.txt' });
    assert.equal(r.status, 'warn');
    assert.deepEqual(commands(r), [`sudo ${FW} --setblockall off`, ...ALLOW]);
  });

  test('essential-services-only mode (State = 2) warns the same way', async () => {
    const { r } = await fwCheck({ state: 'socketfilterfw-globalstate-essential.txt', blockAll: 'socketfilterfw-blockall-disabled.txt', allowSigned: 'socketfilterfw-allowsigned-enabled.txt', app: 'socketfilterfw-appblocked-unlisted.txt' });
    assert.equal(r.status, 'warn');
    assert.match(r.summary, /blocks all incoming connections except those of essential services/);
  });

  test('answers it does not know (a managed Mac) warn rather than guess', async () => {
    const m = 'socketfilterfw-managed.txt';
    const on = await fwCheck({ state: 'socketfilterfw-globalstate-enabled.txt', blockAll: m, allowSigned: m, app: m });
    assert.equal(on.r.status, 'warn');
    assert.match(on.r.summary, /^cannot tell whether the firewall lets bootpd answer: the firewall is on/);
    const unknownState = await fwCheck({ state: m });
    assert.equal(unknownState.r.status, 'warn');
    assert.match(unknownState.r.summary, /--getglobalstate gave an answer devcluster does not know/);
  });

  test('--fix runs --add (whatever it answers) and then --unblockapp as root', async () => {
    const { r } = await fwCheck({ state: 'socketfilterfw-globalstate-enabled.txt', blockAll: 'socketfilterfw-blockall-disabled.txt', allowSigned: 'socketfilterfw-allowsigned-enabled.txt', app: 'socketfilterfw-appblocked-blocked.txt' });
    const seen: string[] = [];
    const elevated = (async (command: string, args: readonly string[], options?: { okExitCodes?: readonly number[] }) => {
      seen.push(`${command} ${args.join(' ')} ok=${options?.okExitCodes?.length ?? 0}`);
      return { command, args, stdout: '', stderr: '', exitCode: 0, durationMs: 1 };
    }) as ExecFn;
    await r.fix?.apply?.(fixContext({ ...macContext(macExec({})), execElevated: elevated }, []));
    assert.deepEqual(seen, [`${FW} --add /usr/libexec/bootpd ok=255`, `${FW} --unblockapp /usr/libexec/bootpd ok=0`]);
  });

  test('readers', () => {
    assert.equal(parseGlobalState(fx('socketfilterfw-globalstate-enabled.txt')), 1);
    assert.equal(parseGlobalState(fx('socketfilterfw-globalstate-disabled.txt')), 0);
    assert.equal(parseGlobalState(fx('socketfilterfw-globalstate-essential.txt')), 2);
    assert.equal(parseGlobalState(fx('socketfilterfw-managed.txt')), undefined);
    assert.equal(parseBlockAll(fx('socketfilterfw-blockall-enabled.txt')), true);
    assert.equal(parseBlockAll(fx('socketfilterfw-blockall-disabled.txt')), false);
    assert.equal(parseBlockAll(fx('socketfilterfw-managed.txt')), undefined);
    assert.equal(parseAllowBuiltIn(fx('socketfilterfw-allowsigned-enabled.txt')), true);
    assert.equal(parseAllowBuiltIn(fx('socketfilterfw-allowsigned-disabled.txt')), false);
    assert.equal(parseAppBlocked(fx('socketfilterfw-appblocked-blocked.txt')), 'blocked');
    assert.equal(parseAppBlocked(fx('socketfilterfw-appblocked-permitted.txt')), 'permitted');
    assert.equal(parseAppBlocked(fx('socketfilterfw-appblocked-unlisted.txt')), 'unlisted');
    assert.equal(parseAppBlocked('The application /usr/libexec/bootpd is blocked from incoming connections'), 'blocked');
    assert.equal(parseAppBlocked('Incoming connection to /usr/libexec/bootpd is not blocked.'), 'permitted');
    assert.equal(parseAppBlocked(fx('socketfilterfw-managed.txt')), undefined);
    assert.deepEqual(firewallVerdict({ state: 1, app: 'blocked', allowBuiltIn: true }).kind, 'blocked');
  });
});

describe('HYPERKIT_VMNET_SUBNET and HYPERKIT_VPN_ROUTE', () => {
  const defaults = (file: string | undefined, exitCode = 0): Answer => (args) => {
    if (args.join(' ') !== 'read /Library/Preferences/SystemConfiguration/com.apple.vmnet Shared_Net_Address') return new Error(`unexpected defaults ${args.join(' ')}`);
    if (file === undefined) return { exitCode: 1, stderr: fx('defaults-shared-net-address-absent.stderr.txt') };
    return { exitCode, stdout: file.endsWith('.txt') ? fx(file) : file };
  };
  const netstat = (file: string): Answer => (args) => (args.join(' ') === '-rn -f inet' ? { stdout: readFileSync(file, 'utf8') } : new Error('unexpected netstat'));
  const NETSTAT = (name: string) => join(FIXTURES, name);
  const CLEAN = join(REPO, 'test', 'fixtures', 'doctor', 'macos-netstat-rn.txt');

  test('no Shared_Net_Address: macOS\'s default 192.168.64.0/24', async () => {
    const r = await check('HYPERKIT_VMNET_SUBNET', macContext(macExec({ defaults: defaults(undefined) })));
    assert.equal(r.status, 'pass');
    assert.equal(r.summary, "192.168.64.0/24 (host 192.168.64.1, macOS's default)");
  });

  test('a moved shared network is reported as set', async () => {
    const r = await check('HYPERKIT_VMNET_SUBNET', macContext(macExec({ defaults: defaults('defaults-shared-net-address.txt') })));
    assert.equal(r.status, 'pass');
    assert.equal(r.summary, '192.168.65.0/24 (host 192.168.65.1, set in com.apple.vmnet)');
  });

  test('an answer that is not an address warns and assumes the default', async () => {
    const r = await check('HYPERKIT_VMNET_SUBNET', macContext(macExec({ defaults: defaults('(\n)') })));
    assert.equal(r.status, 'warn');
    assert.match(r.summary, /^cannot read vmnet's shared network address: Shared_Net_Address is "\(\\n\)", not an IPv4 address; assuming 192\.168\.64\.0\/24/);
    assert.deepEqual(parseSharedNetAddress(1, '', 'Operation not permitted').problem, 'defaults read exited with code 1: Operation not permitted');
  });

  test('a VPN route covering the vmnet subnet through utun warns, naming the interface and the route', async () => {
    const r = await check('HYPERKIT_VPN_ROUTE', macContext(macExec({ defaults: defaults(undefined), netstat: netstat(NETSTAT('netstat-utun-covers-vmnet.txt')) })));
    assert.equal(r.status, 'warn');
    assert.equal(r.summary, '192.168.64.0/24 is routed through utun4: 192.168.0.0/16 via utun4 (gateway 10.8.0.1)');
    assert.equal(r.exitCode, 71);
  });

  test('a PPP route over half the subnet warns too; bridge100 and the host address on lo0 do not', async () => {
    const r = await check('HYPERKIT_VPN_ROUTE', macContext(macExec({ defaults: defaults(undefined), netstat: netstat(NETSTAT('netstat-ppp-vmnet-half.txt')) })));
    assert.equal(r.status, 'warn');
    assert.equal(r.summary, '192.168.64.0/24 is routed through ppp0: 192.168.64.128/25 via ppp0');
  });

  test('the subnet comes from vmnet\'s setting: the same PPP route misses a moved network', async () => {
    const r = await check('HYPERKIT_VPN_ROUTE', macContext(macExec({ defaults: defaults('defaults-shared-net-address.txt'), netstat: netstat(NETSTAT('netstat-ppp-vmnet-half.txt')) })));
    assert.equal(r.status, 'pass');
    assert.equal(r.summary, 'no tunnel interface routes 192.168.65.0/24 (7 routes)');
  });

  test('VPN routes elsewhere (10.8/16, 192.168.211/24 on utun4) pass', async () => {
    const r = await check('HYPERKIT_VPN_ROUTE', macContext(macExec({ defaults: defaults(undefined), netstat: netstat(CLEAN) })));
    assert.equal(r.status, 'pass');
    assert.match(r.summary, /^no tunnel interface routes 192\.168\.64\.0\/24 \(\d+ routes\)$/);
  });
});

test('on Linux every HyperKit check is left out (DRIVER_UNAVAILABLE says why), and named ones are skipped', async () => {
  const ctx = testContext({ driver: 'hyperkit', exec: macExec({}) });
  const all = await runChecks(ctx, { checks: HYPERKIT_CHECKS });
  assert.deepEqual(all, []);
  const named = await runChecks(ctx, { checks: HYPERKIT_CHECKS, only: HYPERKIT_CHECKS.map((c) => c.id) });
  assert.deepEqual(named.map((r) => r.status), HYPERKIT_CHECKS.map(() => 'skip'));
  assert.match(named[0]?.summary ?? '', /does not apply to linux with the hyperkit driver/);
});
