import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { chmod, copyFile, mkdir, mkdtemp, readFile, readdir, rename, writeFile } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { ImageCache } from '../../src/image/cache.ts';
import { buildImage } from '../../src/image/build.ts';
import { parseCatalog } from '../../src/image/catalog.ts';
import { resolveImage } from '../../src/image/resolve.ts';
import { homePaths } from '../../src/profile/paths.ts';
import { runCli, tempDir } from '../helpers/cli.ts';
import { FaultServer, sha256, testBytes } from '../helpers/image-server.ts';
import {
  QEMU_IMG_MISSING, backedQcow2, childVmdk, cleanOva, cleanQcow2, dataFileQcow2, flatVmdk, ovfNaming, rawDisk, streamVmdk, writeTar,
} from '../helpers/disk-images.ts';
import { rejectsWith } from '../helpers/errors.ts';

/**
 * An image that names another file is refused on every way into the cache
 * (a path, a download, `image import`, `image build`) and again when a cached
 * base is resolved for a VM. Every image here is made by the real qemu-img.
 */
const ALL_FORMATS = ['qcow2', 'vhdx', 'vmdk', 'ova', 'raw'] as const;
const KERNEL = testBytes(4096, 21);
const INITRD = testBytes(4096, 22);

let work: string;
let secret: string;

async function tempHome(): Promise<string> {
  return tempDir('devcluster-imgsafety-');
}

/** Nothing of the image reached the cache: no digest folder, no staging or partial file, no index entry or memo. */
async function assertNothingCached(home: string): Promise<void> {
  const root = homePaths(home).imageCache;
  const names = await readdir(root).catch(() => [] as string[]);
  assert.deepEqual(names.filter((n) => /^[0-9a-f]{64}$/.test(n)), [], 'no cache entry');
  assert.deepEqual(await readdir(join(root, '.staging')).catch(() => []), [], 'no staging leftovers');
  assert.deepEqual((await readdir(join(root, '.part')).catch(() => [] as string[])), [], 'no partial download');
  const index = await ImageCache.forHome(home).readIndex();
  assert.deepEqual(index.entries, {});
  assert.deepEqual(index.images, {});
  assert.deepEqual(index.sources, {});
}

async function writeManifest(dir: string, name: string, disk: string, kind = 'qcow2'): Promise<string> {
  await mkdir(dir, { recursive: true });
  const diskName = basename(disk);
  if (join(dir, diskName) !== disk) await copyFile(disk, join(dir, diskName));
  await writeFile(join(dir, 'vmlinuz'), KERNEL);
  await writeFile(join(dir, 'initrd.img'), INITRD);
  const bytes = await readFile(join(dir, diskName));
  await writeFile(join(dir, 'manifest.json'), JSON.stringify({
    name, version: '1',
    formats: {
      // The kernel comes first so a check made only file by file would already have cached it.
      kernel: { file: 'vmlinuz', sha256: sha256(KERNEL), size: KERNEL.length },
      initrd: { file: 'initrd.img', sha256: sha256(INITRD), size: INITRD.length },
      [kind]: { file: diskName, sha256: sha256(bytes), size: bytes.length },
    },
  }));
  return join(dir, 'manifest.json');
}

before(async () => {
  work = await tempDir('devcluster-images-');
  secret = join(work, 'host-secret.txt');
  await writeFile(secret, 'a file on the host the guest must never read\n');
});

describe('images that name another file are refused on the way in', { skip: QEMU_IMG_MISSING }, () => {
  const cases: Array<{ what: string; make: (dir: string) => Promise<string>; names: RegExp }> = [
    { what: 'a qcow2 with a backing file that exists', make: (d) => backedQcow2(d, secret), names: /host-secret\.txt.*backing-filename/ },
    { what: 'a qcow2 with a backing file that does not exist', make: (d) => backedQcow2(d, '/etc/shadow', 'shadow.qcow2'), names: /"\/etc\/shadow"/ },
    { what: 'a qcow2 with an external data file', make: (d) => dataFileQcow2(d, join(d, 'data.raw')), names: /data\.raw.*data-file/ },
    { what: 'a monolithicFlat VMDK (text descriptor plus extent)', make: (d) => flatVmdk(d), names: /"flat-flat\.vmdk" \(VMDK extent\)/ },
    { what: 'a sparse VMDK whose embedded descriptor names a parent', make: (d) => childVmdk(d), names: /"child\.vmdk\.parent\.vmdk" \(.*backing-filename/ },
    {
      what: 'an OVA whose member is a symbolic link',
      make: (d) => writeTar(join(d, 'link.ova'), [{ name: 'a.ovf', data: Buffer.from(ovfNaming(['disk1.vmdk'])) }, { name: 'disk1.vmdk', type: '2', linkName: secret }]),
      names: /host-secret\.txt" \(OVA member "disk1\.vmdk" is a symbolic link\)/,
    },
    {
      what: 'an OVA whose OVF names a host path',
      make: async (d) => writeTar(join(d, 'href.ova'), [{ name: 'a.ovf', data: Buffer.from(ovfNaming([secret])) }, { name: 'disk1.vmdk', data: await readFile(await streamVmdk(d)) }]),
      names: /OVF File href/,
    },
    {
      what: 'an OVA carrying a text-descriptor VMDK',
      make: async (d) => writeTar(join(d, 'desc.ova'), [{ name: 'a.ovf', data: Buffer.from(ovfNaming(['flat.vmdk'])) }, { name: 'flat.vmdk', data: await readFile(await flatVmdk(d, 'inner.vmdk')) }]),
      names: /inner-flat\.vmdk/,
    },
  ];

  for (const c of cases) {
    test(`--image <path>: ${c.what}`, async () => {
      const dir = await mkdtemp(join(work, 'case-'));
      const image = await c.make(dir);
      const home = await tempHome();
      const e = await rejectsWith(resolveImage({ home, image, formats: ALL_FORMATS }), 'IMAGE_REFERENCES_FILE');
      assert.match(e.message, c.names);
      assert.ok(e.message.includes(image), 'the message names the image given');
      await assertNothingCached(home);
    });
  }

  test('self-contained images are accepted: clean qcow2, raw, streamOptimized VMDK, OVA', async () => {
    const dir = await mkdtemp(join(work, 'good-'));
    const home = await tempHome();
    const expected: Array<[string, string]> = [
      [await cleanQcow2(dir), 'qcow2'],
      [await rawDisk(dir), 'raw'],
      [await streamVmdk(dir), 'vmdk'],
      [await cleanOva(dir), 'ova'],
    ];
    for (const [image, format] of expected) {
      const resolved = await resolveImage({ home, image, formats: ALL_FORMATS });
      assert.equal(resolved.format, format, image);
      assert.equal(sha256(await readFile(resolved.disk.path)), sha256(await readFile(image)));
    }
  });

  test('a file whose signature says qcow2 but qemu-img cannot read is IMAGE_UNREADABLE, not cached', async () => {
    const dir = await mkdtemp(join(work, 'bad-'));
    const clean = await readFile(await cleanQcow2(dir));
    const broken = join(dir, 'broken.qcow2');
    await writeFile(broken, Buffer.concat([clean.subarray(0, 8), testBytes(64 * 1024, 9)]));
    const home = await tempHome();
    const e = await rejectsWith(resolveImage({ home, image: broken, formats: ALL_FORMATS }), 'IMAGE_UNREADABLE');
    assert.match(e.message, /qemu-img cannot open it/);
    await assertNothingCached(home);
  });
});

describe('a download that names another file', { skip: QEMU_IMG_MISSING }, () => {
  let server: FaultServer;
  before(async () => {
    server = await new FaultServer().start();
  });
  after(async () => {
    await server.close();
  });

  test('is refused after its digest verifies: no entry, no partial file', async () => {
    const dir = await mkdtemp(join(work, 'dl-'));
    const bytes = await readFile(await backedQcow2(dir, '/etc/passwd'));
    server.route('/evil.qcow2', { body: bytes, plan: [] });
    const home = await tempHome();
    const e = await rejectsWith(resolveImage({ home, image: server.url('/evil.qcow2'), imageSha256: sha256(bytes), formats: ['qcow2'], download: { env: {}, retries: 0 } }), 'IMAGE_REFERENCES_FILE');
    assert.match(e.message, /"\/etc\/passwd"/);
    assert.match(e.message, /evil\.qcow2/);
    await assertNothingCached(home);
  });

  test('a catalog image that names another file is refused the same way', async () => {
    const dir = await mkdtemp(join(work, 'cat-'));
    const bytes = await readFile(await dataFileQcow2(dir, '/dev/sda'));
    server.route('/rel/v1/evil.qcow2', { body: bytes, plan: [] });
    const catalog = parseCatalog({
      schemaVersion: 1, downloadBase: server.url('/rel/'),
      images: [{ name: 'evil-1', version: '1', description: 't', recipe: 'evil', published: true, formats: { qcow2: { url: server.url('/rel/v1/evil.qcow2'), sha256: sha256(bytes), size: bytes.length } } }],
    });
    const home = await tempHome();
    const e = await rejectsWith(resolveImage({ home, image: 'evil-1', formats: ['qcow2'], catalog, download: { env: {}, retries: 0 } }), 'IMAGE_REFERENCES_FILE');
    assert.match(e.message, /"\/dev\/sda" \(format-specific\.data\.data-file\)/);
    await assertNothingCached(home);
  });
});

describe('image import and image build', { skip: QEMU_IMG_MISSING }, () => {
  test('image import (CLI) of a build whose disk has a backing file: exit 45, naming the file, nothing cached', async () => {
    const dir = await mkdtemp(join(work, 'imp-'));
    const manifest = await writeManifest(join(dir, 'out'), 'evil-build', await backedQcow2(dir, secret));
    const home = await tempHome();
    const r = await runCli(['image', 'import', manifest], { home });
    assert.equal(r.code, 45, r.stderr);
    assert.match(r.stderr, /IMAGE_REFERENCES_FILE/);
    assert.match(r.stderr, /host-secret\.txt/);
    await assertNothingCached(home);
  });

  test('image import of a clean build is accepted (control for the case above)', async () => {
    const dir = await mkdtemp(join(work, 'imp-ok-'));
    const manifest = await writeManifest(join(dir, 'out'), 'good-build', await cleanQcow2(dir));
    const home = await tempHome();
    const r = await runCli(['image', 'import', manifest], { home });
    assert.equal(r.code, 0, r.stderr);
    assert.equal((await ImageCache.forHome(home).list()).length, 3);
  });

  test('the output of image build is checked too', async () => {
    const dir = await mkdtemp(join(work, 'build-'));
    const source = join(dir, 'prebuilt');
    await writeManifest(source, 'debian-12', await dataFileQcow2(dir, join(dir, 'data.raw')));
    const recipes = join(dir, 'recipes');
    await mkdir(join(recipes, 'debian'), { recursive: true });
    await writeFile(join(recipes, 'debian', 'build.sh'), `#!/usr/bin/env bash\nset -e\ncp ${source}/* "$2"/\n`);
    await chmod(join(recipes, 'debian', 'build.sh'), 0o755);
    const home = await tempHome();
    const e = await rejectsWith(buildImage({ home, recipe: 'debian', recipesDir: recipes, facts: { platform: 'linux', arch: 'x64', uid: 0, offline: false } }), 'IMAGE_REFERENCES_FILE');
    assert.match(e.message, /data\.raw/);
    await assertNothingCached(home);
  });

  test('without qemu-img the check cannot run: IMAGE_CHECK_UNAVAILABLE (exit 33), nothing cached', async () => {
    const dir = await mkdtemp(join(work, 'noqemu-'));
    const manifest = await writeManifest(join(dir, 'out'), 'good-build', await cleanQcow2(dir));
    const emptyPath = await tempDir('devcluster-nopath-');
    const home = await tempHome();
    const r = await runCli(['image', 'import', manifest], { home, env: { PATH: emptyPath } });
    assert.equal(r.code, 33, r.stderr);
    assert.match(r.stderr, /IMAGE_CHECK_UNAVAILABLE/);
    assert.match(r.stderr, /qemu-img is needed to verify/);
    await assertNothingCached(home);
  });
});

describe('a cached base is checked again before it goes to a VM', { skip: QEMU_IMG_MISSING }, () => {
  test('an entry cached before the check existed is refused by resolveImage', async () => {
    const home = await tempHome();
    const dir = await mkdtemp(join(work, 'old-'));
    const bytes = await readFile(await backedQcow2(dir, secret));
    const sha = sha256(bytes);
    // What an older devcluster left: a digest folder with the file, and the name in the index.
    const cache = ImageCache.forHome(home);
    await mkdir(cache.entryDir(sha), { recursive: true });
    await writeFile(join(cache.entryDir(sha), 'old.qcow2.tmp'), bytes);
    await rename(join(cache.entryDir(sha), 'old.qcow2.tmp'), join(cache.entryDir(sha), 'old.qcow2'));
    await cache.recordNamedImage('old-build', { version: '1', origin: 'build', formats: { qcow2: sha }, importedAt: new Date().toISOString() });
    const e = await rejectsWith(resolveImage({ home, image: 'old-build', formats: ['qcow2'], offline: true }), 'IMAGE_REFERENCES_FILE');
    assert.match(e.message, /host-secret\.txt/);
    assert.match(e.message, /old-build/);
  });
});
