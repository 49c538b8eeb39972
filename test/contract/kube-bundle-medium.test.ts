/**
 * The node bundle's medium (src/kube/bundle-medium.ts) and the streamed ISO
 * writer under it (src/seed/iso-file.ts), read back by the real tools:
 * xorriso extracts every file through Rock Ridge and each must equal the
 * bundle's, blkid finds the label the guest mounts by, and a file larger
 * than the in-memory writer's limit is carried whole. The medium is reused
 * while the bundle is unchanged, rewritten when it changed, and refused
 * (and rewritten on the next start) when its bytes no longer match.
 */
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, openSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync, writeSync, closeSync } from 'node:fs';
import { join } from 'node:path';
import { BUNDLE_MEDIUM_LABEL, bundleMediumPath, ensureBundleMedium, verifyBundleMedium } from '../../src/kube/bundle-medium.ts';
import type { BundleManifest } from '../../src/kube/bundle-manifest.ts';
import { mediumFileName } from '../../src/kube/guest-bundle.ts';
import type { FoundBundle } from '../../src/kube/bundle-store.ts';
import { buildIso, MAX_ISO_FILE_BYTES } from '../../src/seed/iso9660.ts';
import { IsoSourceMismatch, writeIsoFile } from '../../src/seed/iso-file.ts';
import { tempDir } from '../helpers/cli.ts';
import { rejectsWith } from '../helpers/errors.ts';

const root = await tempDir('kube-bundle-medium-');
after(() => rmSync(root, { recursive: true, force: true }));

const sha256 = (b: Uint8Array): string => createHash('sha256').update(b).digest('hex');

/** Extracts the image with xorriso (Rock Ridge names) and fails on any problem it reports. */
function extract(iso: string, to: string): void {
  const r = spawnSync('xorriso', ['-osirrox', 'on', '-indev', iso, '-extract', '/', to], { encoding: 'utf8', env: { ...process.env, LANG: 'C', LC_ALL: 'C' } });
  assert.equal(r.status, 0, r.stderr);
  assert.doesNotMatch(r.stderr, /: (WARNING|SORRY|FAILURE|FATAL|MISHAP|ABORT) :/, r.stderr);
}

/** A bundle with a binary past the in-memory ISO limit, a CNI plugin, an image archive and a file the guest does not get. */
function makeBundle(dir: string, kubeadmText = 'kubeadm'): FoundBundle {
  const big = join(dir, 'bin', 'kubelet');
  mkdirSync(join(dir, 'bin'), { recursive: true });
  // A patterned file, not zeros, so a misplaced sector shows.
  const fd = openSync(big, 'w');
  const block = Buffer.alloc(1 << 20);
  for (let i = 0; i < block.length; i++) block[i] = (i * 7 + 3) % 251;
  for (let i = 0; i < MAX_ISO_FILE_BYTES / block.length + 3; i++) {
    block.writeUInt32LE(i, 0);
    writeSync(fd, block);
  }
  writeSync(fd, Buffer.from('tail'));
  closeSync(fd);
  const small: Record<string, string> = { 'bin/kubeadm': kubeadmText, 'cni/bridge': 'bridge', 'images/pause_3.10.2.tar': 'oci archive', 'versions/etcd': 'v3.7.0\n' };
  for (const [path, data] of Object.entries(small)) {
    mkdirSync(join(dir, path, '..'), { recursive: true });
    writeFileSync(join(dir, path), data);
  }
  chmodSync(join(dir, 'bin', 'kubeadm'), 0o755);
  const paths = ['bin/kubelet', ...Object.keys(small)];
  const manifest: BundleManifest = {
    schemaVersion: 1,
    kubernetesVersion: 'v1.37.2',
    platform: { os: 'linux', architecture: 'amd64' },
    components: {},
    images: [{ ref: 'registry.k8s.io/pause:3.10.2', file: 'images/pause_3.10.2.tar', manifestDigest: `sha256:${'a'.repeat(64)}` }],
    files: paths.map((path) => {
      const bytes = readFileSync(join(dir, path));
      return { path, size: bytes.length, mode: path.startsWith('bin/') || path.startsWith('cni/') ? '0755' : '0644', sha256: sha256(bytes) };
    }),
  };
  writeFileSync(join(dir, 'manifest.json'), JSON.stringify(manifest));
  return { dir, manifest, manifestSha256: sha256(Buffer.from(JSON.stringify(manifest))) };
}

describe('writeIsoFile', () => {
  test('streams the same bytes buildIso makes in memory, and reports their size and sha256', async () => {
    const dir = join(root, 'same');
    mkdirSync(dir);
    const files = [
      { name: 'user-data', data: Buffer.from('#cloud-config\n'), mode: 0o600 },
      { name: 'empty', data: Buffer.alloc(0) },
      { name: 'three-sectors', data: Buffer.alloc(3 * 2048 + 1, 9) },
    ];
    for (const f of files) writeFileSync(join(dir, f.name), f.data);
    const path = join(root, 'same.iso');
    const written = await writeIsoFile(path, { volumeId: 'cidata', files: files.map((f) => ({ name: f.name, source: join(dir, f.name), ...(f.mode === undefined ? {} : { mode: f.mode }) })) });
    const inMemory = buildIso({ volumeId: 'cidata', files });
    const onDisk = readFileSync(path);
    assert.deepEqual(onDisk, Buffer.from(inMemory));
    assert.equal(written.size, onDisk.length);
    assert.equal(written.sha256, sha256(onDisk));
    assert.deepEqual(written.fileSha256, files.map((f) => sha256(f.data)));
    assert.deepEqual(readdirSync(root).filter((n) => n.endsWith('.tmp')), [], 'no temp file is left');
  });

  test('a source whose sha256 is not the expected one fails the write before it replaces the image', async () => {
    const dir = join(root, 'expected');
    mkdirSync(dir);
    writeFileSync(join(dir, 'a'), 'the bytes');
    const path = join(root, 'expected.iso');
    writeFileSync(path, 'the previous image');
    await assert.rejects(
      writeIsoFile(path, { volumeId: 'cidata', files: [{ name: 'a', source: join(dir, 'a'), sha256: 'f'.repeat(64) }] }),
      (e: unknown) => e instanceof IsoSourceMismatch && e.mismatches[0]?.actual === sha256(Buffer.from('the bytes')),
    );
    assert.equal(readFileSync(path, 'utf8'), 'the previous image');
    await writeIsoFile(path, { volumeId: 'cidata', files: [{ name: 'a', source: join(dir, 'a'), sha256: sha256(Buffer.from('the bytes')) }] });
    assert.notEqual(readFileSync(path, 'utf8'), 'the previous image');
  });

  test('a missing source fails the write and leaves no image behind', async () => {
    const path = join(root, 'missing.iso');
    await assert.rejects(writeIsoFile(path, { volumeId: 'cidata', files: [{ name: 'x', source: join(root, 'nope') }] }), /ENOENT/);
    assert.equal(existsSync(path), false);
  });
});

describe('the bundle medium', () => {
  const bundle = makeBundle(join(root, 'bundle'));
  const home = join(root, 'home');

  test('holds the manifest and every file the guest installs, whole, under flat names, labelled for the guest', async () => {
    const digest = bundle.manifestSha256;
    const medium = await ensureBundleMedium(home, bundle);
    assert.equal(medium.written, true);
    assert.equal(medium.path, bundleMediumPath(home, 'v1.37.2'));
    assert.equal(medium.sha256, sha256(readFileSync(medium.path)));
    assert.equal(medium.size, statSync(medium.path).size);

    const out = join(root, 'extracted');
    extract(medium.path, out);
    const names = readdirSync(out).sort();
    assert.deepEqual(names, ['bin.kubeadm', 'bin.kubelet', 'cni.bridge', 'images.pause_3.10.2.tar', 'manifest.json'], 'versions/ stays on the host');
    assert.equal(sha256(readFileSync(join(out, 'manifest.json'))), digest);
    for (const f of bundle.manifest.files.filter((x) => !x.path.startsWith('versions/'))) {
      const copy = join(out, mediumFileName(f.path));
      assert.equal(statSync(copy).size, f.size, f.path);
      assert.equal(sha256(readFileSync(copy)), f.sha256, f.path);
    }
    assert.ok((bundle.manifest.files.find((f) => f.path === 'bin/kubelet')?.size ?? 0) > MAX_ISO_FILE_BYTES);
    assert.equal((statSync(join(out, 'bin.kubeadm')).mode & 0o777).toString(8), '755', 'Rock Ridge carries the mode');
    assert.equal(execFileSync('blkid', ['-o', 'value', '-s', 'LABEL', medium.path], { encoding: 'utf8' }).trim(), BUNDLE_MEDIUM_LABEL);
    await verifyBundleMedium(medium);
  });

  test('an unchanged bundle reuses its medium; a changed one gets a new medium', async () => {
    const digest = bundle.manifestSha256;
    const before = statSync(bundleMediumPath(home, 'v1.37.2'));
    const again = await ensureBundleMedium(home, bundle);
    assert.equal(again.written, false);
    assert.equal(statSync(again.path).ino, before.ino);

    const changed = makeBundle(join(root, 'bundle-2'), 'kubeadm, rebuilt');
    const changedDigest = changed.manifestSha256;
    assert.notEqual(changedDigest, digest);
    const replaced = await ensureBundleMedium(home, changed);
    assert.equal(replaced.written, true);
    assert.equal(replaced.manifestSha256, changedDigest);
    const out = join(root, 'extracted-2');
    extract(replaced.path, out);
    assert.equal(readFileSync(join(out, 'bin.kubeadm'), 'utf8'), 'kubeadm, rebuilt');
  });

  test('a cached bundle file whose bytes changed (same size) gives no medium', async () => {
    const damaged = makeBundle(join(root, 'bundle-damaged'));
    
    writeFileSync(join(damaged.dir, 'cni', 'bridge'), 'BRIDGE');
    const otherHome = join(root, 'home-damaged');
    const e = await rejectsWith(ensureBundleMedium(otherHome, damaged), 'KUBE_BUNDLE_INVALID');
    assert.match(e.message, /cni\/bridge has sha256 [0-9a-f]{64}, the manifest says [0-9a-f]{64}/);
    assert.equal(existsSync(bundleMediumPath(otherHome, 'v1.37.2')), false);
    assert.equal(existsSync(`${bundleMediumPath(otherHome, 'v1.37.2')}.json`), false);
  });

  test('a medium whose bytes changed is refused, and the next start writes it anew', async () => {
    const medium = await ensureBundleMedium(home, bundle);
    const fd = openSync(medium.path, 'r+');
    writeSync(fd, Buffer.from([0xff]), 0, 1, medium.size - 1);
    closeSync(fd);
    const e = await rejectsWith(verifyBundleMedium(medium), 'KUBE_BUNDLE_MEDIUM_CORRUPT');
    assert.match(e.message, /has sha256 [0-9a-f]{64}, not the [0-9a-f]{64} recorded/);
    const next = await ensureBundleMedium(home, bundle);
    assert.equal(next.written, true, 'the damaged medium is not reused');
    await verifyBundleMedium(next);
  });
});
