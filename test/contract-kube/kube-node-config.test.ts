// The configuration devcluster renders for the guest, checked by the bundle's
// own programs: kubeadm validates the kubeadm config, containerd loads its
// config and shows the values it took.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { skipUnlessPresent } from '../helpers/prerequisite.ts';
import { kubeadmConfig, CONTROL_PLANE_NAME } from '../../src/kube/kubeadm-config.ts';
import { containerdConfig } from '../../src/kube/node-files.ts';

const version = process.env['DEVCLUSTER_KUBE_VERSION'] ?? 'v1.37.2';
const bundle = process.env['DEVCLUSTER_KUBE_BUNDLE'] ?? `/var/cache/devcluster-test/kube-bundle/${version}`;
const skip = skipUnlessPresent(existsSync(join(bundle, 'manifest.json')) ? false : `needs a built node bundle at ${bundle} (images/kubernetes/build.sh)`);

function run(bin: string, args: string[]): { status: number | null; out: string } {
  const r = spawnSync(join(bundle, 'bin', bin), args, { encoding: 'utf8', timeout: 60_000 });
  return { status: r.status, out: `${r.stdout}${r.stderr}` };
}

describe('the guest configuration, checked by the bundle\'s programs', { skip }, () => {
  test('kubeadm accepts the rendered v1beta4 configuration, and says so for a broken one', () => {
    const dir = mkdtempSync(join(tmpdir(), 'kubeadm-config-'));
    try {
      const good = kubeadmConfig({ kubernetesVersion: version, clusterName: 'dev', nodeName: 'dev', advertiseAddress: '10.0.2.15', certSans: { dns: [CONTROL_PLANE_NAME, 'localhost'], ips: ['10.0.2.15', '127.0.0.1'] } });
      writeFileSync(join(dir, 'good.yaml'), good);
      const ok = run('kubeadm', ['config', 'validate', '--config', join(dir, 'good.yaml')]);
      assert.equal(ok.status, 0, ok.out);
      // The same file with a field kubeadm does not know must be refused: validate is strict.
      writeFileSync(join(dir, 'bad.yaml'), good.replace('imagePullPolicy: IfNotPresent', 'imagePullPolicy: Sometimes'));
      const bad = run('kubeadm', ['config', 'validate', '--config', join(dir, 'bad.yaml')]);
      assert.notEqual(bad.status, 0, 'an invalid imagePullPolicy was accepted');
      assert.match(bad.out, /imagePullPolicy|Sometimes/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test('containerd loads the rendered config with systemd cgroups, the pinned pause image and the CNI dirs', () => {
    const dir = mkdtempSync(join(tmpdir(), 'containerd-config-'));
    try {
      writeFileSync(join(dir, 'config.toml'), containerdConfig({ sandboxImage: 'registry.k8s.io/pause:3.10.2', podCidr: '10.244.0.0/24' }));
      const r = run('containerd', ['--config', join(dir, 'config.toml'), 'config', 'dump']);
      assert.equal(r.status, 0, r.out);
      // Version 3 is what containerd 2.3 (Kubernetes 1.36) reads; 2.4 migrates it in memory and warns of nothing else.
      assert.deepEqual(r.out.split('\n').filter((l) => l.includes('level=warning') || l.includes('level=error')).map((l) => /msg="([^"]+)"/.exec(l)?.[1]), [
        'Configuration migrated from version 3, use `containerd config migrate` to avoid migration',
      ]);
      assert.match(r.out, /SystemdCgroup = true/);
      assert.match(r.out, /sandbox = ['"]registry\.k8s\.io\/pause:3\.10\.2['"]/);
      assert.match(r.out, /bin_dirs = \[['"]\/opt\/cni\/bin['"]\]/);
      assert.match(r.out, /config_path = ['"]\/etc\/containerd\/certs\.d['"]/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
