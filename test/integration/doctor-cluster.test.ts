import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { createServer } from 'node:https';
import type { Server } from 'node:https';
import { createServer as createTcpServer } from 'node:net';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { createDoctorContext } from '../../src/doctor/context.ts';
import { runChecks } from '../../src/doctor/runner.ts';
import { applyFixes } from '../../src/doctor/fix.ts';
import type { GuestAccessor, VmAccessor } from '../../src/doctor/types.ts';
import { runCli, tempDir } from '../helpers/cli.ts';
import { captureOutput } from '../helpers/doctor.ts';

/**
 * A "running cluster" made of real pieces on 127.0.0.1: an HTTPS API server
 * with certificates from openssl and /readyz and /version endpoints, and the
 * profile's state.json pointing at it. The guest is a scripted accessor (the
 * doctor receives SSH access from the ssh module through that interface).
 */

function openssl(args: string[], cwd: string): void {
  execFileSync('openssl', args, { cwd, stdio: 'pipe' });
}

async function makePki(dir: string, serverDays: number): Promise<{ key: string; cert: string }> {
  await mkdir(dir, { recursive: true });
  openssl(['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'ca.key', '-out', 'ca.crt', '-days', '3650', '-subj', '/CN=devcluster-ca'], dir);
  openssl(['req', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'apiserver.key', '-out', 'apiserver.csr', '-subj', '/CN=kube-apiserver'], dir);
  await writeFile(join(dir, 'san.ext'), 'subjectAltName=IP:127.0.0.1\n');
  openssl(['x509', '-req', '-in', 'apiserver.csr', '-CA', 'ca.crt', '-CAkey', 'ca.key', '-CAcreateserial', '-out', 'apiserver.crt', '-days', String(serverDays), '-extfile', 'san.ext'], dir);
  return { key: await readFile(join(dir, 'apiserver.key'), 'utf8'), cert: await readFile(join(dir, 'apiserver.crt'), 'utf8') };
}

interface Fixture {
  home: string;
  userHome: string;
  port: number;
  server: Server;
  readyz: { status: number; body: string };
}

async function runningCluster(): Promise<Fixture> {
  const root = await tempDir('devcluster-doctor-cluster-');
  const home = join(root, 'dc-home');
  const userHome = join(root, 'user');
  await mkdir(userHome, { recursive: true });
  const pki = join(home, 'profiles', 'devcluster', 'pki');
  const { key, cert } = await makePki(pki, 10);
  const fixture = { home, userHome, port: 0, server: undefined as unknown as Server, readyz: { status: 200, body: 'ok' } };
  fixture.server = createServer({ key, cert }, (req, res) => {
    if (req.url === '/readyz') {
      res.writeHead(fixture.readyz.status, { 'content-type': 'text/plain' });
      res.end(fixture.readyz.body);
    } else if (req.url === '/version') {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ major: '1', minor: '28', gitVersion: 'v1.28.15' }));
    } else {
      res.writeHead(404);
      res.end();
    }
  });
  await new Promise<void>((resolve) => fixture.server.listen(0, '127.0.0.1', resolve));
  fixture.port = (fixture.server.address() as AddressInfo).port;
  await writeFile(join(home, 'profiles', 'devcluster', 'state.json'), JSON.stringify({
    schemaVersion: 1, profile: 'devcluster', driver: 'qemu', status: 'Running', apiServer: `https://127.0.0.1:${fixture.port}`,
    created: { cpus: 2, memoryMiB: 4096, diskMiB: 20480, image: 'debian-12', kubernetes: true, kubernetesVersion: 'v1.28.15' }, resources: [], driverData: {},
  }));
  return fixture;
}

/** The VM as its driver would report it: running, under KVM. The API server and guest above stand in for what runs in it. */
const RUNNING_VM: VmAccessor = {
  state: async () => 'running',
  details: async () => ({ acceleration: { accelerator: 'kvm', hardware: true, reason: 'a test boot under KVM reached the kernel' } }),
};

function scriptedGuest(answers: Record<string, () => { stdout: string; exitCode?: number; stderr?: string }>): GuestAccessor & { calls: string[] } {
  const calls: string[] = [];
  return {
    target: 'devcluster@127.0.0.1:2222',
    calls,
    async exec(argv) {
      const line = argv.join(' ');
      calls.push(line);
      const key = Object.keys(answers).find((k) => line.startsWith(k));
      if (key === undefined) throw new Error(`unexpected guest command ${line}`);
      const a = (answers[key] as () => { stdout: string; exitCode?: number; stderr?: string })();
      return { stdout: a.stdout, stderr: a.stderr ?? '', exitCode: a.exitCode ?? 0 };
    },
  };
}

describe('a running cluster', () => {
  let f: Fixture;
  before(async () => {
    f = await runningCluster();
  });
  after(() => {
    f.server.close();
  });

  test('API server reachable and ready, kubectl skew against /version, certificates expiring soon', async () => {
    f.readyz = { status: 200, body: 'ok' };
    const ctx = await createDoctorContext({ home: f.home, env: { HOME: f.userHome, PATH: process.env['PATH'] }, vm: RUNNING_VM });
    assert.equal(ctx.cluster.running, true);
    const results = await runChecks(ctx, { only: ['NETWORK_APISERVER_UNREACHABLE', 'K8S_APISERVER_NOT_READY', 'KUBECTL_VERSION_SKEW', 'K8S_CERTS_EXPIRING'] });
    const by = Object.fromEntries(results.map((r) => [r.id, r]));
    assert.equal(by['NETWORK_APISERVER_UNREACHABLE']?.status, 'pass');
    assert.equal(by['K8S_APISERVER_NOT_READY']?.summary, 'ready (/readyz answered ok)');
    // This machine's kubectl is v1.32: four minors from the cluster's v1.28.
    assert.equal(by['KUBECTL_VERSION_SKEW']?.status, 'warn');
    assert.match(by['KUBECTL_VERSION_SKEW']?.summary ?? '', /kubectl v1\.3\d\.\d+\S* is \d minor versions from the cluster's v1\.28\.15/);
    const certs = by['K8S_CERTS_EXPIRING'];
    assert.equal(certs?.status, 'warn');
    assert.match(certs?.summary ?? '', /apiserver\.crt expires in (9|10) days.*API server serving certificate expires in (9|10) days/);
  });

  test('an unready API server fails with the failing components', async () => {
    f.readyz = { status: 500, body: '[+]ping ok\n[-]etcd failed: reason withheld\nreadyz check failed\n' };
    const ctx = await createDoctorContext({ home: f.home, env: { HOME: f.userHome }, vm: RUNNING_VM });
    const [r] = await runChecks(ctx, { only: ['K8S_APISERVER_NOT_READY'] });
    assert.equal(r?.status, 'fail');
    assert.equal(r?.summary, 'not ready: /readyz answered HTTP 500 (etcd failed: reason withheld)');
    assert.equal(r?.exitCode, 109);
  });

  test('guest checks through the accessor: SSH, services with their journal, clock skew fixed from the host', async () => {
    let guestClock = 30;
    const guest = scriptedGuest({
      'true': () => ({ stdout: '' }),
      'systemctl is-active containerd': () => ({ stdout: 'inactive\n', exitCode: 3 }),
      'systemctl is-active kubelet': () => ({ stdout: 'active\n' }),
      'sudo -n journalctl -u containerd': () => ({ stdout: 'containerd: failed to load plugin io.containerd.grpc.v1.cri\n' }),
      'date +%s.%N': () => ({ stdout: `${(Date.now() / 1000 + guestClock).toFixed(9)}\n` }),
      'sudo -n date -u -s': () => ((guestClock = 0), { stdout: '' }),
    });
    const ctx = await createDoctorContext({ home: f.home, env: { HOME: f.userHome }, guest, vm: RUNNING_VM });
    const results = await runChecks(ctx, { only: ['GUEST_SSH_DOWN', 'GUEST_CONTAINERD_INACTIVE', 'GUEST_KUBELET_INACTIVE', 'HOST_CLOCK_SKEW'] });
    const by = Object.fromEntries(results.map((r) => [r.id, r]));
    assert.equal(by['GUEST_SSH_DOWN']?.status, 'pass');
    assert.equal(by['GUEST_KUBELET_INACTIVE']?.status, 'pass');
    assert.equal(by['GUEST_CONTAINERD_INACTIVE']?.summary, 'containerd is inactive in the VM');
    assert.deepEqual(by['GUEST_CONTAINERD_INACTIVE']?.details, ['journal: containerd: failed to load plugin io.containerd.grpc.v1.cri']);
    assert.deepEqual(by['GUEST_CONTAINERD_INACTIVE']?.fix?.commands[0], { shell: 'sh', run: 'sudo systemctl restart containerd', elevated: true, target: 'guest' });
    assert.equal(by['HOST_CLOCK_SKEW']?.status, 'warn');
    assert.match(by['HOST_CLOCK_SKEW']?.summary ?? '', /^the guest clock is 3\d\.\ds ahead of the host/);

    const cap = captureOutput();
    const clock = results.filter((r) => r.id === 'HOST_CLOCK_SKEW');
    const run = await applyFixes(ctx, clock, { yes: true, interactive: false, out: cap.out, confirm: async () => false });
    assert.equal(run.outcomes[0]?.status, 'fixed');
    assert.ok(guest.calls.some((c) => /^sudo -n date -u -s @\d+\.\d{3}$/.test(c)));
    assert.equal(run.results[0]?.status, 'pass');
  });

  test('the CLI asks the driver about the VM: with no VM behind a state file that says Running, the doctor reports what is true', async () => {
    // The symbols below are the UTF-8 ones: the locale is set, not inherited from the runner.
    const r = await runCli(['doctor', 'CLUSTER_STOPPED', 'GUEST_SSH_DOWN', 'GUEST_KUBELET_INACTIVE', 'NETWORK_APISERVER_UNREACHABLE'], { home: f.home, env: { HOME: f.userHome, NO_COLOR: '1', LANG: 'C.UTF-8', LC_ALL: undefined, LC_CTYPE: undefined } });
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /\[!\] Cluster: +the cluster is not running \(vm missing\)/);
    assert.match(r.stdout, /state\.json still records it as running: the VM ended without devcluster stopping it/);
    assert.match(r.stdout, /devcluster start -p devcluster/);
    assert.match(r.stdout, /\[-\] SSH: +the cluster of profile devcluster is not running \(vm missing\)/);
    assert.match(r.stdout, /\[-\] kubelet: +the cluster of profile devcluster is not running \(vm missing\)/);
    assert.match(r.stdout, /\[-\] API server port: +the cluster of profile devcluster is not running/);
    assert.doesNotMatch(r.stdout, /No problems found/);
  });
});

test('a closed API server port fails, and the readiness check is skipped after it', async () => {
  const f = await runningCluster();
  f.server.close();
  // Take a port nobody listens on: bind, note it, close.
  const probe = createTcpServer();
  await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve));
  const port = (probe.address() as AddressInfo).port;
  await new Promise<void>((resolve) => probe.close(() => resolve()));
  const state = join(f.home, 'profiles', 'devcluster', 'state.json');
  const s = JSON.parse(await readFile(state, 'utf8')) as Record<string, unknown>;
  await writeFile(state, JSON.stringify({ ...s, apiServer: `https://127.0.0.1:${port}` }));
  const ctx = await createDoctorContext({ home: f.home, env: { HOME: f.userHome }, vm: RUNNING_VM });
  const results = await runChecks(ctx, { only: ['NETWORK_APISERVER_UNREACHABLE', 'K8S_APISERVER_NOT_READY'] });
  assert.equal(results[0]?.status, 'fail');
  assert.match(results[0]?.summary ?? '', new RegExp(`cannot connect to 127\\.0\\.0\\.1:${port}: connect ECONNREFUSED`));
  assert.equal(results[0]?.exitCode, 79);
  assert.equal(results[1]?.status, 'skip');
});
