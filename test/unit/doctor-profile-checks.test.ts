import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { join, relative } from 'node:path';
import { createDoctorContext, readClusterState } from '../../src/doctor/context.ts';
import { unreadableReason } from '../../src/profile/atomic.ts';
import { runChecks } from '../../src/doctor/runner.ts';
import { buildReport } from '../../src/doctor/report.ts';
import { summaryLine } from '../../src/doctor/render.ts';
import { loadDriverChecks } from '../../src/doctor/driver-checks.ts';
import { allChecks } from '../../src/doctor/registry.ts';
import type { DoctorContext, VmAccessor } from '../../src/doctor/types.ts';
import { resolveConfig } from '../../src/profile/config.ts';
import { REPO, tempDir } from '../helpers/cli.ts';
import { captureOutput, testContext } from '../helpers/doctor.ts';

/** What the doctor says about the profile itself: its state file, whether its VM runs, and with which accelerator. */

const vm = (state: string, accel?: { accelerator: string; hardware: boolean; reason: string }): VmAccessor => ({
  state: async () => state,
  details: async () => (accel === undefined ? {} : { acceleration: accel }),
});

async function homeWithState(content: string | object | undefined): Promise<{ home: string; state: string }> {
  const home = join(await tempDir('devcluster-doctor-profile-'), 'home');
  const dir = join(home, 'profiles', 'devcluster');
  await mkdir(dir, { recursive: true });
  const state = join(dir, 'state.json');
  if (content !== undefined) await writeFile(state, typeof content === 'string' ? content : JSON.stringify(content));
  return { home, state };
}

const STATE = (status: string, kubernetes: boolean) => ({
  schemaVersion: 1, profile: 'devcluster', driver: 'qemu', status, apiServer: 'https://127.0.0.1:1',
  created: { cpus: 2, memoryMiB: 2048, diskMiB: 20480, image: 'debian-12', kubernetes }, resources: [], driverData: {},
});

function summaryOf(ctx: DoctorContext, results: Awaited<ReturnType<typeof runChecks>>): string {
  const cap = captureOutput();
  return summaryLine(cap.out, buildReport(ctx, results), false);
}

describe('a corrupt or unreadable state.json', () => {
  test('truncated JSON: a FAIL with the parse error and advice to delete the profile, never "No problems found"', async () => {
    const { home, state } = await homeWithState('{"schemaVersion":1,"profile":"devcluster","sta');
    const ctx = await createDoctorContext({ home, env: { HOME: home } });
    const results = await runChecks(ctx, { only: ['PROFILE_STATE_UNREADABLE', 'CLUSTER_STOPPED'] });
    const [r, stopped] = [results.find((x) => x.id === 'PROFILE_STATE_UNREADABLE'), results.find((x) => x.id === 'CLUSTER_STOPPED')];
    assert.equal(r?.status, 'fail');
    assert.match(r?.summary ?? '', new RegExp(`^${state.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')} cannot be used: not valid JSON \\(`));
    assert.deepEqual(r?.fix?.commands.map((c) => c.run), ['devcluster delete -p devcluster']);
    assert.match(r?.fix?.description ?? '', /delete works without a readable state/);
    assert.equal(r?.exitCode, 18);
    assert.equal(stopped?.status, 'skip');
    assert.doesNotMatch(summaryOf(ctx, results), /No problems found/);
  });

  test('valid JSON without a status (a file cut after its first object) is corrupt too', async () => {
    const { state } = await homeWithState({ schemaVersion: 1 });
    const s = await readClusterState(state);
    assert.equal(s.state, 'unreadable');
    assert.match(s.problem ?? '', /records no status/);
  });

  test('permission denied is said as such, not as invalid JSON', () => {
    // The error fs raises for a file this user may not read (root reads every file, so it is built here).
    const denied = Object.assign(new Error(`EACCES: permission denied, open '/x/state.json'`), { code: 'EACCES', errno: -13, syscall: 'open' });
    assert.equal(unreadableReason(denied), 'permission denied');
    assert.match(unreadableReason(new SyntaxError('Unexpected end of JSON input')), /^not valid JSON \(Unexpected end of JSON input\)$/);
  });

  test('a directory in its place is named', async () => {
    const { state } = await homeWithState(undefined);
    await mkdir(state);
    assert.equal((await readClusterState(state)).problem, 'it is a directory, not a file');
  });
});

describe('a cluster that does not run', () => {
  test('stopped: a warning that says how to start it', async () => {
    const { home } = await homeWithState(STATE('Stopped', false));
    const ctx = await createDoctorContext({ home, env: { HOME: home }, vm: vm('stopped') });
    const results = await runChecks(ctx, { only: ['CLUSTER_STOPPED', 'PROFILE_STATE_UNREADABLE'] });
    const r = results.find((x) => x.id === 'CLUSTER_STOPPED');
    assert.equal(r?.status, 'warn');
    assert.equal(r?.summary, 'the cluster is stopped; `devcluster start -p devcluster` starts it');
    assert.deepEqual(r?.fix?.commands.map((c) => c.run), ['devcluster start -p devcluster']);
    assert.equal(results.find((x) => x.id === 'PROFILE_STATE_UNREADABLE')?.summary, 'stopped (qemu driver)');
    assert.match(summaryOf(ctx, results), /1 warning/);
  });

  test('state.json says Running but the driver finds no VM: reported as it is now, with what was recorded', async () => {
    const { home } = await homeWithState(STATE('Running', false));
    const ctx = await createDoctorContext({ home, env: { HOME: home }, vm: vm('absent') });
    assert.equal(ctx.cluster.running, false);
    const [r] = await runChecks(ctx, { only: ['CLUSTER_STOPPED'] });
    assert.equal(r?.status, 'warn');
    assert.equal(r?.summary, 'the cluster is not running (vm missing)');
    assert.match(r?.details[0] ?? '', /state\.json still records it as running/);
    assert.deepEqual(r?.fix?.commands.map((c) => c.run), ['devcluster start -p devcluster', 'devcluster delete -p devcluster']);
  });

  test('the driver cannot answer: state.json is used and the reason is shown', async () => {
    const { home } = await homeWithState(STATE('Running', false));
    const failing: VmAccessor = { state: async () => { throw new Error('qemu monitor: connection refused'); }, details: async () => ({}) };
    const ctx = await createDoctorContext({ home, env: { HOME: home }, vm: failing });
    assert.equal(ctx.cluster.running, true);
    const [r] = await runChecks(ctx, { only: ['CLUSTER_STOPPED'] });
    assert.equal(r?.status, 'pass');
    assert.match(r?.details[0] ?? '', /the driver could not tell the VM's state: qemu monitor: connection refused/);
  });

  test('the real QEMU driver asked about a profile whose VM never ran', async () => {
    const { home } = await homeWithState(STATE('Running', false));
    const ctx = await createDoctorContext({ home, env: { HOME: home } });
    assert.equal(ctx.vmProblem, undefined);
    assert.equal(ctx.cluster.running, false);
    assert.equal(ctx.cluster.state, 'vm missing');
  });
});

describe('the accelerator the VM really runs with', () => {
  const running = { exists: true, running: true, state: 'running', kubernetes: false } as const;

  test('TCG while the host accelerator is expected: a WARN that names TCG and why', async () => {
    const ctx = { ...testContext({ cluster: running }), vm: vm('running', { accelerator: 'tcg', hardware: false, reason: 'KVM unusable: a test boot under KVM hung for 20s (typical of nested virtualisation)' }) };
    const [r] = await runChecks(ctx, { only: ['VM_SOFTWARE_EMULATION'] });
    assert.equal(r?.status, 'warn');
    assert.match(r?.summary ?? '', /^the VM runs under TCG \(software emulation, several times slower\), not with the host's hardware accelerator: KVM unusable: a test boot under KVM hung/);
    assert.deepEqual(r?.fix?.commands.map((c) => c.run), ['devcluster stop -p devcluster', 'devcluster start -p devcluster']);
  });

  test('KVM: passes with the reason; TCG asked for with qemu-accel=tcg: passes', async () => {
    const kvm = { ...testContext({ cluster: running }), vm: vm('running', { accelerator: 'kvm', hardware: true, reason: 'a test boot under KVM reached the kernel' }) };
    assert.equal((await runChecks(kvm, { only: ['VM_SOFTWARE_EMULATION'] }))[0]?.summary, 'KVM: a test boot under KVM reached the kernel');
    const tcg = { ...testContext({ cluster: running, settings: { 'qemu-accel': 'tcg' } }), vm: vm('running', { accelerator: 'tcg', hardware: false, reason: 'set by qemu-accel' }) };
    const [r] = await runChecks(tcg, { only: ['VM_SOFTWARE_EMULATION'] });
    assert.equal(r?.status, 'pass');
    assert.match(r?.summary ?? '', /chosen with qemu-accel=tcg/);
  });

  test('no running VM: skipped', async () => {
    const [r] = await runChecks(testContext(), { only: ['VM_SOFTWARE_EMULATION'] });
    assert.equal(r?.status, 'skip');
  });
});

describe('a profile created without Kubernetes', () => {
  const KUBERNETES_ONLY = ['GUEST_CONTAINERD_INACTIVE', 'GUEST_KUBELET_INACTIVE', 'K8S_APISERVER_NOT_READY', 'K8S_CERTS_EXPIRING', 'NETWORK_APISERVER_UNREACHABLE',
    'KUBECTL_NOT_ON_PATH', 'KUBECTL_VERSION_SKEW', 'KUBECONFIG_INVALID', 'KUBECONFIG_CONTEXT_MISSING', 'KUBECONFIG_STALE_SERVER', 'KUBECONFIG_PERMISSIONS'];

  test('no kubelet, API server or kubeconfig finding in a full run, even with a broken API server and kubeconfig', async () => {
    const guest = { target: 't', exec: async () => ({ stdout: 'inactive\n', stderr: '', exitCode: 3 }) };
    const cluster = { exists: true, running: true, state: 'running', apiServer: 'https://127.0.0.1:1' };
    // The control: the same run with Kubernetes has every one of them, so their absence below is the profile's doing.
    const withKubernetes = await runChecks(testContext({ cluster: { ...cluster, kubernetes: true }, guest, env: { KUBECONFIG: '/nonexistent/broken' } }));
    for (const id of KUBERNETES_ONLY) assert.ok(withKubernetes.some((r) => r.id === id), `${id} does not run even with Kubernetes`);
    const results = await runChecks(testContext({ cluster: { ...cluster, kubernetes: false }, guest, env: { KUBECONFIG: '/nonexistent/broken' } }));
    for (const id of KUBERNETES_ONLY) assert.ok(!results.some((r) => r.id === id), `${id} ran for a profile without Kubernetes`);
  });

  test('named explicitly, they are skipped with the reason', async () => {
    const ctx = testContext({ cluster: { exists: true, running: true, state: 'running', kubernetes: false } });
    const results = await runChecks(ctx, { only: ['GUEST_KUBELET_INACTIVE', 'KUBECONFIG_INVALID'] });
    assert.deepEqual(results.map((r) => [r.status, r.summary]), [['skip', 'profile devcluster was created without Kubernetes'], ['skip', 'profile devcluster was created without Kubernetes']]);
  });

  test('with Kubernetes they apply', async () => {
    const ctx = testContext({ cluster: { exists: true, running: false, state: 'stopped', kubernetes: true } });
    const results = await runChecks(ctx);
    assert.ok(results.some((r) => r.id === 'GUEST_KUBELET_INACTIVE') && results.some((r) => r.id === 'KUBECONFIG_INVALID'));
  });
});

describe('a caller\'s resolved config', () => {
  test('is used as it is: the doctor does not resolve settings again', async () => {
    const home = join(await tempDir('devcluster-doctor-config-'), 'home');
    await mkdir(home, { recursive: true });
    // A config file the doctor would report as broken if it read it.
    await writeFile(join(home, 'config.json'), '{ "memory": ');
    const resolved = await resolveConfig({ home: join(home, 'elsewhere'), flags: { memory: '3g', driver: 'qemu' } });
    const ctx = await createDoctorContext({ home, env: { HOME: home, DEVCLUSTER_MEMORY: '8g' }, config: resolved });
    assert.equal(ctx.config, resolved);
    assert.equal(ctx.configProblem, undefined);
    assert.equal(ctx.config.settings['memory']?.value, 3072);
    assert.equal(ctx.driver, 'qemu');
    assert.equal(ctx.driverSource, 'config');
  });
});

describe('layering', () => {
  test('no driver module imports src/doctor/checks or kubeconfig/kubectl code', () => {
    const files: string[] = [];
    const walk = (dir: string) => {
      for (const e of readdirSync(dir, { withFileTypes: true })) {
        if (e.isDirectory()) walk(join(dir, e.name));
        else if (e.name.endsWith('.ts')) files.push(join(dir, e.name));
      }
    };
    walk(join(REPO, 'drivers'));
    assert.ok(files.length > 5);
    for (const f of files) {
      const imports = [...readFileSync(f, 'utf8').matchAll(/from '([^']+)'|import\('([^']+)'\)/g)].map((m) => m[1] ?? m[2] ?? '');
      const bad = imports.filter((i) => /doctor\/checks\/|kubeconfig|kubectl/.test(i));
      assert.deepEqual(bad, [], relative(REPO, f));
    }
  });

  test('every check is registered once and applies to something', async () => {
    await loadDriverChecks();
    const ids = allChecks().map((c) => c.id);
    assert.equal(new Set(ids).size, ids.length);
    for (const id of ['PROFILE_STATE_UNREADABLE', 'CLUSTER_STOPPED', 'VM_SOFTWARE_EMULATION', 'IMAGE_BUILD_TOOLS_MISSING', 'QEMU_NOT_INSTALLED']) assert.ok(ids.includes(id), id);
  });
});
