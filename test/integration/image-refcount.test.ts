import { test, describe, before } from 'node:test';
import assert from 'node:assert/strict';
import { access, mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { ImageCache, hashFile } from '../../src/image/cache.ts';
import { imageUsage, imageUsers } from '../../src/image/references.ts';
import type { BaseMediaHolder } from '../../src/image/references.ts';
import { pruneImages, removeImage } from '../../src/image/removal.ts';
import { resolveImage } from '../../src/image/resolve.ts';
import { runCli, snapshotTree, tempDir } from '../helpers/cli.ts';
import { sha256, testBytes } from '../helpers/image-server.ts';
import { QEMU_IMG_MISSING, cleanQcow2 } from '../helpers/disk-images.ts';

/**
 * One cache entry, several users: the names it was imported under and the
 * profiles whose VM disks use it as a base. rm and prune remove a file only
 * when nothing uses it, and say who keeps it.
 */
const KERNEL = testBytes(4096, 31);
const INITRD = testBytes(4096, 32);

let disk: Buffer;
let diskSha: string;
let source: string;

async function manifestFor(name: string): Promise<string> {
  const dir = await tempDir(`devcluster-build-${name}-`);
  await writeFile(join(dir, 'disk.qcow2'), disk);
  await writeFile(join(dir, 'vmlinuz'), KERNEL);
  await writeFile(join(dir, 'initrd.img'), INITRD);
  await writeFile(join(dir, 'manifest.json'), JSON.stringify({
    name, version: '1.0',
    formats: {
      qcow2: { file: 'disk.qcow2', sha256: diskSha, size: disk.length },
      kernel: { file: 'vmlinuz', sha256: sha256(KERNEL), size: KERNEL.length },
      initrd: { file: 'initrd.img', sha256: sha256(INITRD), size: INITRD.length },
    },
  }));
  return join(dir, 'manifest.json');
}

/** A home where the same bytes are imported as team-a and team-b, through the real CLI. */
async function twoNames(): Promise<string> {
  const home = await tempDir('devcluster-refcount-');
  for (const name of ['team-a', 'team-b']) {
    const r = await runCli(['image', 'import', await manifestFor(name)], { home });
    assert.equal(r.code, 0, r.stderr);
  }
  return home;
}

async function writeState(home: string, profile: string, content: string): Promise<void> {
  await mkdir(join(home, 'profiles', profile), { recursive: true });
  await writeFile(join(home, 'profiles', profile, 'state.json'), content);
}

function stateUsing(profile: string, name: string): string {
  return JSON.stringify({ profile, image: { name, origin: 'build', format: 'qcow2', sha256: diskSha, kernel: { sha256: sha256(KERNEL) }, initrd: { sha256: sha256(INITRD) } } });
}

async function listed(home: string): Promise<Array<{ name: string; sha256: string; usedBy: string[] }>> {
  const r = await runCli(['image', 'list', '-o', 'json'], { home });
  assert.equal(r.code, 0, r.stderr);
  return (JSON.parse(r.stdout) as { images: Array<{ name: string; sha256: string; usedBy: string[] }> }).images;
}

function cacheFiles(tree: Record<string, string>): Record<string, string> {
  return Object.fromEntries(Object.entries(tree).filter(([path]) => /^\/images\/[0-9a-f]{64}\//.test(path)));
}

before(async () => {
  if (QEMU_IMG_MISSING !== false) return;
  const dir = await tempDir('devcluster-refcount-disk-');
  source = await cleanQcow2(dir, 'shared.qcow2', '2M');
  disk = await readFile(source);
  diskSha = sha256(disk);
});

describe('one image imported under two names', { skip: QEMU_IMG_MISSING }, () => {
  test('both names list the same digest; imageUsers names both', async () => {
    const home = await twoNames();
    const rows = (await listed(home)).filter((i) => i.sha256 === diskSha);
    assert.deepEqual(rows.map((i) => i.name), ['team-a', 'team-b']);
    const users = await imageUsers(home, diskSha);
    assert.deepEqual(users, { names: ['team-a', 'team-b'], profiles: [], unknown: [] });
  });

  test('rm of one name keeps the files the other uses: still listed, sha256 verifies, resolves', async () => {
    const home = await twoNames();
    const before = cacheFiles(await snapshotTree(join(home, 'cache')));
    const r = await runCli(['image', 'rm', 'team-a'], { home });
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /Removed the name team-a 1\.0/);
    assert.match(r.stdout, new RegExp(`Kept team-a-1\\.0\\.qcow2 \\(${diskSha.slice(0, 12)}\\): still used by name team-b`));
    assert.deepEqual(cacheFiles(await snapshotTree(join(home, 'cache'))), before, 'no cached file was touched');
    assert.deepEqual((await listed(home)).map((i) => i.name), ['team-b', 'team-b', 'team-b']);
    const cache = ImageCache.forHome(home);
    const entry = await cache.lookup(diskSha, { verify: 'full' });
    assert.ok(entry !== undefined, 'the entry is still there');
    assert.equal((await hashFile(entry.path)).sha256, diskSha);
    const resolved = await resolveImage({ home, image: 'team-b', formats: ['qcow2'], offline: true });
    assert.equal(resolved.disk.sha256, diskSha);
    assert.equal(resolved.kernel?.sha256, sha256(KERNEL));
    await assert.rejects(resolveImage({ home, image: 'team-a', formats: ['qcow2'], offline: true }), /IMAGE_UNKNOWN|not an image devcluster knows/);
  });

  test('rm of the last name removes the files', async () => {
    const home = await twoNames();
    assert.equal((await runCli(['image', 'rm', 'team-a'], { home })).code, 0);
    const r = await runCli(['image', 'rm', 'team-b'], { home });
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /Removed team-b 1\.0 \(3 files/);
    assert.deepEqual(await ImageCache.forHome(home).list(), []);
  });

  test('rm by digest of an entry two names share is refused and changes nothing', async () => {
    const home = await twoNames();
    const before = await snapshotTree(join(home, 'cache'));
    const r = await runCli(['image', 'rm', diskSha.slice(0, 20)], { home });
    assert.equal(r.code, 16, r.stderr);
    assert.match(r.stderr, /IMAGE_IN_USE/);
    assert.match(r.stderr, /still used by name team-a, name team-b/);
    assert.deepEqual(await snapshotTree(join(home, 'cache')), before);
  });
});

describe('profiles keep what their VMs boot from', { skip: QEMU_IMG_MISSING }, () => {
  test('rm of the only name a profile uses: name gone, files kept, and says which profile', async () => {
    const home = await twoNames();
    await runCli(['image', 'rm', 'team-b'], { home });
    await writeState(home, 'dev', stateUsing('dev', 'team-a'));
    const result = await removeImage(home, 'team-a');
    assert.ok(result !== undefined);
    assert.equal(result.nameRemoved, 'team-a');
    assert.deepEqual(result.removed, []);
    assert.deepEqual(result.kept.map((k) => [k.sha256, k.why]).sort(), [
      [diskSha, 'profile dev'], [sha256(KERNEL), 'profile dev'], [sha256(INITRD), 'profile dev'],
    ].sort());
    const entry = await ImageCache.forHome(home).lookup(diskSha, { verify: 'full' });
    assert.ok(entry !== undefined);
    assert.deepEqual(await imageUsers(home, diskSha), { names: [], profiles: ['dev'], unknown: [] });
  });

  test('prune spares what a profile uses, says why, and removes the rest', async () => {
    const home = await twoNames();
    await writeState(home, 'dev', stateUsing('dev', 'team-a'));
    const spare = join(home, 'spare.raw');
    await writeFile(spare, testBytes(8192, 5));
    const spareEntry = await ImageCache.forHome(home).importFile(spare);
    const r = await runCli(['image', 'prune'], { home });
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /Removed spare\.raw/);
    assert.match(r.stdout, new RegExp(`Kept \\S+ \\(${diskSha.slice(0, 12)}\\): used by profile dev`));
    const left = (await ImageCache.forHome(home).list()).map((row) => row.sha256).sort();
    assert.deepEqual(left, [diskSha, sha256(KERNEL), sha256(INITRD)].sort());
    assert.ok(!left.includes(spareEntry.sha256));
  });

  test('a corrupt state.json: rm keeps the files and says why, prune removes nothing', async () => {
    const home = await twoNames();
    await runCli(['image', 'rm', 'team-b'], { home });
    await writeState(home, 'broken', '{"profile": "broken", "image": {"sha256": "');
    const spare = join(home, 'spare.raw');
    await writeFile(spare, testBytes(8192, 6));
    await ImageCache.forHome(home).importFile(spare);
    const before = cacheFiles(await snapshotTree(join(home, 'cache')));

    const prune = await runCli(['image', 'prune'], { home });
    assert.equal(prune.code, 16, prune.stderr);
    assert.match(prune.stderr, /IMAGE_IN_USE/);
    assert.match(prune.stderr, /nothing was pruned: cannot tell which images broken uses/);
    assert.deepEqual(cacheFiles(await snapshotTree(join(home, 'cache'))), before);

    const rm = await runCli(['image', 'rm', 'team-a'], { home });
    assert.equal(rm.code, 0, rm.stderr);
    assert.match(rm.stdout, /Kept \S+ \(\w+\): still used by profile broken \(its state\.json cannot be read\)/);
    assert.deepEqual(cacheFiles(await snapshotTree(join(home, 'cache'))), before, 'no file was removed');

    const byDigest = await runCli(['image', 'rm', diskSha.slice(0, 16)], { home });
    assert.equal(byDigest.code, 16, byDigest.stderr);
    assert.match(byDigest.stderr, /state\.json cannot be read/);
    assert.deepEqual(cacheFiles(await snapshotTree(join(home, 'cache'))), before);
  });

  test('prune --force with a corrupt state still spares what a readable profile uses', async () => {
    const home = await twoNames();
    await writeState(home, 'dev', stateUsing('dev', 'team-a'));
    await writeState(home, 'broken', 'not json');
    const result = await pruneImages(home, { force: true });
    assert.deepEqual(result.ignoredUnreadable, ['broken']);
    assert.deepEqual(result.removed, []);
    assert.deepEqual(result.kept.map((k) => k.sha256).sort(), [diskSha, sha256(KERNEL), sha256(INITRD)].sort());
  });
});

/**
 * A hypervisor that registers cached bases as its own media (VirtualBox),
 * scripted: it holds the paths in `held`, records each release with whether
 * the file was still there (a release must come before the delete), and
 * refuses to release when told to.
 */
function scriptedHolder(refusal?: string): { holder: BaseMediaHolder; held: Set<string>; released: Array<{ path: string; fileWasThere: boolean }> } {
  const held = new Set<string>();
  const released: Array<{ path: string; fileWasThere: boolean }> = [];
  const holder: BaseMediaHolder = {
    name: 'ScriptedHypervisor',
    holds: async (path) => held.has(path),
    release: async (path) => {
      released.push({ path, fileWasThere: await access(path).then(() => true, () => false) });
      if (refusal !== undefined) throw new Error(refusal);
      held.delete(path);
    },
  };
  return { holder, held, released };
}

/** A home where only team-a names the shared disk, and the disk's cached path. */
async function oneName(): Promise<{ home: string; diskPath: string }> {
  const home = await twoNames();
  assert.ok((await removeImage(home, 'team-b')) !== undefined);
  const entry = await ImageCache.forHome(home).lookup(diskSha);
  assert.ok(entry !== undefined);
  return { home, diskPath: entry.path };
}

describe('base media a hypervisor registered', { skip: QEMU_IMG_MISSING }, () => {
  test('held and used by nothing else: rm releases it through the holder, then removes it', async () => {
    const { home, diskPath } = await oneName();
    const { holder, held, released } = scriptedHolder();
    held.add(diskPath);
    assert.deepEqual((await imageUsage(home, undefined, [holder])).users(diskSha).heldBy, ['ScriptedHypervisor']);
    const result = await removeImage(home, 'team-a', { holders: [holder] });
    assert.deepEqual(released, [{ path: diskPath, fileWasThere: true }]);
    assert.ok(result?.removed.some((r) => r.sha256 === diskSha), 'the disk was removed');
    assert.deepEqual(result?.kept, []);
    assert.equal(await ImageCache.forHome(home).lookup(diskSha), undefined);
  });

  test('held and used by nothing else: prune releases it, then removes it', async () => {
    const { home, diskPath } = await oneName();
    const { holder, held, released } = scriptedHolder();
    held.add(diskPath);
    const result = await pruneImages(home, { holders: [holder] });
    assert.deepEqual(released, [{ path: diskPath, fileWasThere: true }]);
    assert.ok(result.removed.some((r) => r.sha256 === diskSha));
    assert.deepEqual(await ImageCache.forHome(home).list(), []);
  });

  test('a release that fails keeps the file, with the holder\'s reason', async () => {
    const { home, diskPath } = await oneName();
    const { holder, held, released } = scriptedHolder('the medium is attached to the VM "old-vm"');
    held.add(diskPath);
    const result = await removeImage(home, 'team-a', { holders: [holder] });
    assert.deepEqual(released, [{ path: diskPath, fileWasThere: true }]);
    assert.deepEqual(result?.kept.map((k) => [k.sha256, k.why]), [[diskSha, 'ScriptedHypervisor, which could not release it: the medium is attached to the VM "old-vm"']]);
    assert.ok(!(result?.removed.some((r) => r.sha256 === diskSha) ?? true));
    const entry = await ImageCache.forHome(home).lookup(diskSha, { verify: 'full' });
    assert.equal(entry?.path, diskPath, 'the disk is still cached and verifies');

    const pruned = await pruneImages(home, { holders: [holder] });
    assert.deepEqual(pruned.kept.map((k) => [k.sha256, k.why]), [[diskSha, 'ScriptedHypervisor, which could not release it: the medium is attached to the VM "old-vm"']]);
    assert.ok(!pruned.removed.some((r) => r.sha256 === diskSha));
    assert.ok((await ImageCache.forHome(home).lookup(diskSha)) !== undefined);
  });

  test('held and used by a profile: kept for the profile, never released', async () => {
    const { home, diskPath } = await oneName();
    await writeState(home, 'dev', stateUsing('dev', 'team-a'));
    const { holder, held, released } = scriptedHolder();
    held.add(diskPath);
    const result = await removeImage(home, 'team-a', { holders: [holder] });
    assert.deepEqual(result?.kept.find((k) => k.sha256 === diskSha)?.why, 'profile dev');
    const pruned = await pruneImages(home, { holders: [holder] });
    assert.deepEqual(pruned.kept.find((k) => k.sha256 === diskSha)?.why, 'profile dev');
    assert.deepEqual(released, [], 'nothing was released');
    assert.ok((await ImageCache.forHome(home).lookup(diskSha)) !== undefined);
  });
});
