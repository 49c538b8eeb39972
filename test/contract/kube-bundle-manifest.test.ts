/**
 * src/kube/bundle-manifest.ts against real files in a temporary bundle
 * directory: a correct manifest passes, and each way a bundle can be wrong
 * (a changed byte, a missing or extra file, a wrong mode, a path leaving the
 * bundle, a short image reference) is named, without anything on disk changing.
 * The manifest's shape is the one images/kubernetes/bundletool writes; the
 * built bundle itself is checked by test/contract-kube/kube-bundle.test.ts.
 */
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { chmodSync, mkdirSync, mkdtempSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseBundleManifest, verifyBundleFiles } from '../../src/kube/bundle-manifest.ts';
import type { BundleManifest } from '../../src/kube/bundle-manifest.ts';

const dir = mkdtempSync(join(tmpdir(), 'kube-bundle-manifest-'));
after(() => rmSync(dir, { recursive: true, force: true }));

const contents: Record<string, { data: string; mode: number }> = {
  'bin/kubeadm': { data: '#!/bin/sh\necho kubeadm\n', mode: 0o755 },
  'cni/bridge': { data: 'bridge bytes', mode: 0o755 },
  'images/pause_3.10.2.tar': { data: 'not really a tar, the verifier only hashes it', mode: 0o644 },
  'versions/etcd': { data: 'v3.7.0\n', mode: 0o644 },
};
for (const [path, { data, mode }] of Object.entries(contents)) {
  mkdirSync(join(dir, path, '..'), { recursive: true });
  writeFileSync(join(dir, path), data);
  chmodSync(join(dir, path), mode);
}

function goodManifest(): Record<string, unknown> {
  return {
    schemaVersion: 1,
    kubernetesVersion: 'v1.37.2',
    platform: { architecture: 'amd64', os: 'linux' },
    goVersion: 'go1.26.8',
    components: {
      kubernetes: 'v1.37.2', etcd: 'v3.7.0', containerd: 'v2.4.2', runc: 'v1.5.3', crictl: 'v1.37.0',
      'cni-plugins': 'v1.10.0', coredns: 'v1.14.6', pause: '3.10.2',
    },
    images: [{ ref: 'registry.k8s.io/pause:3.10.2', file: 'images/pause_3.10.2.tar', manifestDigest: `sha256:${'a'.repeat(64)}` }],
    files: Object.entries(contents).map(([path, { data, mode }]) => ({
      path, size: Buffer.byteLength(data), mode: mode.toString(8).padStart(4, '0'), sha256: createHash('sha256').update(data).digest('hex'),
    })),
  };
}

function parsed(raw: unknown): BundleManifest {
  const r = parseBundleManifest(raw);
  assert.deepEqual(r.ok ? [] : r.problems, []);
  assert.ok(r.ok);
  return r.value;
}

function problemsOf(raw: unknown): readonly string[] {
  const r = parseBundleManifest(raw);
  assert.equal(r.ok, false, 'the manifest was accepted');
  return r.ok ? [] : r.problems;
}

function snapshot(): string {
  return readdirSync(dir, { recursive: true }).map(String).sort()
    .map((p) => `${p}:${statSync(join(dir, p)).size}:${statSync(join(dir, p)).mode}`).join('\n');
}

describe('kube bundle manifest', () => {
  test('a manifest that matches the files passes both checks', async () => {
    const m = parsed(goodManifest());
    assert.equal(m.kubernetesVersion, 'v1.37.2');
    assert.equal(m.images[0]?.ref, 'registry.k8s.io/pause:3.10.2');
    const v = await verifyBundleFiles(dir, m);
    assert.deepEqual(v.ok ? [] : v.problems, []);
  });

  test('shape errors are all reported, each naming its field', () => {
    const raw = goodManifest();
    raw['schemaVersion'] = 2;
    raw['kubernetesVersion'] = '1.37.2';
    delete (raw['components'] as Record<string, string>)['runc'];
    const problems = problemsOf(raw);
    assert.ok(problems.includes('schemaVersion must be 1, not 2'), problems.join('\n'));
    assert.ok(problems.includes('kubernetesVersion must look like v1.37.2'), problems.join('\n'));
    assert.ok(problems.includes('components.runc is missing'), problems.join('\n'));
  });

  test('goVersion is optional (a downloaded bundle has none) but must name a toolchain when given', () => {
    const raw = goodManifest();
    delete raw['goVersion'];
    const m = parsed(raw);
    assert.equal(m.goVersion, undefined);
    assert.equal('goVersion' in m, false);
    assert.equal(parsed(goodManifest()).goVersion, 'go1.26.8');
    for (const bad of ['1.26.8', '', 126]) {
      const r = goodManifest();
      r['goVersion'] = bad;
      assert.deepEqual(problemsOf(r), ['goVersion, when present, must name a Go toolchain such as go1.26.8'], String(bad));
    }
  });

  test('paths that leave the bundle, duplicates and the manifest itself are refused', () => {
    for (const [path, expected] of [
      ['../etc/passwd', 'files[0].path must be a relative path inside the bundle'],
      ['/bin/kubeadm', 'files[0].path must be a relative path inside the bundle'],
      ['bin/./kubeadm', 'files[0].path must be a relative path inside the bundle'],
      ['bin\\kubeadm', 'files[0].path must be a relative path inside the bundle'],
      ['manifest.json', 'files must not list manifest.json itself'],
      ['cni/bridge', 'files lists cni/bridge twice'],
    ] as const) {
      const raw = goodManifest();
      (raw['files'] as Array<Record<string, unknown>>)[0]!['path'] = path;
      assert.ok(problemsOf(raw).includes(expected), `${path}: ${problemsOf(raw).join('; ')}`);
    }
  });

  test('image references must be full and their archives listed', () => {
    const raw = goodManifest();
    (raw['images'] as Array<Record<string, unknown>>)[0]!['ref'] = 'pause:3.10.2';
    assert.deepEqual(problemsOf(raw), ['images[0].ref must be a full reference registry/name:tag']);
    const raw2 = goodManifest();
    (raw2['images'] as Array<Record<string, unknown>>)[0]!['file'] = 'images/other.tar';
    assert.deepEqual(problemsOf(raw2), ['images[0] (registry.k8s.io/pause:3.10.2): file must be one of the listed files']);
    const raw3 = goodManifest();
    (raw3['components'] as Record<string, string>)['kubernetes'] = 'v1.36.0';
    assert.deepEqual(problemsOf(raw3), ['components.kubernetes (v1.36.0) differs from kubernetesVersion (v1.37.2)']);
  });


  test('a preload is optional; when given it is a listed file made for the guest\'s snapshotter and the CRI namespace', () => {
    assert.equal(parsed(goodManifest()).preload, undefined);
    const withPreload = { ...goodManifest(), preload: { file: 'images/pause_3.10.2.tar', snapshotter: 'overlayfs', namespace: 'k8s.io' } };
    assert.deepEqual(parsed(withPreload).preload, { file: 'images/pause_3.10.2.tar', snapshotter: 'overlayfs', namespace: 'k8s.io' });
    assert.deepEqual(problemsOf({ ...goodManifest(), preload: { file: 'preload/missing.tar', snapshotter: 'native', namespace: 'default' } }), [
      'preload.file must be one of the listed files',
      'preload.snapshotter must be "overlayfs" (the guest\'s), not "native"',
      'preload.namespace must be "k8s.io" (the CRI\'s), not "default"',
    ]);
    assert.deepEqual(problemsOf({ ...goodManifest(), preload: 'preload.tar' }), ['preload, when present, must be an object']);
  });
  test('a changed byte, a wrong mode, a missing and an unlisted file are each found, and nothing is changed', async () => {
    const raw = goodManifest();
    const files = raw['files'] as Array<Record<string, unknown>>;
    const kubeadm = files.find((f) => f['path'] === 'bin/kubeadm')!;
    kubeadm['sha256'] = createHash('sha256').update('#!/bin/sh\necho kubeadX\n').digest('hex');
    files.find((f) => f['path'] === 'cni/bridge')!['mode'] = '0644';
    files.push({ path: 'bin/kubelet', size: 1, mode: '0755', sha256: 'b'.repeat(64) });
    const etcd = files.findIndex((f) => f['path'] === 'versions/etcd');
    files.splice(etcd, 1);
    const before = snapshot();
    const v = await verifyBundleFiles(dir, parsed(raw));
    assert.equal(v.ok, false);
    const problems = v.ok ? [] : v.problems;
    const actualKubeadm = createHash('sha256').update(contents['bin/kubeadm']!.data).digest('hex');
    assert.deepEqual([...problems].sort(), [
      'bin/kubelet is missing',
      `bin/kubeadm has sha256 ${actualKubeadm}, the manifest says ${String(kubeadm['sha256'])}`,
      'cni/bridge has mode 0755, the manifest says 0644',
      'versions/etcd is not in the manifest',
    ].sort());
    assert.equal(snapshot(), before);
  });

  test('a size mismatch is reported as a size mismatch', async () => {
    const raw = goodManifest();
    (raw['files'] as Array<Record<string, unknown>>).find((f) => f['path'] === 'cni/bridge')!['size'] = 3;
    const v = await verifyBundleFiles(dir, parsed(raw));
    assert.deepEqual(v.ok ? [] : v.problems, [`cni/bridge is ${Buffer.byteLength('bridge bytes')} bytes, the manifest says 3`]);
  });
});
