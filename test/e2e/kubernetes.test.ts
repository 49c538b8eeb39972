// `devcluster start` with default Kubernetes settings in the QEMU guest under
// software emulation, checked from the host with the real kubectl through the
// merged kubeconfig: a Ready node, CoreDNS, a pod from a bundle image exec'd
// into, a Service reached by ClusterIP and DNS name from another pod, a warm
// restart without kubeadm, and a delete that takes exactly its entries along.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { REPO } from '../helpers/cli.ts';
import { skipUnlessPresent } from '../helpers/prerequisite.ts';
import { connect } from '../../src/ssh/session.ts';
import { E2E_HOME, e2e, ensureDebianImage, requireRootAndQemu } from './guest.ts';

const PROFILE = 'e2e-kube';
const VERSION = process.env['DEVCLUSTER_KUBE_VERSION'] ?? 'v1.37.2';
const BUNDLE = process.env['DEVCLUSTER_KUBE_BUNDLE'] ?? `/var/cache/devcluster-test/kube-bundle/${VERSION}`;
/** The VM only: every Kubernetes setting is the default. 3 GiB and a 10 GiB disk hold the node and the test's pods. */
const VM = ['--driver=qemu', '--image=debian-12', '--qemu-accel=tcg', '--cpus=2', '--memory=3g', '--disk-size=10g'];
const profileDir = join(E2E_HOME, 'profiles', PROFILE);

const skip = requireRootAndQemu()
  || skipUnlessPresent(existsSync(join(BUNDLE, 'manifest.json')) ? false : `needs the node bundle built at ${BUNDLE} (images/kubernetes/build.sh)`)
  || skipUnlessPresent(existsSync('/usr/bin/kubectl') ? false : 'needs kubectl at /usr/bin/kubectl');

const work = mkdtempSync(join(tmpdir(), 'devcluster-e2e-kube-'));
const kubeconfig = join(work, 'kubeconfig');
const env = { KUBECONFIG: kubeconfig };

/** A kubeconfig someone already uses: its entries and fields must survive start and delete. */
const OTHER = `apiVersion: v1
kind: Config
clusters:
- name: other
  cluster:
    server: https://other.example.internal:6443
    insecure-skip-tls-verify: true
users:
- name: other
  user:
    token: not-a-real-token
contexts:
- name: other
  context:
    cluster: other
    user: other
    namespace: team
current-context: other
preferences: {}
`;

function kubectl(...args: string[]): { code: number; stdout: string; stderr: string } {
  const r = spawnSync('/usr/bin/kubectl', ['--request-timeout=60s', ...args], { env: { ...process.env, KUBECONFIG: kubeconfig }, encoding: 'utf8', timeout: 10 * 60_000 });
  return { code: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
}

function ok(r: { code: number; stdout: string; stderr: string }, what: string): string {
  assert.equal(r.code, 0, `${what}:\n${r.stdout}\n${r.stderr}`);
  return r.stdout;
}

async function guest(command: string): Promise<string> {
  const r = await e2e(['ssh', '-p', PROFILE, '--', command], env);
  assert.equal(r.code, 0, `guest: ${command}\n${r.stdout}\n${r.stderr}`);
  return r.stdout.trim();
}

/** The client pod's image: built from test/e2e/fixtures/netcheck with Go and the bundle recipe's OCI writer. */
function buildNetcheckImage(): string {
  const out = join(work, 'netcheck');
  execFileSync('go', ['build', '-trimpath', '-o', out, '.'], { cwd: join(REPO, 'test/e2e/fixtures/netcheck'), env: { ...process.env, CGO_ENABLED: '0' }, stdio: 'inherit' });
  const tool = join(work, 'bundletool');
  execFileSync('go', ['build', '-trimpath', '-o', tool, '.'], { cwd: join(REPO, 'images/kubernetes/bundletool'), env: { ...process.env, CGO_ENABLED: '0' }, stdio: 'inherit' });
  const archive = join(work, 'netcheck.tar');
  execFileSync(tool, ['image', '-ref', 'devcluster.test/netcheck:e2e', '-created', '2026-01-01T00:00:00Z', '-out', archive, '-file', `/netcheck=${out}`, '-entrypoint', '/netcheck'], { stdio: 'inherit' });
  return archive;
}

async function importIntoGuest(archive: string): Promise<void> {
  const state = JSON.parse(readFileSync(join(profileDir, 'state.json'), 'utf8')) as { ssh: { host: string; port: number; user: string } };
  const ssh = await connect({
    host: state.ssh.host,
    port: state.ssh.port,
    username: state.ssh.user,
    privateKeyPath: join(profileDir, 'keys', 'id_ed25519'),
    expectedHostKey: readFileSync(join(profileDir, 'keys', 'ssh_host_ed25519_key.pub'), 'utf8'),
  });
  try {
    await ssh.putFile(archive, '/tmp/netcheck.tar');
    await ssh.run('sudo /usr/local/bin/ctr -n k8s.io images import /tmp/netcheck.tar', { timeoutMs: 10 * 60_000 });
  } finally {
    ssh.dispose();
  }
}

describe('Kubernetes in the QEMU guest (software emulation)', { skip }, () => {
  before(async () => {
    writeFileSync(kubeconfig, OTHER, { mode: 0o600 });
    await ensureDebianImage();
    await e2e(['delete', '-p', PROFILE], env);
    const imported = await e2e(['bundle', 'import', BUNDLE], env);
    assert.equal(imported.code, 0, `bundle import:\n${imported.stdout}\n${imported.stderr}`);
  });

  after(async () => {
    await e2e(['delete', '-p', PROFILE], env);
    rmSync(work, { recursive: true, force: true });
  });

  test('start brings up a Ready node and a kubectl context beside the entries already there', { timeout: 75 * 60_000 }, async () => {
    const started = await e2e(['start', '-p', PROFILE, ...VM, '-o', 'json'], env);
    assert.equal(started.code, 0, `start:\n${started.stdout}\n${started.stderr}`);
    const result = JSON.parse(started.stdout) as { kubernetes: { version: string; server: string; context: string; bootstrap: string; images: string }; timings: Array<{ title: string; ms: number }> };
    assert.equal(result.kubernetes.version, VERSION);
    assert.equal(result.kubernetes.bootstrap, 'initialized');
    // A bundle built as root carries containerd's state (images/kubernetes/build.sh's preload part); the node then starts from it.
    const hasPreload = (JSON.parse(readFileSync(join(BUNDLE, 'manifest.json'), 'utf8')) as { preload?: unknown }).preload !== undefined;
    assert.equal(result.kubernetes.images, hasPreload ? 'preloaded' : 'imported');
    assert.equal(result.kubernetes.context, PROFILE);
    process.stderr.write(`start timings: ${result.timings.map((t) => `${t.title} ${(t.ms / 1000).toFixed(1)}s`).join('; ')}\n`);

    assert.equal(ok(kubectl('config', 'current-context'), 'current-context').trim(), PROFILE);
    assert.equal(ok(kubectl('get', 'node', PROFILE, '-o', 'jsonpath={.status.conditions[?(@.type=="Ready")].status}'), 'node').trim(), 'True');
    assert.equal(ok(kubectl('version', '-o', 'json'), 'version').includes(`"gitVersion": "${VERSION}"`), true, 'the server reports the bundle\'s version');
    // The entries that were there before are still there, unknown fields included.
    assert.equal(ok(kubectl('config', 'view', '-o', 'jsonpath={.contexts[?(@.name=="other")].context.namespace}'), 'other context').trim(), 'team');
    assert.equal(ok(kubectl('config', 'view', '-o', 'jsonpath={.clusters[?(@.name=="other")].cluster.server}'), 'other cluster').trim(), 'https://other.example.internal:6443');
    assert.match(readFileSync(kubeconfig, 'utf8'), /preferences: \{\}/);

    // status asks now, with short limits; an emulated API server sometimes misses one, so it is asked a few times.
    const healthy = [0, 'Running', 'Running', 'Running', 'Running', 'Ready', 'Configured'];
    let seen: unknown[] = [];
    let shown = '';
    for (let i = 0; i < 6; i++) {
      const status = await e2e(['status', '-p', PROFILE, '-o', 'json'], env);
      const doc = JSON.parse(status.stdout) as Record<string, unknown>;
      seen = [status.code, doc['host'], doc['guest'], doc['kubelet'], doc['apiServer'], doc['node'], doc['kubeconfig']];
      shown = status.stdout;
      if (JSON.stringify(seen) === JSON.stringify(healthy)) break;
      await sleep(10_000);
    }
    assert.deepEqual(seen, healthy, shown);
  });

  test('CoreDNS and kube-proxy run, and a pod from a bundle image is exec\'d into', { timeout: 20 * 60_000 }, async () => {
    const system = ok(kubectl('-n', 'kube-system', 'get', 'pods', '-l', 'k8s-app in (kube-dns,kube-proxy)', '-o', 'jsonpath={range .items[*]}{.metadata.labels.k8s-app}={.status.phase}{"\\n"}{end}'), 'system pods');
    const rows = system.trim().split('\n');
    assert.ok(rows.includes('kube-dns=Running') && rows.includes('kube-proxy=Running'), system);
    assert.ok(rows.every((r) => r.endsWith('=Running')), system);

    ok(kubectl('run', 'pause-check', '--image', 'registry.k8s.io/pause:3.10.2', '--image-pull-policy', 'Never', '--restart', 'Never'), 'run pause');
    ok(kubectl('wait', '--for=condition=Ready', 'pod/pause-check', '--timeout=10m'), 'pause pod Ready');
    const exec = ok(kubectl('exec', 'pause-check', '--', '/pause', '-v'), 'exec');
    assert.match(exec, /pause\.c v3\.10\.2/);
  });

  test('a Service is reached by ClusterIP and by DNS name from another pod', { timeout: 30 * 60_000 }, async () => {
    const archive = buildNetcheckImage();
    await importIntoGuest(archive);
    const manifest = `apiVersion: v1
kind: Pod
metadata:
  name: e2e-etcd
  labels: { app: e2e-etcd }
spec:
  containers:
  - name: etcd
    image: registry.k8s.io/etcd:3.7.0-0
    imagePullPolicy: Never
    command: [etcd, --data-dir=/data, --listen-client-urls=http://0.0.0.0:2379, --advertise-client-urls=http://127.0.0.1:2379, --listen-peer-urls=http://127.0.0.1:2380]
    volumeMounts: [{ name: data, mountPath: /data }]
  volumes: [{ name: data, emptyDir: {} }]
---
apiVersion: v1
kind: Service
metadata:
  name: e2e-etcd
spec:
  selector: { app: e2e-etcd }
  ports: [{ port: 80, targetPort: 2379 }]
`;
    writeFileSync(join(work, 'service.yaml'), manifest);
    ok(kubectl('apply', '-f', join(work, 'service.yaml')), 'apply');
    ok(kubectl('wait', '--for=condition=Ready', 'pod/e2e-etcd', '--timeout=10m'), 'server pod Ready');
    const clusterIp = ok(kubectl('get', 'service', 'e2e-etcd', '-o', 'jsonpath={.spec.clusterIP}'), 'service').trim();
    // The endpoint slice comes from the controller manager a moment after the pod is Ready.
    const endpoints = (): string => kubectl('get', 'endpointslices', '-l', 'kubernetes.io/service-name=e2e-etcd', '-o', 'jsonpath={.items[*].endpoints[*].addresses[*]}').stdout.trim();
    for (let i = 0; i < 100 && endpoints() === ''; i++) await sleep(3000);
    assert.match(endpoints(), /^10\.244\.0\.\d+$/, 'the Service has its pod as endpoint');
    assert.match(clusterIp, /^10\.(9[6-9]|1[01]\d)\.\d+\.\d+$/, 'a ClusterIP from the service subnet 10.96.0.0/12');

    ok(kubectl('run', 'netcheck', '--image', 'devcluster.test/netcheck:e2e', '--image-pull-policy', 'Never', '--restart', 'Never', '--',
      `http://${clusterIp}/health`, 'http://e2e-etcd.default.svc.cluster.local/health'), 'run netcheck');
    const done = kubectl('wait', '--for=jsonpath={.status.phase}=Succeeded', 'pod/netcheck', '--timeout=10m');
    const logs = kubectl('logs', 'netcheck');
    assert.equal(done.code, 0, `netcheck did not succeed:\n${done.stderr}\n${logs.stdout}`);
    assert.match(logs.stdout, new RegExp(`^ok http://${clusterIp.replace(/\./g, '\\.')}/health .*"health":"true"`, 'm'));
    assert.match(logs.stdout, /^ok http:\/\/e2e-etcd\.default\.svc\.cluster\.local\/health .*"health":"true"/m);
  });

  test('devcluster kubectl runs the bundle\'s kubectl against the profile\'s context', { timeout: 5 * 60_000 }, async () => {
    const r = await e2e(['kubectl', '-p', PROFILE, '--', 'get', 'nodes', '-o', 'name'], { ...env, PATH: '/usr/sbin:/sbin' });
    assert.equal(r.code, 0, `${r.stdout}\n${r.stderr}`);
    assert.equal(r.stdout.trim(), `node/${PROFILE}`);
    const version = await e2e(['kubectl', '-p', PROFILE, '--', 'version', '--client', '-o', 'json'], env);
    assert.match(version.stdout, new RegExp(`"gitVersion": "${VERSION.replace(/\./g, '\\.')}"`));
  });

  test('stop, then start warm: no kubeadm, the node Ready again', { timeout: 45 * 60_000 }, async () => {
    const initDone = await guest('cat /var/lib/devcluster/kubeadm-init.done; stat -c %Y /var/log/devcluster/kubeadm-init.log');
    const stopped = await e2e(['stop', '-p', PROFILE], env);
    assert.equal(stopped.code, 0, `stop:\n${stopped.stdout}\n${stopped.stderr}`);
    // The accelerator is given again (a flag is not kept by the profile), so no KVM probe runs.
    const started = await e2e(['start', '-p', PROFILE, '--qemu-accel=tcg', '-o', 'json'], env);
    assert.equal(started.code, 0, `warm start:\n${started.stdout}\n${started.stderr}`);
    const result = JSON.parse(started.stdout) as { kubernetes: { bootstrap: string; images: string }; timings: Array<{ title: string; ms: number }> };
    assert.equal(result.kubernetes.bootstrap, 'warm');
    assert.equal(result.kubernetes.images, 'present');
    process.stderr.write(`warm start timings: ${result.timings.map((t) => `${t.title} ${(t.ms / 1000).toFixed(1)}s`).join('; ')}\n`);
    assert.equal(await guest('cat /var/lib/devcluster/kubeadm-init.done; stat -c %Y /var/log/devcluster/kubeadm-init.log'), initDone, 'kubeadm init did not run again');
    assert.equal(ok(kubectl('get', 'node', PROFILE, '-o', 'jsonpath={.status.conditions[?(@.type=="Ready")].status}'), 'node').trim(), 'True');
  });

  test('delete removes the VM, its files and exactly its three kubeconfig entries', { timeout: 10 * 60_000 }, async () => {
    const deleted = await e2e(['delete', '-p', PROFILE], env);
    assert.equal(deleted.code, 0, `delete:\n${deleted.stdout}\n${deleted.stderr}`);
    assert.equal(existsSync(profileDir), false, 'the profile directory is gone');
    const view = ok(kubectl('config', 'view', '-o', 'jsonpath={.clusters[*].name} / {.users[*].name} / {.contexts[*].name}'), 'view');
    assert.equal(view.trim(), 'other / other / other');
    assert.equal(ok(kubectl('config', 'view', '-o', 'jsonpath={.contexts[?(@.name=="other")].context.namespace}'), 'other context').trim(), 'team');
  });
});
