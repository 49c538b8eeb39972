/**
 * The Kubernetes node bundle cache (src/kube/bundle-store.ts) and `bundle
 * import` (src/kube/bundle-import.ts) with real files and the system tar: a
 * small bundle whose manifest carries real sha256s is imported from a
 * directory, a .tar, a .tar.gz and an archive with one top-level directory;
 * each way a bundle or an archive can be wrong is refused with its ID and
 * leaves the cache byte for byte as it was; a different manifest of the same
 * version replaces the cached one; `bundle list` shows complete, partial and
 * damaged directories; `bundle build` refuses a host that cannot build before
 * it writes anything. The real built bundle is imported by
 * test/contract-kube/kube-bundle-store.test.ts.
 */
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { chmodSync, cpSync, existsSync, mkdirSync, readFileSync, renameSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { findBundle, installBundle, listBundles, createBundleStaging, bundleCacheDir } from '../../src/kube/bundle-store.ts';
import { ensureBundleMedium } from '../../src/kube/bundle-medium.ts';
import { importBundle, unsafeMembers } from '../../src/kube/bundle-import.ts';
import { checkBundleBuildHost } from '../../src/kube/bundle-build.ts';
import type { BundleBuildHost } from '../../src/kube/bundle-build.ts';
import { runCli, snapshotTree, tempDir } from '../helpers/cli.ts';
import { rejectsWith } from '../helpers/errors.ts';
import { writeTar } from '../helpers/disk-images.ts';

const root = await tempDir('kube-bundle-store-');
after(() => rmSync(root, { recursive: true, force: true }));
let counter = 0;
const fresh = (name: string) => join(root, `${name}-${(counter += 1)}`);

const COMPONENTS = {
  kubernetes: 'v1.37.2', etcd: 'v3.7.0', containerd: 'v2.4.2', runc: 'v1.5.3', crictl: 'v1.37.0',
  'cni-plugins': 'v1.10.0', coredns: 'v1.14.6', pause: '3.10.2',
};

/** A bundle directory: a few small files and a manifest.json with their real sizes, modes and sha256s. */
function makeBundle(dir: string, options: { version?: string; etcd?: string } = {}): string {
  const version = options.version ?? 'v1.37.2';
  const files: Record<string, { data: string; mode: number }> = {
    'bin/kubeadm': { data: `#!/bin/sh\necho kubeadm ${version}\n`, mode: 0o755 },
    'cni/bridge': { data: 'bridge plugin bytes', mode: 0o755 },
    'images/pause_3.10.2.tar': { data: 'an OCI archive, as far as the verifier cares', mode: 0o644 },
    'versions/etcd': { data: `${options.etcd ?? 'v3.7.0'}\n`, mode: 0o644 },
  };
  for (const [path, { data, mode }] of Object.entries(files)) {
    mkdirSync(join(dir, path, '..'), { recursive: true });
    writeFileSync(join(dir, path), data);
    chmodSync(join(dir, path), mode);
  }
  const manifest = {
    schemaVersion: 1,
    kubernetesVersion: version,
    platform: { architecture: 'amd64', os: 'linux' },
    goVersion: 'go1.26.8',
    components: { ...COMPONENTS, kubernetes: version, etcd: options.etcd ?? 'v3.7.0' },
    images: [{ ref: 'registry.k8s.io/pause:3.10.2', file: 'images/pause_3.10.2.tar', manifestDigest: `sha256:${'a'.repeat(64)}` }],
    files: Object.entries(files).map(([path, { data, mode }]) => ({
      path, size: Buffer.byteLength(data), mode: `0${mode.toString(8)}`, sha256: createHash('sha256').update(data).digest('hex'),
    })),
  };
  writeFileSync(join(dir, 'manifest.json'), `${JSON.stringify(manifest, null, 2)}\n`);
  return dir;
}

const good = makeBundle(fresh('good'));

function tar(args: string[]): void {
  execFileSync('tar', args, { stdio: 'pipe' });
}

/** A home whose cache already holds the good bundle, so "unchanged" covers a cache with content. */
async function homeWithBundle(): Promise<string> {
  const home = fresh('home');
  await importBundle(home, good);
  return home;
}

async function cacheSnapshot(home: string): Promise<Record<string, string>> {
  return snapshotTree(bundleCacheDir(home));
}

describe('kube bundle import', () => {
  test('a bundle directory is verified, moved into place, found and listed as imported', async () => {
    const home = fresh('home');
    const messages: string[] = [];
    const installed = await importBundle(home, good, { onStatus: (m) => messages.push(m) });
    assert.equal(installed.outcome, 'installed');
    assert.equal(installed.dir, join(bundleCacheDir(home), 'v1.37.2'));
    assert.ok(messages.some((m) => m.startsWith('Verifying 4 files')), messages.join('\n'));
    const found = await findBundle(home, 'v1.37.2');
    assert.equal(found?.dir, installed.dir);
    assert.equal(found?.manifest.images.length, 1);
    // manifest.json's bytes are the bundle's, untouched; the source is recorded beside it.
    assert.deepEqual(readFileSync(join(installed.dir, 'manifest.json')), readFileSync(join(good, 'manifest.json')));
    const { bundles, leftovers } = await listBundles(home);
    assert.deepEqual(bundles.map((b) => [b.version, b.status, b.source, b.origin, b.images, b.files]), [['v1.37.2', 'ok', 'import', good, 1, 4]]);
    assert.ok((bundles[0]?.sizeBytes ?? 0) > 0);
    assert.deepEqual(leftovers, []);
    assert.equal(await findBundle(home, 'v1.36.3'), undefined);
    assert.equal(await findBundle(home, '../v1.37.2'), undefined);
  });

  for (const [kind, make] of [
    ['.tar', (out: string) => tar(['-C', good, '-cf', out, '.'])],
    ['.tar.gz', (out: string) => tar(['-C', good, '-czf', out, '.'])],
    ['.tgz with one top-level directory', (out: string) => {
      const parent = fresh('parent');
      cpSync(good, join(parent, 'kube-v1.37.2'), { recursive: true });
      tar(['-C', parent, '-czf', out, 'kube-v1.37.2']);
    }],
  ] as const) {
    test(`an archive (${kind}) is extracted with the system tar and installed`, async () => {
      const home = fresh('home');
      const archive = `${fresh('archive')}${kind.startsWith('.tar.gz') ? '.tar.gz' : kind === '.tar' ? '.tar' : '.tgz'}`;
      make(archive);
      const installed = await importBundle(home, archive);
      assert.equal(installed.outcome, 'installed');
      assert.equal((await findBundle(home, 'v1.37.2'))?.dir, installed.dir);
      // Modes come from the archive, whatever the umask; nothing but the bundle and its record is left.
      assert.equal(execFileSync('stat', ['-c', '%a', join(installed.dir, 'bin', 'kubeadm')], { encoding: 'utf8' }).trim(), '755');
      const { bundles, leftovers } = await listBundles(home);
      assert.deepEqual(bundles.map((b) => [b.version, b.status, b.source, b.origin]), [['v1.37.2', 'ok', 'import', archive]]);
      assert.deepEqual(leftovers, []);
    });
  }

  test('importing the same bundle again changes nothing; a different manifest of the version replaces it', async () => {
    const home = await homeWithBundle();
    const before = await cacheSnapshot(home);
    const again = await importBundle(home, good);
    assert.equal(again.outcome, 'unchanged');
    assert.deepEqual(await cacheSnapshot(home), before);

    const other = makeBundle(fresh('other'), { etcd: 'v3.7.1' });
    const replaced = await importBundle(home, other);
    assert.equal(replaced.outcome, 'replaced');
    const found = await findBundle(home, 'v1.37.2');
    assert.equal(found?.manifest.components['etcd'], 'v3.7.1');
    assert.equal(readFileSync(join(found?.dir ?? '', 'versions', 'etcd'), 'utf8'), 'v3.7.1\n');
    const { bundles, leftovers } = await listBundles(home);
    assert.deepEqual(bundles.map((b) => [b.version, b.status, b.source, b.components['etcd']]), [['v1.37.2', 'ok', 'import', 'v3.7.1']]);
    assert.deepEqual(leftovers, [], 'the replaced bundle is removed');
  });

  test('after a crash between the two renames of a replace, the bundle set aside is found and put back', async () => {
    const home = await homeWithBundle();
    const cache = bundleCacheDir(home);
    renameSync(join(cache, 'v1.37.2'), join(cache, '.previous-v1.37.2'));
    assert.equal((await findBundle(home, 'v1.37.2'))?.dir, join(cache, '.previous-v1.37.2'));
    assert.deepEqual((await listBundles(home)).bundles.map((b) => [b.version, b.status, b.dir]), [['v1.37.2', 'ok', join(cache, '.previous-v1.37.2')]]);
    const staging = await createBundleStaging(home);
    cpSync(good, staging, { recursive: true });
    const installed = await installBundle(home, staging, 'download');
    assert.equal(installed.outcome, 'unchanged');
    assert.ok(existsSync(join(cache, 'v1.37.2', 'manifest.json')));
    assert.ok(!existsSync(join(cache, '.previous-v1.37.2')));
    assert.ok(!existsSync(staging));
  });

  test('a directory whose single subdirectory holds the bundle is imported', async () => {
    const parent = fresh('parent');
    cpSync(good, join(parent, 'bundle'), { recursive: true });
    const installed = await importBundle(fresh('home'), parent);
    assert.equal(installed.outcome, 'installed');
  });
});

describe('kube bundle import refusals leave the cache unchanged', () => {
  /** Runs an import that must fail with `id`, and checks that the cache is byte for byte as before. */
  async function refused(source: string, id: string, expected: RegExp): Promise<void> {
    const home = await homeWithBundle();
    const before = await cacheSnapshot(home);
    const error = await rejectsWith(importBundle(home, source), id);
    assert.match(error.message, expected);
    assert.deepEqual(await cacheSnapshot(home), before);
  }

  function variant(change: (dir: string) => void): string {
    const dir = fresh('variant');
    cpSync(good, dir, { recursive: true });
    // Another version, so a refusal cannot be mistaken for "already cached".
    const manifest = JSON.parse(readFileSync(join(dir, 'manifest.json'), 'utf8')) as { kubernetesVersion: string; components: Record<string, string> };
    manifest.kubernetesVersion = 'v1.36.3';
    manifest.components['kubernetes'] = 'v1.36.3';
    writeFileSync(join(dir, 'manifest.json'), JSON.stringify(manifest));
    change(dir);
    return dir;
  }

  test('a file whose bytes differ (same size): KUBE_BUNDLE_INVALID naming its sha256', async () => {
    const dir = variant((d) => writeFileSync(join(d, 'cni', 'bridge'), 'bridge plugin bytez'));
    await refused(dir, 'KUBE_BUNDLE_INVALID', /cni\/bridge has sha256 [0-9a-f]{64}, the manifest says/);
  });

  test('a missing file: KUBE_BUNDLE_INVALID', async () => {
    await refused(variant((d) => rmSync(join(d, 'bin', 'kubeadm'))), 'KUBE_BUNDLE_INVALID', /bin\/kubeadm is missing/);
  });

  test('a file the manifest does not list: KUBE_BUNDLE_INVALID', async () => {
    await refused(variant((d) => writeFileSync(join(d, 'bin', 'extra'), 'x')), 'KUBE_BUNDLE_INVALID', /bin\/extra is not in the manifest/);
  });

  test('a directory with no manifest.json: KUBE_BUNDLE_INVALID', async () => {
    await refused(variant((d) => rmSync(join(d, 'manifest.json'))), 'KUBE_BUNDLE_INVALID', /no manifest\.json/);
  });

  test('a malformed manifest: KUBE_BUNDLE_INVALID naming the field', async () => {
    await refused(variant((d) => writeFileSync(join(d, 'manifest.json'), JSON.stringify({ schemaVersion: 2 }))), 'KUBE_BUNDLE_INVALID', /schemaVersion must be 1/);
  });

  test('an archive with a sha mismatch is refused after extraction, and nothing stays', async () => {
    const dir = variant((d) => writeFileSync(join(d, 'versions', 'etcd'), 'v3.7.X\n'));
    const archive = `${fresh('bad')}.tgz`;
    tar(['-C', dir, '-czf', archive, '.']);
    await refused(archive, 'KUBE_BUNDLE_INVALID', /versions\/etcd has sha256/);
  });

  test('an archive member with ../ : KUBE_BUNDLE_ARCHIVE_UNSAFE, nothing extracted', async () => {
    const archive = await writeTar(`${fresh('dotdot')}.tar`, [
      { name: 'manifest.json', data: readFileSync(join(good, 'manifest.json')) },
      { name: '../escaped', data: Buffer.from('outside') },
    ]);
    await refused(archive, 'KUBE_BUNDLE_ARCHIVE_UNSAFE', /"\.\.\/escaped" leaves the archive/);
    const gz = `${fresh('dotdot')}.tar.gz`;
    writeFileSync(gz, gzipSync(readFileSync(archive)));
    await refused(gz, 'KUBE_BUNDLE_ARCHIVE_UNSAFE', /"\.\.\/escaped" leaves the archive/);
  });

  test('an absolute member name and a hard link out of the archive: KUBE_BUNDLE_ARCHIVE_UNSAFE', async () => {
    const archive = await writeTar(`${fresh('abs')}.tar`, [
      { name: 'manifest.json', data: readFileSync(join(good, 'manifest.json')) },
      { name: '/tmp/absolute', data: Buffer.from('x') },
      { name: 'bin/passwd', type: '1', linkName: '../../etc/passwd' },
    ]);
    await refused(archive, 'KUBE_BUNDLE_ARCHIVE_UNSAFE', /"\/tmp\/absolute" is an absolute path\n.*"bin\/passwd" is a hard link to "\.\.\/\.\.\/etc\/passwd", outside the archive/);
  });

  test('symlinks escaping the bundle (absolute and by ..), made by the real tar: KUBE_BUNDLE_ARCHIVE_UNSAFE', async () => {
    const dir = variant((d) => {
      symlinkSync('/etc/passwd', join(d, 'bin', 'abs-link'));
      symlinkSync('../../outside', join(d, 'bin', 'rel-link'));
    });
    const archive = `${fresh('links')}.tar.gz`;
    tar(['-C', dir, '-czf', archive, '.']);
    await refused(archive, 'KUBE_BUNDLE_ARCHIVE_UNSAFE', /"\.\/bin\/abs-link" is a symlink to the absolute path "\/etc\/passwd"/);
    await refused(archive, 'KUBE_BUNDLE_ARCHIVE_UNSAFE', /"\.\/bin\/rel-link" is a symlink pointing outside the archive/);
  });

  test('a symlink that stays inside is not unsafe but is not a bundle file either: KUBE_BUNDLE_INVALID', async () => {
    const dir = variant((d) => symlinkSync('kubeadm', join(d, 'bin', 'kubeadm-link')));
    const archive = `${fresh('inside-link')}.tar`;
    tar(['-C', dir, '-cf', archive, '.']);
    await refused(archive, 'KUBE_BUNDLE_INVALID', /bin\/kubeadm-link is not in the manifest/);
    await refused(dir, 'KUBE_BUNDLE_INVALID', /bin\/kubeadm-link is not in the manifest/);
  });

  test('a bundle larger than the free space of the cache\'s file system: HOST_DISK_FULL before anything is copied', async () => {
    const dir = variant((d) => {
      const manifest = JSON.parse(readFileSync(join(d, 'manifest.json'), 'utf8')) as { files: Array<{ size: number }> };
      manifest.files[0]!.size = 2 ** 50;
      writeFileSync(join(d, 'manifest.json'), JSON.stringify(manifest));
    });
    await refused(dir, 'HOST_DISK_FULL', /not enough free space in .* for the bundle \(1024 TiB\)/);
  });

  test('a file that is not an archive, and a path that does not exist', async () => {
    const notTar = fresh('not-a-tar');
    writeFileSync(notTar, 'hello, not a tar file at all'.repeat(40));
    await refused(notTar, 'KUBE_BUNDLE_INVALID', /is not a tar archive/);
    const badGz = `${fresh('bad')}.tgz`;
    writeFileSync(badGz, Buffer.concat([Buffer.from([0x1f, 0x8b, 8, 0]), Buffer.from('garbage'.repeat(20))]));
    await refused(badGz, 'KUBE_BUNDLE_INVALID', /cannot be decompressed as gzip/);
    await refused(join(root, 'does-not-exist'), 'KUBE_BUNDLE_SOURCE_NOT_FOUND', /does not exist/);
  });

  test('an archive without manifest.json at its root or in its single top-level directory', async () => {
    const archive = await writeTar(`${fresh('no-manifest')}.tar`, [
      { name: 'a/manifest.json', data: readFileSync(join(good, 'manifest.json')) },
      { name: 'b/file', data: Buffer.from('x') },
    ]);
    await refused(archive, 'KUBE_BUNDLE_INVALID', /no manifest\.json at its root or in its single top-level directory/);
  });
});

describe('kube bundle archive members', () => {
  const m = (name: string, type = '0', linkName = '') => ({ name, type, linkName, offset: 0, size: 0 });
  test('members written through a symlink, devices and FIFOs are unsafe; plain files, directories and inside links are not', () => {
    assert.deepEqual(unsafeMembers([m('./'), m('./bin/', '5'), m('./bin/kubeadm'), m('bin/k', '2', 'kubeadm'), m('bin/h', '1', './bin/kubeadm')]), []);
    // d -> . keeps inside, but d/d/d/l -> ../../x would land outside once tar follows d three times.
    assert.deepEqual(unsafeMembers([m('d', '2', '.'), m('d/d/d/l', '2', '../../x'), m('d/file')]), [
      '"d/d/d/l" would be written through the symlink "d"',
      '"d/file" would be written through the symlink "d"',
    ]);
    assert.deepEqual(unsafeMembers([m('dev', '3'), m('fifo', '6'), m('h', '1', 'd/x'), m('d', '2', 'sub')]), [
      '"dev" is a character device; a bundle holds files and directories',
      '"fifo" is a FIFO; a bundle holds files and directories',
      '"h" is a hard link through a symlink ("d/x")',
    ]);
  });
});

describe('kube bundle staging', () => {
  test('a staging directory left by a process that is gone is removed by the next one; an interrupted build is kept and listed', async () => {
    const home = await homeWithBundle();
    const cache = bundleCacheDir(home);
    const child = spawn(process.execPath, ['-e', '']);
    const deadPid = await new Promise<number>((resolve) => child.on('exit', () => resolve(child.pid as number)));
    const tag = createHash('sha256').update(hostname()).digest('hex').slice(0, 8);
    const abandoned = join(cache, `.staging-${deadPid}-0-${tag}-0123456789ab`);
    mkdirSync(join(abandoned, 'bin'), { recursive: true });
    writeFileSync(join(abandoned, 'bin', 'kubeadm'), 'half');
    mkdirSync(join(cache, '.staging-build-v1.37.2', 'bin'), { recursive: true });
    mkdirSync(join(cache, '.downloads'));
    writeFileSync(join(cache, '.downloads', 'kubernetes-node.tar.gz.part'), 'partial download');
    let { leftovers } = await listBundles(home);
    // Listed in path order: .downloads, .staging-<pid>…, .staging-build-….
    assert.deepEqual(leftovers.map((l) => [l.kind, l.version, l.inProgress]), [['downloads', null, false], ['staging', null, false], ['build', 'v1.37.2', false]]);
    rmSync(join(cache, '.downloads'), { recursive: true });
    const staging = await createBundleStaging(home);
    assert.ok(!existsSync(abandoned), 'the abandoned staging directory is removed');
    assert.ok(existsSync(join(cache, '.staging-build-v1.37.2')), 'the build staging directory is kept');
    ({ leftovers } = await listBundles(home));
    assert.deepEqual(leftovers.map((l) => [l.kind, l.path, l.inProgress]), [['staging', staging, true], ['build', join(cache, '.staging-build-v1.37.2'), false]]);
    await rejectsWith(installBundle(home, staging, 'download'), 'KUBE_BUNDLE_INVALID');
    assert.ok(!existsSync(staging), 'a refused staging directory is removed');
  });
});

describe('devcluster bundle list', () => {
  test('the table and JSON show complete, partial and damaged versions, none hidden', async () => {
    const home = await homeWithBundle();
    const cache = bundleCacheDir(home);
    mkdirSync(join(cache, 'v1.36.3', 'bin'), { recursive: true });
    writeFileSync(join(cache, 'v1.36.3', 'bin', 'kubeadm'), 'partial');
    cpSync(good, join(cache, 'v1.35.0'), { recursive: true });
    rmSync(join(cache, 'v1.35.0', 'cni', 'bridge'));
    writeFileSync(join(cache, 'v1.35.0', 'bin', 'kubeadm'), 'short');

    const table = await runCli(['bundle', 'list'], { home });
    assert.equal(table.code, 0, table.stderr);
    const lines = table.stdout.split('\n');
    assert.match(lines[0] ?? '', /^VERSION\s+SOURCE\s+COMPONENTS\s+IMAGES\s+SIZE\s+STATUS$/);
    assert.match(lines[1] ?? '', /^v1\.35\.0\s+unknown\s+containerd v2\.4\.2, runc v1\.5\.3, etcd v3\.7\.0, \+4 more\s+1\s+\S+ \S+\s+invalid: its manifest is for v1\.37\.2, not v1\.35\.0 \(\+2 more\)$/);
    assert.match(lines[2] ?? '', /^v1\.36\.3\s+unknown\s+-\s+-\s+\S+ \S+\s+partial: no manifest\.json: an unfinished build, download or copy$/);
    assert.match(lines[3] ?? '', /^v1\.37\.2\s+import\s+containerd v2\.4\.2, runc v1\.5\.3, etcd v3\.7\.0, \+4 more\s+1\s+\S+ \S+\s+ok$/);
    assert.match(table.stdout, /v1\.35\.0 \(.*\) is invalid:\n {2}its manifest is for v1\.37\.2, not v1\.35\.0\n {2}bin\/kubeadm is 5 bytes, the manifest says \d+\n {2}cni\/bridge is missing\n/);
    assert.match(table.stdout, /Not cached \(devcluster start downloads them\):\n {2}v1\.36\.3: devcluster bundle build --kubernetes-version v1\.36\.3/);

    const json = await runCli(['bundle', 'list', '-o', 'json'], { home });
    assert.equal(json.code, 0, json.stderr);
    const doc = JSON.parse(json.stdout) as { cache: string; bundles: Array<Record<string, unknown>>; leftovers: unknown[] };
    assert.equal(doc.cache, cache);
    assert.deepEqual(doc.bundles.map((b) => [b['version'], b['status'], b['source'], (b['problems'] as string[]).length]), [
      ['v1.35.0', 'invalid', null, 3], ['v1.36.3', 'partial', null, 1], ['v1.37.2', 'ok', 'import', 0],
    ]);
    assert.deepEqual(doc.leftovers, []);
  });

  test('an empty cache says so', async () => {
    const home = fresh('home');
    const r = await runCli(['bundle', 'list'], { home });
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^The Kubernetes bundle cache \(.*\) is empty\.$/m);
  });
});

describe('devcluster bundle rm', () => {
  test('removes the version, its source record and its guest medium, and nothing else', async () => {
    const home = await homeWithBundle();
    const found = await findBundle(home, 'v1.37.2');
    assert.ok(found);
    const medium = await ensureBundleMedium(home, found);
    const other = join(bundleCacheDir(home), 'v1.36.3');
    cpSync(good, other, { recursive: true });
    const r = await runCli(['bundle', 'rm', 'v1.37.2', '-o', 'json'], { home });
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(JSON.parse(r.stdout), { version: 'v1.37.2', removed: [join(bundleCacheDir(home), 'v1.37.2'), 'the guest medium'] });
    assert.equal(existsSync(join(bundleCacheDir(home), 'v1.37.2')), false);
    assert.equal(existsSync(join(bundleCacheDir(home), 'v1.37.2.source.json')), false);
    assert.equal(existsSync(medium.path), false);
    assert.equal(existsSync(`${medium.path}.json`), false);
    assert.ok(existsSync(join(other, 'manifest.json')), 'another version stays');
  });

  test('a version a profile\'s cluster was made with, an uncached version and a non-version are refused, changing nothing', async () => {
    const home = await homeWithBundle();
    const profile = join(home, 'profiles', 'dev');
    mkdirSync(profile, { recursive: true });
    const now = new Date().toISOString();
    writeFileSync(join(profile, 'state.json'), JSON.stringify({ schemaVersion: 1, profile: 'dev', driver: 'qemu', status: 'Stopped', createdAt: now, updatedAt: now, resources: [], driverData: {}, created: { cpus: 2, memoryMiB: 4096, diskMiB: 20480, image: 'debian-12', kubernetes: true, kubernetesVersion: 'v1.37.2' } }));
    const before = await snapshotTree(home);
    const inUse = await runCli(['bundle', 'rm', 'v1.37.2'], { home });
    assert.equal(inUse.code, 2);
    assert.match(inUse.stderr, /KUBE_BUNDLE_IN_USE: the Kubernetes v1\.37\.2 bundle is used by profile dev/);
    const missing = await runCli(['bundle', 'rm', 'v1.36.3'], { home });
    assert.equal(missing.code, 2);
    assert.match(missing.stderr, /KUBE_BUNDLE_NOT_CACHED: no Kubernetes v1\.36\.3 bundle is cached/);
    const bad = await runCli(['bundle', 'rm', '../v1.37.2'], { home });
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /KUBE_BUNDLE_NOT_CACHED: "\.\.\/v1\.37\.2" is not a bundle version/);
    assert.deepEqual(await snapshotTree(home), before);
  });
});

describe('devcluster bundle import and build (CLI)', () => {
  test('import prints its steps and the result; a refusal exits with the ID', async () => {
    const home = fresh('home');
    const ok = await runCli(['bundle', 'import', good], { home });
    assert.equal(ok.code, 0, ok.stderr);
    assert.match(ok.stdout, /^Copying .* into the bundle cache$/m);
    assert.match(ok.stdout, /^Verifying 4 files \(.*\) against the manifest of Kubernetes v1\.37\.2$/m);
    assert.match(ok.stdout, /Kubernetes v1\.37\.2 node bundle imported: .*v1\.37\.2 \(4 files, 1 images, .*\)$/m);
    const missing = await runCli(['bundle', 'import', join(root, 'nope.tgz')], { home });
    assert.equal(missing.code, 2);
    assert.match(missing.stderr, /KUBE_BUNDLE_SOURCE_NOT_FOUND/);
  });

  test('build refuses a Kubernetes version devcluster does not install, before writing anything', async () => {
    const home = fresh('home');
    const r = await runCli(['bundle', 'build', '--kubernetes-version', 'v1.20.0'], { home });
    assert.equal(r.code, 2, r.stderr);
    assert.match(r.stderr, /KUBERNETES_VERSION_UNSUPPORTED: --kubernetes-version: Kubernetes v1\.20\.0 is not one devcluster installs/);
    assert.ok(!existsSync(join(home, 'cache')));
  });

  test('build without go on PATH is refused up front, naming what to install, and writes nothing', async () => {
    const home = fresh('home');
    const bin = fresh('path');
    mkdirSync(bin);
    for (const tool of ['bash', 'gcc', 'apt-get', 'dpkg-deb']) {
      const found = execFileSync('bash', ['-c', `command -v ${tool} || true`], { encoding: 'utf8' }).trim();
      if (found !== '') symlinkSync(found, join(bin, tool));
    }
    const r = await runCli(['bundle', 'build'], { home, env: { PATH: bin } });
    assert.equal(r.code, 38, r.stderr);
    assert.match(r.stderr, /KUBE_BUNDLE_BUILD_UNAVAILABLE: the Kubernetes node bundle cannot be built here: it needs\n\s+go \(Go 1\.26 or newer/);
    assert.doesNotMatch(r.stderr, /gcc \(/);
    assert.ok(!existsSync(join(home, 'cache')));
  });

  test('the host checks: Linux, x86_64, and every missing piece in one message', () => {
    const linux: BundleBuildHost = { platform: 'linux', arch: 'x64', missingPrograms: [], libseccompStatic: true, codename: 'bookworm' };
    assert.equal(checkBundleBuildHost(linux), undefined);
    assert.match(checkBundleBuildHost({ ...linux, platform: 'darwin' })?.message ?? '', /the build needs Linux \(this host is darwin\)/);
    assert.match(checkBundleBuildHost({ ...linux, platform: 'win32' })?.advice ?? '', /devcluster bundle import/);
    assert.match(checkBundleBuildHost({ ...linux, arch: 'arm64' })?.message ?? '', /needs an x86_64 host \(this one is arm64\)/);
    const all = checkBundleBuildHost({ ...linux, missingPrograms: ['go', 'gcc'], libseccompStatic: false, codename: 'trixie' });
    assert.equal(all?.id, 'KUBE_BUNDLE_BUILD_UNAVAILABLE');
    assert.deepEqual((all?.details['missing'] as string[]).map((l) => l.split(' ')[0]), ['go', 'gcc', 'libseccomp\'s', 'Debian']);
  });
});
