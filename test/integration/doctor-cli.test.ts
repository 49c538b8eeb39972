import { describe, test, before } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { chmod, mkdir, readFile, stat, writeFile } from 'node:fs/promises';
import { readFileSync } from 'node:fs';
import { linuxFamily, parseOsRelease } from '../../src/host/os-release.ts';
import { packageManagerFor } from '../../src/host/packages.ts';
import { join } from 'node:path';
import { Ajv } from 'ajv';
import { CLI, REPO, runCli, tempDir } from '../helpers/cli.ts';
import type { CliResult } from '../helpers/cli.ts';
import { skipUnlessPresent } from '../helpers/prerequisite.ts';

/**
 * `devcluster doctor` run as a user runs it, with real failing conditions:
 * broken kubeconfig files, proxy variables, a disk threshold the real free
 * space cannot meet, kubectl missing from PATH, a stale kubeconfig server
 * that the real kubectl repairs.
 */

interface Env {
  home: string;
  userHome: string;
  env: Record<string, string | undefined>;
}

const CLEAN: Record<string, string | undefined> = {
  HTTP_PROXY: undefined, HTTPS_PROXY: undefined, http_proxy: undefined, https_proxy: undefined, ALL_PROXY: undefined, all_proxy: undefined,
  NO_PROXY: undefined, no_proxy: undefined, KUBECONFIG: undefined, DEVCLUSTER_PROFILE: undefined, DEVCLUSTER_ASCII: undefined, FORCE_COLOR: undefined,
  // LC_ALL and LC_CTYPE would override LANG: the symbols these tests expect need a UTF-8 locale whatever the runner's is.
  SHELL: undefined, LANG: 'C.UTF-8', LC_ALL: undefined, LC_CTYPE: undefined, NO_COLOR: '1',
};

async function setup(): Promise<Env> {
  const root = await tempDir('devcluster-doctor-');
  const home = join(root, 'dc-home');
  const userHome = join(root, 'user');
  await mkdir(userHome, { recursive: true });
  return { home, userHome, env: { ...CLEAN, HOME: userHome } };
}

function doctor(e: Env, args: string[], env: Record<string, string | undefined> = {}): Promise<CliResult> {
  return runCli(['doctor', ...args], { home: e.home, env: { ...e.env, ...env } });
}

async function writeKubeconfig(path: string, text: string, mode = 0o600): Promise<void> {
  await mkdir(join(path, '..'), { recursive: true });
  await writeFile(path, text);
  await chmod(path, mode);
}

const KUBECONFIG_OURS = (server: string) => `apiVersion: v1
kind: Config
current-context: devcluster
clusters:
- name: devcluster
  cluster:
    server: ${server}
    insecure-skip-tls-verify: true
contexts:
- name: devcluster
  context: {cluster: devcluster, user: devcluster}
users:
- name: devcluster
  user: {token: not-a-real-token}
`;

describe('doctor --output json', () => {
  let result: CliResult;
  let e: Env;
  before(async () => {
    e = await setup();
    result = await doctor(e, ['-o', 'json']);
  });

  test('prints one document and nothing else on stdout, valid against docs/doctor.schema.json', async () => {
    const schema = JSON.parse(await readFile(join(REPO, 'docs', 'doctor.schema.json'), 'utf8')) as object;
    const doc = JSON.parse(result.stdout) as { schemaVersion: number; generatedAt: string; checks: Array<{ id: string; status: string; fix?: { description: string } }>; summary: { exitCode: number }; driver: { name: string } };
    const validate = new Ajv({ allErrors: true, validateFormats: false }).compile(schema);
    assert.ok(validate(doc), JSON.stringify(validate.errors, null, 2));
    assert.equal(doc.schemaVersion, 1);
    assert.ok(!Number.isNaN(Date.parse(doc.generatedAt)));
    assert.equal(doc.driver.name, 'qemu');
    assert.equal(result.code, doc.summary.exitCode);
    // The QEMU checks ran for real on this Linux machine.
    assert.ok(doc.checks.some((c) => c.id === 'QEMU_ACCEL_UNAVAILABLE' && c.status !== 'error'));
    assert.ok(doc.checks.some((c) => c.id === 'HOST_OS_UNSUPPORTED' && c.status === 'pass'));
  });

  test('fix descriptions are prose, never something to paste into a shell', async () => {
    // A healthy run offers no fix at all: break what can be broken here so that many checks offer one.
    const broken = await setup();
    await writeKubeconfig(join(broken.userHome, '.kube', 'config'), 'a: [\n', 0o644);
    const emptyBin = join(broken.userHome, 'emptybin');
    await mkdir(emptyBin, { recursive: true });
    const r = await doctor(broken, ['-o', 'json'], { HTTPS_PROXY: 'http://proxy.example:3128', NO_PROXY: 'localhost', DEVCLUSTER_DOCTOR_MIN_FREE_DISK: '100t', PATH: emptyBin });
    const doc = JSON.parse(r.stdout) as { checks: Array<{ id: string; fix?: { description: string } }> };
    const fixes = doc.checks.flatMap((c) => (c.fix === undefined ? [] : [{ id: c.id, description: c.fix.description }]));
    for (const id of ['HOST_DISK_LOW', 'QEMU_NOT_INSTALLED', 'PROXY_NO_PROXY_INCOMPLETE', 'KUBECTL_NOT_ON_PATH', 'KUBECONFIG_INVALID']) {
      assert.ok(fixes.some((f) => f.id === id), `${id} offers no fix here: ${fixes.map((f) => f.id).join(', ')}`);
    }
    for (const f of fixes) assert.doesNotMatch(f.description, /^(sudo|export|kubectl|devcluster|Enable-|bcdedit|chmod|mv|brew|winget|apt-get|\$)\b/, f.id);
  });
});

describe('doctor text output', () => {
  test('NO_COLOR: symbols, no escape codes; DEVCLUSTER_ASCII=1: [OK] [SKIP] and pure ASCII', async () => {
    const e = await setup();
    const plain = await doctor(e, ['HOST_OS_UNSUPPORTED', 'HOST_CLOCK_SKEW', 'HOST_DISK_LOW'], { DEVCLUSTER_DOCTOR_MIN_FREE_DISK: '100t' });
    assert.match(plain.stdout, /^\[✓\] Operating system: +\S/m);
    assert.match(plain.stdout, /^\[-\] Clock: +no cluster for profile devcluster$/m);
    assert.match(plain.stdout, /^\[✗\] Disk space: /m);
    assert.ok(!plain.stdout.includes('\u001b['));
    const ascii = await doctor(e, ['HOST_OS_UNSUPPORTED', 'HOST_CLOCK_SKEW', 'HOST_DISK_LOW'], { DEVCLUSTER_ASCII: '1', DEVCLUSTER_DOCTOR_MIN_FREE_DISK: '100t' });
    assert.match(ascii.stdout, /^\[OK\] Operating system:/m);
    assert.match(ascii.stdout, /^\[SKIP\] Clock:/m);
    assert.match(ascii.stdout, /^\[FAIL\] Disk space:/m);
    assert.match(ascii.stdout, /^X 1 problem\.$/m);
    assert.doesNotMatch(ascii.stdout, /[^\t\n\r -~]/);
  });

  test('-v shows the evidence: the commands run and their output', async () => {
    const e = await setup();
    const r = await doctor(e, ['KUBECTL_NOT_ON_PATH', '-v']);
    assert.match(r.stdout, /\$ \/usr\/bin\/kubectl version --client -o json {3}\(exit 0, \d+ms\)/);
    assert.match(r.stdout, /"gitVersion": "v1\.\d+/);
  });
});

describe('failing conditions', () => {
  test('a full disk (threshold above the real free space) fails with the disk exit code', async () => {
    const e = await setup();
    const r = await doctor(e, ['HOST_DISK_LOW'], { DEVCLUSTER_DOCTOR_MIN_FREE_DISK: '100t' });
    assert.equal(r.code, 26);
    assert.match(r.stdout, /\[✗\] Disk space: +[\d.]+ [GT]iB free on .*; devcluster needs at least 100\.0 TiB/);
    assert.match(r.stdout, /HOST_DISK_LOW {2}https:\S+#host_disk_low/);
    assert.match(r.stdout, /✗ 1 problem\./);
  });

  test('a broken kubeconfig fails with the file, the line, and the commands to move it aside', async () => {
    const e = await setup();
    const path = join(e.userHome, '.kube', 'config');
    await writeKubeconfig(path, 'apiVersion: v1\nclusters:\n- name: a\n  cluster: {server: https://x\n   current-context: [\n');
    const r = await doctor(e, ['KUBECONFIG_INVALID', 'KUBECONFIG_CONTEXT_MISSING']);
    assert.equal(r.code, 106);
    assert.match(r.stdout, new RegExp(`\\[✗\\] kubeconfig: +${path.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')}: not valid YAML: .* at line \\d+, column \\d+`));
    assert.match(r.stdout, /Fix: Repair the file, or move it aside/);
    assert.ok(r.stdout.includes(`sh  mv ${path} ${path}.broken`), r.stdout);
    assert.doesNotMatch(r.stdout, /Move-Item/, "PowerShell commands are for Windows users");
    assert.match(r.stdout, /\[-\] kubectl context: +skipped because "kubeconfig" failed/);
  });

  test('KUBECONFIG naming two files whose current-context does not exist', async () => {
    const e = await setup();
    const a = join(e.userHome, 'a.yaml');
    const b = join(e.userHome, 'b.yaml');
    await writeKubeconfig(a, 'apiVersion: v1\nkind: Config\ncurrent-context: gone\ncontexts: []\n');
    await writeKubeconfig(b, KUBECONFIG_OURS('https://127.0.0.1:6443').replace('current-context: devcluster\n', ''));
    const r = await doctor(e, ['KUBECONFIG_CONTEXT_MISSING', '-o', 'json'], { KUBECONFIG: `${a}:${join(e.userHome, 'missing.yaml')}:${b}` });
    assert.equal(r.code, 106);
    const doc = JSON.parse(r.stdout) as { checks: Array<{ summary: string; fix: { commands: Array<{ run: string }>; automatic: boolean } }> };
    assert.equal(doc.checks[0]?.summary, `current-context "gone" (in ${a}) names a context that does not exist`);
    assert.equal(doc.checks[0]?.fix.commands[0]?.run, 'kubectl config use-context devcluster');
    assert.equal(doc.checks[0]?.fix.automatic, true);
  });

  test('proxy variables without NO_PROXY for the cluster: a warning with the exact line per shell, password masked', async () => {
    const e = await setup();
    const r = await doctor(e, ['PROXY_NO_PROXY_INCOMPLETE'], { HTTPS_PROXY: 'http://alice:s3cret@proxy.example:3128', NO_PROXY: 'localhost,.corp' });
    assert.equal(r.code, 0);
    assert.match(r.stdout, /\[!\] Proxy: +HTTPS_PROXY is set but NO_PROXY lacks 10\.96\.0\.0\/12, 10\.244\.0\.0\/16/);
    assert.ok(r.stdout.includes('export NO_PROXY="localhost,.corp,10.96.0.0/12,10.244.0.0/16" no_proxy="localhost,.corp,10.96.0.0/12,10.244.0.0/16"'), r.stdout);
    assert.ok(r.stdout.includes('set -gx NO_PROXY localhost,.corp,10.96.0.0/12,10.244.0.0/16; set -gx no_proxy localhost,.corp,10.96.0.0/12,10.244.0.0/16'));
    assert.match(r.stdout, /HTTPS_PROXY=http:\/\/alice:\*{8}@proxy\.example:3128/);
    assert.doesNotMatch(r.stdout + r.stderr, /s3cret/);
    assert.match(r.stdout, /! 1 warning\./);
  });

  test('first failing check decides the exit code: host before tools', async () => {
    const e = await setup();
    await writeKubeconfig(join(e.userHome, '.kube', 'config'), 'a: [\n');
    const r = await doctor(e, ['KUBECONFIG_INVALID', 'HOST_DISK_LOW'], { DEVCLUSTER_DOCTOR_MIN_FREE_DISK: '100t' });
    assert.equal(r.code, 26);
    assert.match(r.stdout, /✗ 2 problems\./);
  });
});

describe('kubectl missing from PATH', () => {
  // PATH without /usr/bin, where this machine's kubectl lives.
  const noKubectl = async (e: Env) => {
    const dir = join(e.userHome, 'emptybin');
    await mkdir(dir, { recursive: true });
    return { PATH: dir };
  };

  test('not installed: a warning that says how to get one, and promises nothing devcluster does not do', async () => {
    const e = await setup();
    const r = await doctor(e, ['KUBECTL_NOT_ON_PATH'], await noKubectl(e));
    assert.equal(r.code, 0);
    assert.match(r.stdout, /\[!\] kubectl: +kubectl is not on PATH; it is the tool to use the Kubernetes of a cluster/);
    assert.match(r.stdout, /Fix: Install kubectl with your package manager, or from kubernetes\.io/);
    assert.doesNotMatch(r.stdout, /devcluster start installs/);
  });

  test('devcluster puts no kubectl in its home, so none is offered from there: `devcluster kubectl` is named instead', async () => {
    const e = await setup();
    const r = await doctor(e, ['KUBECTL_NOT_ON_PATH', '-v'], await noKubectl(e));
    assert.equal(r.code, 0);
    assert.match(r.stdout, /`devcluster kubectl -- <args>` runs a kubectl of the cluster's version without one on PATH/);
    assert.doesNotMatch(r.stdout, /export PATH=|Automatic: devcluster doctor --fix KUBECTL_NOT_ON_PATH/);
  });
});

describe('--fix with the real kubectl', () => {
  async function staleProfile(): Promise<{ e: Env; kubeconfig: string }> {
    const e = await setup();
    const state = join(e.home, 'profiles', 'devcluster', 'state.json');
    await mkdir(join(state, '..'), { recursive: true });
    await writeFile(state, JSON.stringify({ schemaVersion: 1, profile: 'devcluster', driver: 'qemu', status: 'Stopped', apiServer: 'https://127.0.0.1:16443', resources: [], driverData: {} }));
    const kubeconfig = join(e.userHome, '.kube', 'config');
    await writeKubeconfig(kubeconfig, KUBECONFIG_OURS('https://192.168.211.10:6443'), 0o644);
    return { e, kubeconfig };
  }

  test('without a terminal and without --yes: shows the commands and changes nothing', async () => {
    const { e, kubeconfig } = await staleProfile();
    const before = await readFile(kubeconfig, 'utf8');
    const r = await doctor(e, ['KUBECONFIG_STALE_SERVER', 'KUBECONFIG_PERMISSIONS', '--fix']);
    assert.equal(r.code, 106);
    assert.ok(r.stdout.includes(`kubectl config set-cluster devcluster --server=https://127.0.0.1:16443 --kubeconfig=${kubeconfig}`), r.stdout);
    assert.ok(r.stdout.includes(`chmod 600 ${kubeconfig}`));
    assert.match(r.stdout, /No terminal to confirm on, so nothing was changed/);
    assert.equal(await readFile(kubeconfig, 'utf8'), before);
    assert.equal((await stat(kubeconfig)).mode & 0o777, 0o644);
  });

  test('--yes applies both fixes, runs the checks again and exits 0', async () => {
    const { e, kubeconfig } = await staleProfile();
    const r = await doctor(e, ['KUBECONFIG_STALE_SERVER', 'KUBECONFIG_PERMISSIONS', '--fix', '--yes']);
    assert.equal(r.code, 0, r.stdout + r.stderr);
    assert.match(r.stdout, /\[✓\] KUBECONFIG_STALE_SERVER: fixed: devcluster -> https:\/\/127\.0\.0\.1:16443/);
    assert.match(r.stdout, /\[✓\] KUBECONFIG_PERMISSIONS: fixed: readable only by you/);
    assert.match(await readFile(kubeconfig, 'utf8'), /server: https:\/\/127\.0\.0\.1:16443/);
    assert.equal((await stat(kubeconfig)).mode & 0o777, 0o600);
  });
});

describe('usage', () => {
  test('an unknown check ID is a usage error that lists the valid IDs', async () => {
    const e = await setup();
    const r = await doctor(e, ['NOT_A_CHECK']);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /Exiting due to USAGE_INVALID_ARGUMENT: unknown check ID NOT_A_CHECK/);
    assert.match(r.stderr, /Valid IDs: HOST_OS_UNSUPPORTED, .*KUBECONFIG_PERMISSIONS/);
  });

  test('--list shows every check with what it looks at; -o json too', async () => {
    const e = await setup();
    const r = await doctor(e, ['--list']);
    assert.equal(r.code, 0);
    assert.match(r.stdout, /^ {2}QEMU_ACCEL_UNAVAILABLE \(checked before start\) \[driver qemu\]\n {6}QEMU acceleration: \S/m);
    const j = JSON.parse((await doctor(e, ['--list', '-o', 'json'])).stdout) as { checks: Array<{ id: string; exitCode: number }> };
    assert.ok(j.checks.length >= 25);
    assert.equal(j.checks.find((c) => c.id === 'HOST_DISK_LOW')?.exitCode, 26);
  });

  test('doctor.muted hides a warning, --include-muted shows it', async () => {
    const e = await setup();
    await mkdir(e.home, { recursive: true });
    await writeFile(join(e.home, 'config.json'), JSON.stringify({ 'doctor.muted': ['PROXY_NO_PROXY_INCOMPLETE'] }));
    const env = { HTTP_PROXY: 'http://proxy.example:3128' };
    const hidden = await doctor(e, ['PROXY_NO_PROXY_INCOMPLETE'], env);
    assert.doesNotMatch(hidden.stdout, /\[!\] Proxy/);
    assert.match(hidden.stdout, /✓ No problems found\. \(1 muted warning hidden \(--include-muted shows them\)\)/);
    const shown = await doctor(e, ['PROXY_NO_PROXY_INCOMPLETE', '--include-muted'], env);
    assert.match(shown.stdout, /\[!\] Proxy: .* \(muted\)$/m);
  });
});

/** util-linux `script`, found on the test's PATH (the CLI may run with another). */
const SCRIPT = spawnSync('sh', ['-c', 'command -v script'], { encoding: 'utf8' }).stdout.trim() || 'script';

/** Runs the CLI on a pseudo-terminal (util-linux `script`), answering the prompt when it appears. */
function onTerminal(args: string[], env: Record<string, string | undefined>, answer: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const command = [process.execPath, CLI, ...args].map((a) => `'${a.replace(/'/g, `'\\''`)}'`).join(' ');
    const merged: Record<string, string | undefined> = { ...process.env, ...env };
    for (const [k, v] of Object.entries(merged)) if (v === undefined) delete merged[k];
    const child = spawn(SCRIPT, ['-qec', command, '/dev/null'], { env: merged as NodeJS.ProcessEnv, cwd: REPO });
    let output = '';
    let answered = false;
    child.stdout.setEncoding('utf8').on('data', (d: string) => {
      output += d;
      if (!answered && /Make these changes( as root)?\?/.test(output)) {
        answered = true;
        child.stdin.write(answer);
      }
    });
    child.on('error', reject);
    child.on('close', () => resolve(output));
  });
}

const noScript = skipUnlessPresent(spawnSync('script', ['--version']).status === 0 ? false : 'util-linux script is not installed');
describe('--fix on a terminal', { skip: noScript }, () => {
  test('asks before changing anything; "n" leaves the file alone, "y" fixes it', async () => {
    const e = await setup();
    const kubeconfig = join(e.userHome, '.kube', 'config');
    await writeKubeconfig(kubeconfig, 'apiVersion: v1\nkind: Config\n', 0o644);
    const env = { ...e.env, DEVCLUSTER_HOME: e.home };
    const declined = await onTerminal(['doctor', 'KUBECONFIG_PERMISSIONS', '--fix'], env, 'n\r');
    assert.match(declined, /KUBECONFIG_PERMISSIONS: declined/);
    assert.equal((await stat(kubeconfig)).mode & 0o777, 0o644);
    const agreed = await onTerminal(['doctor', 'KUBECONFIG_PERMISSIONS', '--fix'], env, 'y\r');
    assert.match(agreed, /KUBECONFIG_PERMISSIONS: fixed: readable only by you/);
    assert.equal((await stat(kubeconfig)).mode & 0o777, 0o600);
  });
});

/**
 * `doctor --fix` installing QEMU end to end: PATH holds no QEMU, only a
 * scripted double of this host's package manager (named as the real one,
 * chosen from the real /etc/os-release) that records its argv and, on
 * install, puts working qemu-system-x86_64 and qemu-img stand-ins on PATH,
 * so the check run after the fix passes for real.
 */
async function packageManagerDouble(): Promise<{ env: Record<string, string | undefined>; record: string; manager: string }> {
  const e = await setup();
  const manager = packageManagerFor('linux', linuxFamily(parseOsRelease(readFileSync('/etc/os-release', 'utf8'))));
  assert.ok(manager !== undefined, 'this test machine runs a distribution doctor --fix supports');
  const fake = join(e.userHome, 'fakebin');
  const installed = join(e.userHome, 'installed');
  await mkdir(fake, { recursive: true });
  await mkdir(installed, { recursive: true });
  const record = join(e.userHome, 'argv.log');
  const q = (p: string) => `'${p.replace(/'/g, `'\\''`)}'`;
  // Shell builtins and absolute paths only: PATH has nothing else.
  await writeFile(join(fake, manager), [
    '#!/bin/sh',
    `printf '%s\\n' "${manager} $*" >> ${q(record)}`,
    'case " $* " in *" install "*)',
    `  printf '#!/bin/sh\\necho "QEMU emulator version 7.2.0"\\n' > ${q(join(installed, 'qemu-system-x86_64'))}`,
    `  printf '#!/bin/sh\\necho "qemu-img version 7.2.0"\\n' > ${q(join(installed, 'qemu-img'))}`,
    `  /bin/chmod 755 ${q(join(installed, 'qemu-system-x86_64'))} ${q(join(installed, 'qemu-img'))}`,
    'esac',
    '',
  ].join('\n'), { mode: 0o755 });
  // Used only when the tests do not run as root: records that -n was passed, then runs the command.
  await writeFile(join(fake, 'sudo'), ['#!/bin/sh', `printf '%s\\n' "sudo $*" >> ${q(record)}`, '[ "$1" = -n ] && shift', '[ "$1" = -- ] && shift', 'exec "$@"', ''].join('\n'), { mode: 0o755 });
  return { env: { ...e.env, DEVCLUSTER_HOME: e.home, PATH: `${fake}:${installed}` }, record, manager };
}

describe('--fix installs missing host tools with the package manager', () => {
  test('--yes: shows the exact commands, installs, checks again and exits 0', async () => {
    const d = await packageManagerDouble();
    const r = await runCli(['doctor', 'QEMU_NOT_INSTALLED', '--fix', '--yes'], { env: d.env });
    assert.match(r.stdout, /\[✗\] QEMU: +qemu-system-x86_64 and qemu-img not found/);
    assert.match(r.stdout, /These changes need root \(sudo\):/);
    const log = await readFile(d.record, 'utf8');
    const calls = log.trim().split('\n').filter((l) => !l.startsWith('sudo '));
    if (d.manager === 'apt-get') {
      assert.ok(r.stdout.includes('sh (as root)  sudo apt-get install -y qemu-system-x86 qemu-utils'), r.stdout);
      assert.deepEqual(calls, ['apt-get update', 'apt-get install -y qemu-system-x86 qemu-utils']);
    } else {
      assert.ok(calls.length > 0 && calls.every((c) => c.startsWith(`${d.manager} `)), log);
    }
    assert.match(r.stdout, /\[✓\] QEMU_NOT_INSTALLED: fixed: QEMU 7\.2\.0 \(.*\/installed\/qemu-system-x86_64\)/);
    assert.equal(r.code, 0, r.stdout + r.stderr);
  });

  test('without --yes and without a terminal: nothing is run', async () => {
    const d = await packageManagerDouble();
    const r = await runCli(['doctor', 'QEMU_NOT_INSTALLED', '--fix'], { env: d.env });
    assert.equal(r.code, 65);
    assert.match(r.stdout, /No terminal to confirm on, so nothing was changed/);
    assert.equal(await readFile(d.record, 'utf8').catch(() => ''), '');
  });

  test('on a terminal: asked at the root boundary; "n" runs nothing, "y" installs', { skip: noScript }, async () => {
    const d = await packageManagerDouble();
    const declined = await onTerminal(['doctor', 'QEMU_NOT_INSTALLED', '--fix'], d.env, 'n\r');
    assert.match(declined, /Make these changes as root\?/);
    assert.match(declined, /QEMU_NOT_INSTALLED: declined/);
    assert.equal(await readFile(d.record, 'utf8').catch(() => ''), '');
    const agreed = await onTerminal(['doctor', 'QEMU_NOT_INSTALLED', '--fix'], d.env, 'y\r');
    assert.match(agreed, /QEMU_NOT_INSTALLED: fixed: QEMU 7\.2\.0/);
    assert.match(await readFile(d.record, 'utf8'), new RegExp(`^${d.manager} .*install`, 'm'));
  });
});

test('a start that would build the Debian guest, on a host without its tools: a warning whose fix installs them', async () => {
  const e = await setup();
  const empty = join(e.userHome, 'emptybin');
  await mkdir(empty, { recursive: true });
  const r = await doctor(e, ['IMAGE_BUILD_TOOLS_MISSING', '-o', 'json'], { PATH: empty });
  const doc = JSON.parse(r.stdout) as { checks: Array<{ id: string; status: string; summary: string; fix?: { commands: Array<{ run: string }>; automatic: boolean; elevated: boolean } }> };
  const c = doc.checks[0];
  assert.equal(c?.status, 'warn', r.stdout);
  // mke2fs and e2fsck are found in /usr/sbin although it is not on this PATH.
  assert.match(c?.summary ?? '', /^no catalog image is cached or published, so start offers to build the Debian guest, and building it needs mmdebstrap, jq, dpkg-query, which are missing$/);
  assert.equal(c?.fix?.automatic, true);
  assert.equal(c?.fix?.elevated, true);
  assert.deepEqual(c?.fix?.commands.map((x) => x.run), ['sudo apt-get update', 'sudo apt-get install -y mmdebstrap jq dpkg']);
  assert.equal(r.code, 0);
});
