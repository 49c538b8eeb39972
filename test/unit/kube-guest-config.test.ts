import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseAllDocuments } from 'yaml';
import { API_SERVER_PORT, CONTROL_PLANE_NAME, POD_SUBNET, SERVICE_SUBNET, kubeadmConfig } from '../../src/kube/kubeadm-config.ts';
import { MIRRORED_REGISTRIES, cniConflist, nodeFiles, registryHostsToml } from '../../src/kube/node-files.ts';
import { filesForGuest, guestDestination } from '../../src/kube/guest-bundle.ts';
import type { BundleManifest } from '../../src/kube/bundle-manifest.ts';

/** A value down a path of keys in parsed YAML/JSON; undefined when a step is missing. */
function at(value: unknown, ...path: Array<string | number>): unknown {
  let v = value;
  for (const k of path) v = typeof v === 'object' && v !== null ? (v as Record<string | number, unknown>)[k] : undefined;
  return v;
}

const input = { kubernetesVersion: 'v1.37.2', clusterName: 'dev', nodeName: 'dev', advertiseAddress: '10.0.2.15', certSans: { dns: [CONTROL_PLANE_NAME], ips: ['10.0.2.15', '127.0.0.1'] } };

test('kubeadm config: four documents, pinned version, no taint, the subnets, a stable endpoint, systemd cgroups', () => {
  const [init, cluster, kubelet, proxy, extra] = parseAllDocuments(kubeadmConfig(input)).map((d) => d.toJS() as unknown);
  assert.deepEqual([at(init, 'kind'), at(cluster, 'kind'), at(kubelet, 'kind'), at(proxy, 'kind'), extra], ['InitConfiguration', 'ClusterConfiguration', 'KubeletConfiguration', 'KubeProxyConfiguration', undefined]);
  assert.equal(at(init, 'apiVersion'), 'kubeadm.k8s.io/v1beta4');
  assert.deepEqual(at(init, 'nodeRegistration', 'taints'), []);
  assert.equal(at(init, 'nodeRegistration', 'imagePullPolicy'), 'IfNotPresent');
  assert.equal(at(init, 'nodeRegistration', 'ignorePreflightErrors'), undefined, 'no preflight check is ignored');
  assert.deepEqual(at(init, 'localAPIEndpoint'), { advertiseAddress: '10.0.2.15', bindPort: API_SERVER_PORT });
  assert.equal(at(cluster, 'kubernetesVersion'), 'v1.37.2');
  assert.equal(at(cluster, 'controlPlaneEndpoint'), `${CONTROL_PLANE_NAME}:6443`);
  assert.deepEqual(at(cluster, 'networking'), { podSubnet: POD_SUBNET, serviceSubnet: SERVICE_SUBNET, dnsDomain: 'cluster.local' });
  assert.deepEqual(at(cluster, 'apiServer', 'certSANs'), [CONTROL_PLANE_NAME, '10.0.2.15', '127.0.0.1']);
  // etcd on loopback only, so its URLs survive a change of the guest's address.
  const etcdArgs = Object.fromEntries((at(cluster, 'etcd', 'local', 'extraArgs') as Array<{ name: string; value: string }>).map((a) => [a.name, a.value]));
  assert.ok(Object.values(etcdArgs).every((v) => !v.includes('10.0.2.15')), JSON.stringify(etcdArgs));
  assert.equal(etcdArgs['initial-cluster'], 'dev=https://127.0.0.1:2380');
  assert.equal(at(kubelet, 'cgroupDriver'), 'systemd');
  assert.deepEqual([at(cluster, 'controllerManager', 'extraArgs'), at(cluster, 'scheduler', 'extraArgs')], [[{ name: 'leader-elect', value: 'false' }], [{ name: 'leader-elect', value: 'false' }]]);
});

test('node files: units, containerd, crictl, CNI, modules and sysctls; a mirror adds hosts.toml for both registries', () => {
  const plain = nodeFiles({ sandboxImage: 'registry.k8s.io/pause:3.10.2', podCidr: '10.244.0.0/24' });
  const paths = plain.map((f) => f.path);
  for (const p of ['/etc/systemd/system/containerd.service', '/etc/systemd/system/kubelet.service', '/etc/systemd/system/kubelet.service.d/10-kubeadm.conf', '/etc/containerd/config.toml', '/etc/crictl.yaml', '/etc/modules-load.d/devcluster-kubernetes.conf', '/etc/sysctl.d/90-devcluster-kubernetes.conf']) {
    assert.ok(paths.includes(p), p);
  }
  assert.ok(!paths.some((p) => p.includes('certs.d')), 'no mirror, no hosts.toml');
  const sysctl = plain.find((f) => f.path.endsWith('kubernetes.conf') && f.path.includes('sysctl'));
  assert.match(sysctl?.content ?? '', /^net\.ipv4\.ip_forward = 1$/m);
  assert.match(sysctl?.content ?? '', /^net\.bridge\.bridge-nf-call-iptables = 1$/m);
  const mirrored = nodeFiles({ sandboxImage: 'registry.k8s.io/pause:3.10.2', podCidr: '10.244.0.0/24', registryMirror: 'https://mirror.internal:5000' });
  const hosts = mirrored.filter((f) => f.path.endsWith('/hosts.toml'));
  assert.deepEqual(hosts.map((f) => f.path), MIRRORED_REGISTRIES.map((r) => `/etc/containerd/certs.d/${r}/hosts.toml`));
  assert.match(registryHostsToml('docker.io', 'https://m'), /^server = "https:\/\/registry-1\.docker\.io"$/m);
  assert.match(registryHostsToml('registry.k8s.io', 'https://m'), /^\[host\."https:\/\/m"\]$/m);
});

test('the CNI network is the node\'s pod CIDR on a bridge with port mapping', () => {
  const c: unknown = JSON.parse(cniConflist('10.244.0.0/24'));
  assert.deepEqual([at(c, 'plugins', 0, 'type'), at(c, 'plugins', 1, 'type'), at(c, 'plugins', 2)], ['bridge', 'portmap', undefined]);
  assert.deepEqual(at(c, 'plugins', 0, 'ipam', 'ranges'), [[{ subnet: '10.244.0.0/24' }]]);
  assert.equal(at(c, 'plugins', 0, 'isGateway'), true);
});

test('what of a bundle goes into the guest, and where', () => {
  assert.equal(guestDestination('bin/kubeadm'), '/usr/local/bin/kubeadm');
  assert.equal(guestDestination('bin/runc'), '/usr/local/sbin/runc');
  assert.equal(guestDestination('cni/bridge'), '/opt/cni/bin/bridge');
  assert.equal(guestDestination('components/etcd'), undefined, 'the images carry the components');
  assert.equal(guestDestination('bin/sub/x'), undefined);
  const f = (path: string) => ({ path, size: 1, mode: '0755', sha256: '0'.repeat(64) });
  const manifest = {
    images: [{ ref: 'registry.k8s.io/pause:3.10.2', file: 'images/pause_3.10.2.tar', manifestDigest: `sha256:${'1'.repeat(64)}` }],
    files: [f('bin/kubelet'), f('cni/loopback'), f('components/pause'), f('images/pause_3.10.2.tar'), f('versions/kubernetes')],
  } as unknown as BundleManifest;
  assert.deepEqual(filesForGuest(manifest).map((x) => x.path), ['bin/kubelet', 'cni/loopback', 'images/pause_3.10.2.tar']);
});

test('re-addressing replaces whole addresses only, in every file given, with the real sed', async () => {
  const { readdressScript } = await import('../../src/kube/node-bootstrap.ts');
  const { mkdtempSync, writeFileSync, readFileSync, rmSync } = await import('node:fs');
  const { execFileSync } = await import('node:child_process');
  const { join } = await import('node:path');
  const { tmpdir } = await import('node:os');
  const dir = mkdtempSync(join(tmpdir(), 'readdress-'));
  try {
    const a = join(dir, 'kube-apiserver.yaml');
    const b = join(dir, 'kubelet.conf');
    writeFileSync(a, '- --advertise-address=10.0.2.15\n    host: 10.0.2.15\n10.0.2.150 other\n110.0.2.15 x\n10.0.2.15');
    writeFileSync(b, 'server: https://10.0.2.15:6443\n');
    execFileSync('sh', ['-c', readdressScript('10.0.2.15', '192.168.5.7', [a, b, join(dir, 'absent.conf')]).join('\n')]);
    assert.equal(readFileSync(a, 'utf8'), '- --advertise-address=192.168.5.7\n    host: 192.168.5.7\n10.0.2.150 other\n110.0.2.15 x\n192.168.5.7');
    assert.equal(readFileSync(b, 'utf8'), 'server: https://192.168.5.7:6443\n');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
