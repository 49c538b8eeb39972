/**
 * The host side of a Kubernetes profile over the fake driver: status,
 * update-context, delete and `logs --bundle`. The "cluster" is made of real
 * pieces: the profile's PKI from createClusterPki, an HTTPS API server on
 * 127.0.0.1 serving with its apiserver certificate and demanding a client
 * certificate from its CA, the fake hypervisor's sshd guest (with a
 * systemctl, a crictl and /var/log of the test's making mounted where a
 * real guest has them), and kubeconfig files in a temporary KUBECONFIG that
 * already holds a user's entries.
 */
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, execFileSync } from 'node:child_process';
import { promisify } from 'node:util';
import { readFileSync } from 'node:fs';
import { chmod, mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:https';
import type { Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import type { TLSSocket } from 'node:tls';
import { join } from 'node:path';
import { parse, stringify } from 'yaml';
import { startCluster } from '../../src/cluster/start.ts';
import { stopCluster } from '../../src/cluster/stop.ts';
import { deleteProfile } from '../../src/cluster/delete.ts';
import { clusterStatus, kubeletStatus } from '../../src/cluster/status.ts';
import { updateContext } from '../../src/cluster/update-context.ts';
import { showLogs } from '../../src/cluster/logs.ts';
import { nodeReadiness } from '../../src/doctor/cluster-http.ts';
import { createDoctorContext } from '../../src/doctor/context.ts';
import { runChecks } from '../../src/doctor/runner.ts';
import type { VmAccessor } from '../../src/doctor/types.ts';
import { createClusterPki } from '../../src/kube/pki.ts';
import { mergeClusterIntoKubeconfig } from '../../src/kube/kubeconfig-merge.ts';
import { writeJsonAtomic } from '../../src/profile/atomic.ts';
import { profilePaths } from '../../src/profile/paths.ts';
import type { ProfileState } from '../../src/profile/state.ts';
import { REPO, snapshotTree, tempDir } from '../helpers/cli.ts';
import { isError } from '../helpers/errors.ts';
import { skipUnlessPresent } from '../helpers/prerequisite.ts';
import { FakeDriver } from '../helpers/fake-driver.ts';
import { fakeHypervisorMissing } from '../helpers/fake-hypervisor.ts';
import { NOTHING, PROFILE, homeWithImage, leftovers, lifecycleOptions, removeHomes, startOptions } from '../helpers/lifecycle.ts';
import { stateFile } from '../helpers/lifecycle-checks.ts';

const skip = skipUnlessPresent(await fakeHypervisorMissing());

const fixture = (name: string): string => readFileSync(join(REPO, 'test', 'fixtures', 'kubeconfig', name), 'utf8');
const b64 = (s: string): string => Buffer.from(s).toString('base64');
const OTHER_CA = fixture('other-ca.crt');

/** A user's own kubeconfig: another cluster, current. */
const USERS_FILE = `apiVersion: v1
kind: Config
clusters:
- name: prod
  cluster:
    server: https://prod.example.test:6443
    certificate-authority-data: ${b64(OTHER_CA)}
contexts:
- name: prod
  context: {cluster: prod, user: prod-admin}
current-context: prod
users:
- name: prod-admin
  user: {token: not-a-real-token}
`;

interface FakeApi {
  readyz: { status: number; body: string };
  node: { status: number; body: unknown };
  /** Requests that came without a client certificate the CA issued. */
  anonymous: number;
  /** Subjects of the client certificates presented. */
  clients: Set<string>;
}

interface KubeCluster {
  home: string;
  root: string;
  /** Mounted at the guest's /usr/local/bin and /var/log. */
  guestBin: string;
  guestLog: string;
  api: FakeApi;
  server: Server;
  url: string;
  /** KUBECONFIG: the user's file (where start writes), then a second file. */
  usersFile: string;
  secondFile: string;
  driver: () => FakeDriver;
}

const servers: Server[] = [];

function readyNode(status: 'True' | 'False' | 'Unknown', reason = 'KubeletReady', message = 'kubelet is posting ready status'): unknown {
  return { kind: 'Node', metadata: { name: PROFILE }, status: { conditions: [{ type: 'MemoryPressure', status: 'False' }, { type: 'Ready', status, reason, message }] } };
}

async function startApiServer(pki: string): Promise<{ server: Server; api: FakeApi; url: string }> {
  const api: FakeApi = { readyz: { status: 200, body: 'ok' }, node: { status: 200, body: readyNode('True') }, anonymous: 0, clients: new Set() };
  const [key, cert, ca] = await Promise.all(['apiserver.key', 'apiserver.crt', 'ca.crt'].map((f) => readFile(join(pki, f), 'utf8')));
  const server = createServer({ key, cert, ca, requestCert: true, rejectUnauthorized: false }, (req, res) => {
    const socket = req.socket as TLSSocket;
    if (!socket.authorized) {
      api.anonymous += 1;
      res.writeHead(401, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ kind: 'Status', status: 'Failure', message: 'Unauthorized', code: 401 }));
      return;
    }
    api.clients.add(socket.getPeerX509Certificate()?.subject.replace(/\n/g, ', ') ?? '');
    if (req.url === '/readyz') {
      res.writeHead(api.readyz.status, { 'content-type': 'text/plain' });
      res.end(api.readyz.body);
    } else if (req.url === `/api/v1/nodes/${PROFILE}`) {
      res.writeHead(api.node.status, { 'content-type': 'application/json' });
      res.end(JSON.stringify(api.node.body));
    } else {
      res.writeHead(404);
      res.end();
    }
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  servers.push(server);
  return { server, api, url: `https://127.0.0.1:${(server.address() as AddressInfo).port}` };
}

async function patchState(home: string, change: (s: ProfileState) => void): Promise<void> {
  const s = await stateFile(home);
  if (s === undefined) throw new Error('no state');
  change(s);
  await writeJsonAtomic(profilePaths(home, PROFILE).state, s, { mode: 0o600 });
}

async function credentials(home: string): Promise<{ caPem: string; clientCertPem: string; clientKeyPem: string }> {
  const pki = profilePaths(home, PROFILE).pki;
  const [caPem, clientCertPem, clientKeyPem] = await Promise.all(['ca.crt', 'admin.crt', 'admin.key'].map((f) => readFile(join(pki, f), 'utf8')));
  return { caPem: caPem as string, clientCertPem: clientCertPem as string, clientKeyPem: clientKeyPem as string };
}

/**
 * A running profile as a finished Kubernetes start leaves it: state with
 * apiServer and kubernetes, the PKI, the API server answering, and the
 * entries merged into the user's kubeconfig as start merges them.
 */
async function kubernetesCluster(o: { merge?: boolean } = {}): Promise<KubeCluster> {
  const home = await homeWithImage();
  const root = await tempDir('devcluster-kube-host-');
  const guestBin = join(root, 'guest-bin');
  const guestLog = join(root, 'guest-log');
  await mkdir(guestBin, { recursive: true });
  await mkdir(guestLog, { recursive: true });
  // The guest's systemctl answers is-active from a file the test sets, as systemd would.
  await writeFile(join(guestBin, 'systemctl'), '#!/bin/sh\n[ "$1" = is-active ] || exit 2\nstate=$(cat "/usr/local/bin/$2.state" 2>/dev/null || echo inactive)\necho "$state"\n[ "$state" = active ]\n', { mode: 0o755 });
  await writeFile(join(guestBin, 'kubelet.state'), 'active\n');
  const mounts = [{ hostDir: guestBin, guestPath: '/usr/local/bin' }, { hostDir: guestLog, guestPath: '/var/log' }];
  const driver = () => new FakeDriver({ guest: { ready: 'at-boot', mounts } });
  await startCluster(startOptions(home, driver()));

  const pki = profilePaths(home, PROFILE).pki;
  await createClusterPki(pki, { apiServerSans: { dns: ['localhost'], ips: ['127.0.0.1'] }, clusterName: PROFILE, nodeName: PROFILE, validityDays: 60 });
  const { server, api, url } = await startApiServer(pki);
  await patchState(home, (s) => {
    if (s.created === undefined) throw new Error('no created');
    s.created.kubernetes = true;
    s.created.kubernetesVersion = 'v1.37.2';
    s.apiServer = url;
    s.kubernetes = { version: 'v1.37.2', guestIp: '10.0.2.15', context: PROFILE, bootstrappedAt: new Date().toISOString() };
  });
  const usersFile = join(root, 'kube', 'config');
  const secondFile = join(root, 'kube', 'second.yaml');
  await mkdir(join(root, 'kube'), { recursive: true });
  await writeFile(usersFile, USERS_FILE, { mode: 0o600 });
  process.env['KUBECONFIG'] = `${usersFile}:${secondFile}`;
  if (o.merge !== false) {
    await mergeClusterIntoKubeconfig({ ...(await credentials(home)), profile: PROFILE, server: url, setCurrent: true, env: process.env, userHome: root });
  }
  return { home, root, guestBin, guestLog, api, server, url, usersFile, secondFile, driver };
}

const status = (c: KubeCluster) => clusterStatus(lifecycleOptions(c.home, c.driver(), { command: 'status' }));
const update = (c: KubeCluster, keepContext = false) => updateContext({ ...lifecycleOptions(c.home, c.driver(), { command: 'update-context' }), keepContext });

interface Kube {
  clusters?: Array<{ name: string; cluster: Record<string, unknown> }>;
  users?: Array<{ name: string }>;
  contexts?: Array<{ name: string }>;
  'current-context'?: string;
}

const kubeconfigOf = async (path: string): Promise<Kube> => parse(await readFile(path, 'utf8')) as Kube;
const names = (k: Kube) => ({ clusters: (k.clusters ?? []).map((c) => c.name), users: (k.users ?? []).map((u) => u.name), contexts: (k.contexts ?? []).map((c) => c.name) });

function cleanup(): Promise<void> {
  for (const s of servers.splice(0)) s.close();
  delete process.env['KUBECONFIG'];
  return removeHomes();
}

describe('parsing what the guest and the API server answer', () => {
  test('systemctl is-active: active is Running; inactive, failed, activating are Stopped; anything else is Unknown', () => {
    assert.deepEqual(kubeletStatus('active\n', 0), { status: 'Running' });
    assert.deepEqual(kubeletStatus('failed\n', 3), { status: 'Stopped', message: 'the kubelet is failed' });
    assert.deepEqual(kubeletStatus('activating\n', 3), { status: 'Stopped', message: 'the kubelet is activating' });
    assert.deepEqual(kubeletStatus('inactive\n', 3).status, 'Stopped');
    assert.deepEqual(kubeletStatus('', 1), { status: 'Unknown', message: 'systemctl is-active kubelet answered "" (exit 1)' });
  });

  test('a Node\'s Ready condition: True is Ready, False NotReady with its reason, none or Unknown is Unknown', () => {
    assert.deepEqual(nodeReadiness(JSON.stringify(readyNode('True'))), { status: 'Ready' });
    assert.deepEqual(nodeReadiness(JSON.stringify(readyNode('False', 'KubeletNotReady', 'container runtime network not ready'))), { status: 'NotReady', reason: 'KubeletNotReady: container runtime network not ready' });
    assert.equal(nodeReadiness(JSON.stringify(readyNode('Unknown', 'NodeStatusUnknown', 'Kubelet stopped posting node status.'))).status, 'Unknown');
    assert.deepEqual(nodeReadiness(JSON.stringify({ kind: 'Node', status: {} })), { status: 'Unknown', reason: 'the node reports no Ready condition yet' });
    assert.equal(nodeReadiness('<html>').status, 'Unknown');
  });
});

describe('status of a Kubernetes profile', { skip }, () => {
  after(cleanup);

  test('kubelet over SSH, API server and node with the admin certificate, kubeconfig entries: each reported for what it is now', async () => {
    const c = await kubernetesCluster();
    const ok = await status(c);
    assert.deepEqual(
      [ok.host, ok.guest, ok.kubelet, ok.apiServer, ok.node, ok.kubeconfig, ok.exitCode],
      ['Running', 'Running', 'Running', 'Running', 'Ready', 'Configured', 0],
      JSON.stringify(ok.findings),
    );
    assert.equal(ok.apiServerUrl, c.url);
    assert.equal(ok.kubernetesVersion, 'v1.37.2');
    assert.deepEqual(ok.findings, []);
    assert.equal(c.api.anonymous, 0, 'every request carried the admin client certificate');
    assert.deepEqual([...c.api.clients], ['O=kubeadm:cluster-admins, CN=kubernetes-admin']);
    // Backward compatible: every field status -o json had before is still there.
    for (const key of ['name', 'driver', 'host', 'guest', 'kubelet', 'apiServer', 'kubeconfig', 'ip', 'ssh', 'acceleration', 'problem', 'exitCode']) assert.ok(key in ok, key);

    await writeFile(join(c.guestBin, 'kubelet.state'), 'failed\n');
    const kubeletDown = await status(c);
    assert.deepEqual([kubeletDown.kubelet, kubeletDown.apiServer, kubeletDown.exitCode], ['Stopped', 'Running', 2]);
    assert.deepEqual(kubeletDown.findings.map((f) => [f.component, f.message]), [['kubelet', 'the kubelet is failed']]);
    await writeFile(join(c.guestBin, 'kubelet.state'), 'active\n');

    c.api.readyz = { status: 500, body: '[+]ping ok\n[-]etcd failed: reason withheld\nreadyz check failed\n' };
    const notReady = await status(c);
    assert.deepEqual([notReady.apiServer, notReady.node, notReady.exitCode], ['Error', 'Unknown', 2]);
    assert.match(notReady.findings.find((f) => f.component === 'apiServer')?.message ?? '', /readyz answered HTTP 500: etcd failed: reason withheld$/);
    c.api.readyz = { status: 200, body: 'ok' };

    c.api.node = { status: 200, body: readyNode('False', 'KubeletNotReady', 'container runtime network not ready: cni plugin not initialized') };
    const nodeDown = await status(c);
    assert.deepEqual([nodeDown.apiServer, nodeDown.node, nodeDown.exitCode], ['Running', 'NotReady', 0]);
    assert.deepEqual(nodeDown.findings.map((f) => [f.component, f.fix]), [['node', `devcluster kubectl -p ${PROFILE} -- describe node ${PROFILE}`]]);
    assert.match(nodeDown.findings[0]?.message ?? '', /cni plugin not initialized/);
    c.api.node = { status: 404, body: { kind: 'Status', message: `nodes "${PROFILE}" not found` } };
    assert.equal((await status(c)).node, 'Unknown');
    c.api.node = { status: 200, body: readyNode('True') };

    c.server.close();
    c.server.closeAllConnections();
    const gone = await status(c);
    assert.deepEqual([gone.apiServer, gone.exitCode], ['Unreachable', 2]);
    assert.match(gone.findings.find((f) => f.component === 'apiServer')?.message ?? '', /ECONNREFUSED/);
  });

  test('a kubeconfig entry that points elsewhere is Misconfigured (bit 4) with update-context as the fix, which repairs it', async () => {
    const c = await kubernetesCluster();
    const text = await readFile(c.usersFile, 'utf8');
    await writeFile(c.usersFile, text.replace(`server: ${c.url}`, 'server: https://192.168.211.10:6443'));
    const stale = await status(c);
    assert.deepEqual([stale.kubeconfig, stale.exitCode], ['Misconfigured', 4]);
    const finding = stale.findings.find((f) => f.component === 'kubeconfig');
    assert.match(finding?.message ?? '', /cluster "lab" \(.*config\) points at https:\/\/192\.168\.211\.10:6443, but the API server is https:\/\/127\.0\.0\.1:\d+/);
    assert.equal(finding?.fix, `devcluster update-context -p ${PROFILE}`);

    const r = await update(c);
    assert.deepEqual(r.entries.map((e) => [e.kind, e.action]), [['cluster', 'updated'], ['user', 'unchanged'], ['context', 'unchanged']]);
    assert.deepEqual(r.written, [c.usersFile]);
    assert.equal((await status(c)).kubeconfig, 'Configured');

    // Another CA under the profile's cluster name (a second cluster someone named the same) is not this profile's.
    const edited = await kubeconfigOf(c.usersFile);
    const ours = edited.clusters?.find((x) => x.name === PROFILE);
    assert.ok(ours !== undefined);
    ours.cluster['certificate-authority-data'] = b64(OTHER_CA);
    await writeFile(c.usersFile, stringify(edited));
    const otherCa = await status(c);
    assert.equal(otherCa.kubeconfig, 'Misconfigured', JSON.stringify(otherCa.findings));
    assert.match(otherCa.findings.find((f) => f.component === 'kubeconfig')?.message ?? '', /does not carry the profile's CA/);
  });

  test('without the admin certificate the API server refuses the request: Error, not Running', async () => {
    const c = await kubernetesCluster();
    await rm(join(profilePaths(c.home, PROFILE).pki, 'admin.key'));
    const s = await status(c);
    assert.deepEqual([s.apiServer, s.exitCode & 2], ['Error', 2]);
    assert.match(s.findings.find((f) => f.component === 'apiServer')?.message ?? '', /answered HTTP 401/);
    assert.ok(c.api.anonymous > 0);
  });

  test('a stopped VM: kubelet and API server Stopped, node Unknown, the kubeconfig still checked; a start that never finished says so', async () => {
    const c = await kubernetesCluster();
    await stopCluster({ ...lifecycleOptions(c.home, c.driver(), { command: 'stop' }), timeoutMs: 5000 });
    const stopped = await status(c);
    assert.deepEqual([stopped.host, stopped.kubelet, stopped.apiServer, stopped.node, stopped.kubeconfig, stopped.exitCode], ['Stopped', 'Stopped', 'Stopped', 'Unknown', 'Configured', 3]);

    await patchState(c.home, (s) => {
      delete s.apiServer;
      delete s.kubernetes;
    });
    const unfinished = await status(c);
    assert.deepEqual([unfinished.apiServer, unfinished.kubeconfig, unfinished.exitCode], ['Nonexistent', 'Misconfigured', 7]);
    assert.deepEqual(unfinished.findings.map((f) => f.fix), [`devcluster start -p ${PROFILE}`, `devcluster start -p ${PROFILE}`]);
  });
});

describe('the doctor against a Kubernetes profile', { skip }, () => {
  after(cleanup);

  test('its cluster checks present the admin certificate (the API server refuses anonymous requests) and verify the server with the profile\'s CA', async () => {
    const c = await kubernetesCluster();
    const running: VmAccessor = { state: async () => 'running', details: async () => ({}) };
    const ctx = await createDoctorContext({ home: c.home, profileFlag: PROFILE, env: { HOME: c.root, KUBECONFIG: process.env['KUBECONFIG'] }, vm: running });
    const results = await runChecks(ctx, { only: ['K8S_APISERVER_NOT_READY', 'KUBECONFIG_STALE_SERVER'] });
    assert.deepEqual(results.map((r) => [r.id, r.status, r.summary]), [
      ['K8S_APISERVER_NOT_READY', 'pass', 'ready (/readyz answered ok)'],
      ['KUBECONFIG_STALE_SERVER', 'pass', `${PROFILE} -> ${c.url}`],
    ]);
    assert.equal(c.api.anonymous, 0);
    assert.equal(await ctx.kube?.node?.(PROFILE).then((n) => n.status), 'Ready');

    // A server whose certificate the profile's CA did not issue is not taken for the cluster.
    const pki = profilePaths(c.home, PROFILE).pki;
    await writeFile(join(pki, 'ca.crt'), OTHER_CA);
    const other = await createDoctorContext({ home: c.home, profileFlag: PROFILE, env: { HOME: c.root }, vm: running });
    const [r] = await runChecks(other, { only: ['K8S_APISERVER_NOT_READY'] });
    assert.equal(r?.status, 'fail');
    assert.match(r?.summary ?? '', /^GET \/readyz failed: .*(self.signed|unable to verify|certificate)/i);
    const s = await status(c);
    assert.deepEqual([s.apiServer, s.kubeconfig], ['Error', 'Misconfigured'], 'a TLS refusal is an Error, not a missing connection');
  });
});

describe('update-context', { skip }, () => {
  after(cleanup);

  test('writes the entries again after they were removed; --keep-context leaves the current context, without it the profile\'s is current', async () => {
    const c = await kubernetesCluster({ merge: false });
    assert.deepEqual(names(await kubeconfigOf(c.usersFile)), { clusters: ['prod'], users: ['prod-admin'], contexts: ['prod'] });
    const kept = await update(c, true);
    assert.deepEqual(kept.entries.map((e) => [e.kind, e.action, e.file]), [['cluster', 'created', c.usersFile], ['user', 'created', c.usersFile], ['context', 'created', c.usersFile]]);
    assert.equal(kept.currentContextFile, undefined);
    let k = await kubeconfigOf(c.usersFile);
    assert.deepEqual(names(k), { clusters: ['prod', PROFILE], users: ['prod-admin', PROFILE], contexts: ['prod', PROFILE] });
    assert.equal(k['current-context'], 'prod');
    assert.equal(k.clusters?.[1]?.cluster['server'], c.url);
    assert.equal((await status(c)).kubeconfig, 'Configured');

    const again = await update(c);
    assert.deepEqual(again.entries.map((e) => e.action), ['unchanged', 'unchanged', 'unchanged']);
    assert.equal(again.currentContextFile, c.usersFile);
    k = await kubeconfigOf(c.usersFile);
    assert.equal(k['current-context'], PROFILE);
    assert.deepEqual(k.clusters?.[0], parse(USERS_FILE).clusters[0], 'the user\'s own cluster is as it was');
    // kubectl itself reaches the fake API server through the written context (asynchronously: the server runs in this process).
    const out = await promisify(execFile)('kubectl', ['--context', PROFILE, 'get', '--raw', '/readyz'], { encoding: 'utf8', env: { ...process.env, HOME: c.root } });
    assert.equal(out.stdout, 'ok');
  });

  test('refused with a clear ID, changing nothing: no Kubernetes, a start that never finished, a PKI that is gone', async () => {
    const c = await kubernetesCluster();
    const before = await readFile(c.usersFile, 'utf8');
    const state = (await stateFile(c.home)) as ProfileState;

    await patchState(c.home, (s) => {
      if (s.created !== undefined) s.created.kubernetes = false;
    });
    await assert.rejects(update(c), isError('KUBERNETES_NOT_IN_PROFILE'));
    await patchState(c.home, (s) => {
      Object.assign(s, { created: state.created });
      delete s.apiServer;
    });
    await assert.rejects(update(c), isError('KUBERNETES_NOT_STARTED', (e) => assert.match(e.advice ?? '', /devcluster start -p lab/)));
    await patchState(c.home, (s) => {
      s.apiServer = state.apiServer;
    });
    await rm(join(profilePaths(c.home, PROFILE).pki, 'admin.crt'));
    await assert.rejects(update(c), isError('KUBE_PKI_MISSING', (e) => assert.match(e.message, /admin\.crt \(missing\)/)));
    assert.equal(await readFile(c.usersFile, 'utf8'), before);
  });
});

describe('delete of a Kubernetes profile', { skip }, () => {
  after(cleanup);

  const remove = (c: KubeCluster) => {
    const options = lifecycleOptions(c.home, c.driver(), { command: 'delete' });
    return { run: deleteProfile(options), output: () => options.captured.text() };
  };

  test('removes exactly its three entries: the user\'s entries and a same-named cluster with another CA stay', async () => {
    const c = await kubernetesCluster();
    const shadowed = `clusters:\n- name: ${PROFILE}\n  cluster:\n    server: https://lab.example.test:6443\n    certificate-authority-data: ${b64(OTHER_CA)}\n`;
    await writeFile(c.secondFile, shadowed);
    const d = remove(c);
    const r = await d.run;
    assert.deepEqual(r.kubeconfig?.removed, [`context ${PROFILE} (${c.usersFile})`, `cluster ${PROFILE} (${c.usersFile})`, `user ${PROFILE} (${c.usersFile})`]);
    assert.deepEqual(r.kubeconfig?.leftAlone, [`cluster ${PROFILE} (${c.secondFile}): its certificate-authority-data is not this profile's CA`]);
    const k = await kubeconfigOf(c.usersFile);
    assert.deepEqual(names(k), { clusters: ['prod'], users: ['prod-admin'], contexts: ['prod'] });
    assert.equal(k['current-context'], undefined, 'the current context named the removed one');
    assert.equal(await readFile(c.secondFile, 'utf8'), shadowed);
    assert.match(d.output(), /Removed from the kubeconfig: context lab .*cluster lab .*user lab/);
    assert.match(d.output(), /Left in the kubeconfig \(not devcluster's\): cluster lab/);
    assert.deepEqual(await leftovers(c.home), NOTHING);
  });

  test('a PKI that is gone or a kubeconfig that cannot be parsed: a warning, no entry touched, and the profile is deleted anyway', async () => {
    const noPki = await kubernetesCluster();
    const before = await snapshotTree(join(noPki.root, 'kube'));
    await rm(profilePaths(noPki.home, PROFILE).pki, { recursive: true });
    const d = remove(noPki);
    const r = await d.run;
    assert.deepEqual(r.kubeconfig?.removed, []);
    assert.match(r.kubeconfig?.warning ?? '', /the profile's CA .*ca\.crt is gone, so no kubeconfig entry can be proved to be this profile's and none was removed/);
    assert.match(d.output(), /kubectl config delete-context lab/);
    assert.deepEqual(await snapshotTree(join(noPki.root, 'kube')), before);
    assert.deepEqual(await leftovers(noPki.home), NOTHING);

    const broken = await kubernetesCluster();
    await writeFile(broken.secondFile, 'clusters: [\n');
    const kube = await snapshotTree(join(broken.root, 'kube'));
    const b = await remove(broken).run;
    assert.match(b.kubeconfig?.warning ?? '', /second\.yaml cannot be used/);
    assert.deepEqual(await snapshotTree(join(broken.root, 'kube')), kube);
    assert.deepEqual(await leftovers(broken.home), NOTHING);
  });

  test('a profile without Kubernetes says nothing about kubeconfig', async () => {
    const home = await homeWithImage();
    await startCluster(startOptions(home, new FakeDriver()));
    const r = await deleteProfile(lifecycleOptions(home, new FakeDriver(), { command: 'delete' }));
    assert.equal(r.kubeconfig, undefined);
  });
});

describe('logs --bundle of a Kubernetes profile', { skip }, () => {
  after(cleanup);

  test('collects crictl ps -a, the control plane\'s pod logs and kubeadm\'s log from the guest over SSH, secrets masked', async () => {
    const c = await kubernetesCluster();
    await writeFile(join(c.guestBin, 'crictl'), '#!/bin/sh\necho "CONTAINER  IMAGE  CREATED  STATE  NAME  ATTEMPT  POD ID  POD"\necho "3f1c9a  sha256:aa  1m  Running  kube-apiserver  0  77ab  kube-apiserver-lab"\necho "args: $*" >&2\n', { mode: 0o755 });
    const podDir = join(c.guestLog, 'pods', `kube-system_kube-apiserver-${PROFILE}_0f3c`, 'kube-apiserver');
    await mkdir(podDir, { recursive: true });
    const lines = Array.from({ length: 2500 }, (_, i) => `2026-11-28T10:00:00Z stderr F line ${i + 1}`);
    lines.push('2026-11-28T10:00:01Z stderr F authentication failed for Authorization: Bearer eyJhbGciOiJSUzI1NiJ9.payload.signature');
    await writeFile(join(podDir, '0.log'), `${lines.join('\n')}\n`);
    await mkdir(join(c.guestLog, 'devcluster'), { recursive: true });
    await writeFile(join(c.guestLog, 'devcluster', 'kubeadm-init.log'), '[init] Using Kubernetes version: v1.37.2\n[preflight] Running pre-flight checks\n');
    await chmod(join(c.guestLog, 'devcluster', 'kubeadm-init.log'), 0o600);

    const options = lifecycleOptions(c.home, c.driver(), { command: 'logs' });
    await showLogs(options, { lines: '60', bundle: true });
    const path = /Support bundle written: (\S+\.zip)/.exec(options.captured.text())?.[1];
    assert.ok(path !== undefined, options.captured.text());
    const env = { ...process.env, LANG: 'C', LC_ALL: 'C' };
    const members = execFileSync('unzip', ['-Z1', path], { encoding: 'utf8', env }).trim().split('\n');
    const read = (m: string) => execFileSync('unzip', ['-p', path, m], { encoding: 'utf8', env, maxBuffer: 64 * 1024 * 1024 });
    for (const m of ['guest/kubelet.journal.txt', 'guest/containerd.journal.txt', 'guest/crictl-ps.txt', 'guest/pods/kube-apiserver.log', 'guest/pods/etcd.log', 'guest/pods/kube-controller-manager.log', 'guest/pods/kube-scheduler.log', 'guest/kubeadm-init.log']) {
      assert.ok(members.includes(m), `${m} missing from ${members.join(', ')}`);
    }
    assert.match(read('guest/crictl-ps.txt'), /3f1c9a +sha256:aa .*kube-apiserver-lab/);
    assert.match(read('guest/crictl-ps.txt'), /args: ps -a/);
    const apiserver = read('guest/pods/kube-apiserver.log');
    assert.ok(apiserver.includes(`==> /var/log/pods/kube-system_kube-apiserver-${PROFILE}_0f3c/kube-apiserver/0.log <==\n`), apiserver.slice(0, 400));
    assert.ok(!apiserver.includes('line 501\n') && apiserver.includes('line 502\n') && apiserver.includes('line 2500\n'), 'the last 2000 lines');
    assert.ok(!apiserver.includes('eyJhbGciOiJSUzI1NiJ9'), 'the bearer token is masked');
    assert.equal(read('guest/pods/etcd.log'), '(no log files)\n');
    assert.match(read('guest/kubeadm-init.log'), /\[preflight\] Running pre-flight checks/);
  });
});
