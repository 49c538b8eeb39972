/**
 * The real kubeadm of a built node bundle takes the host-made PKI as its own:
 * `kubeadm init phase certs all` reuses the three CAs, the service-account
 * key and the API server certificate without changing a byte, signs the
 * certificates it adds with our CA; it does not check an existing API server
 * certificate's names, which is why createClusterPki reissues it when the
 * guest's address moves.
 *
 * Reads a bundle that exists, like kube-bundle.test.ts: DEVCLUSTER_KUBE_BUNDLE
 * (default /var/cache/devcluster-test/kube-bundle/<version>), version
 * DEVCLUSTER_KUBE_VERSION (default v1.37.2). Without one it is skipped off CI
 * and fails under CI.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { snapshotTree, tempDir } from '../helpers/cli.ts';
import { skipUnlessPresent } from '../helpers/prerequisite.ts';
import { createClusterPki } from '../../src/kube/pki.ts';
import type { ClusterPkiRequest } from '../../src/kube/pki.ts';

const version = process.env['DEVCLUSTER_KUBE_VERSION'] ?? 'v1.37.2';
const bundle = process.env['DEVCLUSTER_KUBE_BUNDLE'] ?? `/var/cache/devcluster-test/kube-bundle/${version}`;
const kubeadm = join(bundle, 'bin', 'kubeadm');
const skip = skipUnlessPresent(
  existsSync(kubeadm) && existsSync('/usr/bin/openssl')
    ? false
    : `needs ${kubeadm} (build a bundle with images/kubernetes/build.sh ${version} ${bundle}) and /usr/bin/openssl`,
);

const GUEST_IP = '192.168.5.15';
const request: ClusterPkiRequest = {
  apiServerSans: { dns: ['control-plane.devcluster.internal'], ips: [GUEST_IP] },
  clusterName: 'dev',
  nodeName: 'dev',
  validityDays: 365,
};

/** A v1beta4 config as the bootstrap renders it, with certificatesDir pointing at the host's PKI. */
function kubeadmConfig(certificatesDir: string, advertiseAddress: string): string {
  return [
    stringify({
      apiVersion: 'kubeadm.k8s.io/v1beta4',
      kind: 'InitConfiguration',
      localAPIEndpoint: { advertiseAddress, bindPort: 6443 },
      nodeRegistration: { name: 'dev' },
    }),
    stringify({
      apiVersion: 'kubeadm.k8s.io/v1beta4',
      kind: 'ClusterConfiguration',
      kubernetesVersion: version,
      certificatesDir,
      controlPlaneEndpoint: 'control-plane.devcluster.internal:6443',
      networking: { serviceSubnet: '10.96.0.0/12', podSubnet: '10.244.0.0/16', dnsDomain: 'cluster.local' },
    }),
  ].join('---\n');
}

function run(file: string, args: string[]): { status: number | null; output: string } {
  const r = spawnSync(file, args, { encoding: 'utf8', env: { PATH: '/usr/bin:/bin', LANG: 'C', LC_ALL: 'C' }, timeout: 120_000 });
  return { status: r.status, output: `${r.stdout}${r.stderr}` };
}

describe('kubeadm reuses the host-made PKI', { skip }, () => {
  let root: string;

  before(async () => {
    root = await tempDir('devcluster-pki-kubeadm-');
  });

  after(async () => {
    if (root !== undefined) await rm(root, { recursive: true, force: true });
  });

  test('init phase certs keeps every file we made and signs its own with our CA', async () => {
    const dir = join(root, 'pki');
    await createClusterPki(dir, request);
    const ours = await snapshotTree(dir);
    const config = join(root, 'kubeadm.yaml');
    await writeFile(config, kubeadmConfig(dir, GUEST_IP));

    const r = run(kubeadm, ['init', 'phase', 'certs', 'all', '--config', config]);
    assert.equal(r.status, 0, r.output);
    for (const line of [
      'Using existing ca certificate authority',
      'Using existing apiserver certificate and key on disk',
      'Using existing front-proxy-ca certificate authority',
      'Using existing etcd/ca certificate authority',
      'Using the existing "sa" key',
    ]) {
      assert.ok(r.output.includes(line), `"${line}" in:\n${r.output}`);
    }
    assert.doesNotMatch(r.output, /Generating "(ca|apiserver|front-proxy-ca|etcd\/ca|sa)"/);
    const after = await snapshotTree(dir);
    for (const [path, entry] of Object.entries(ours)) assert.equal(after[path], entry, `${path} unchanged`);

    const verify = run('/usr/bin/openssl', ['verify', '-CAfile', join(dir, 'ca.crt'), join(dir, 'apiserver-kubelet-client.crt')]);
    assert.equal(verify.status, 0, verify.output);
    const etcd = run('/usr/bin/openssl', ['verify', '-CAfile', join(dir, 'etcd', 'ca.crt'), join(dir, 'etcd', 'server.crt')]);
    assert.equal(etcd.status, 0, etcd.output);
  });

  test('kubeadm does not check the names of an existing apiserver.crt, so the host reissues it when the address moves', async () => {
    const dir = join(root, 'moved');
    await createClusterPki(dir, request);
    const config = join(root, 'moved.yaml');
    await writeFile(config, kubeadmConfig(dir, '192.168.5.23'));
    const sans = (): string => run('/usr/bin/openssl', ['x509', '-in', join(dir, 'apiserver.crt'), '-noout', '-ext', 'subjectAltName']).output;

    // kubeadm 1.37's init workflow checks only the chain of an existing leaf
    // (cmd/kubeadm/app/cmd/phases/init/certs.go runCertPhase): a stale
    // certificate would be served as it is.
    const stale = run(kubeadm, ['init', 'phase', 'certs', 'apiserver', '--config', config]);
    assert.equal(stale.status, 0, stale.output);
    assert.match(stale.output, /Using existing apiserver certificate and key on disk/);
    assert.doesNotMatch(sans(), /192\.168\.5\.23/);

    const moved = await createClusterPki(dir, { ...request, apiServerSans: { ...request.apiServerSans, ips: ['192.168.5.23'] } });
    assert.equal(moved.outcomes.find((o) => o.item === 'apiserver')?.action, 'reissued');
    const reused = run(kubeadm, ['init', 'phase', 'certs', 'apiserver', '--config', config]);
    assert.equal(reused.status, 0, reused.output);
    assert.match(reused.output, /Using existing apiserver certificate and key on disk/);
    assert.match(sans(), /IP Address:192\.168\.5\.23/);
  });
});
