/**
 * The VMware driver keeps its converted bases inside the image's cache entry
 * (drivers/vmware/index.ts basePath). The real image cache must take them for
 * what they are: not a second image in the entry, which it would remove with
 * the entry when the entry's stamp is missing.
 */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdir, rm, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { basePath } from '../../drivers/vmware/index.ts';
import { ImageCache } from '../../src/image/cache.ts';
import { tempDir } from '../helpers/cli.ts';

const dirs: string[] = [];
after(async () => {
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});

test('a cache entry holding VMware bases is still one image, even without its stamp', async () => {
  const root = await tempDir('vmware-cache-');
  dirs.push(root);
  const source = join(root, 'photon-5.vmdk');
  await writeFile(source, 'a VMDK stand-in; the cache only hashes it');
  const cache = new ImageCache(join(root, 'cache', 'images'));
  const entry = await cache.importFile(source);
  const base = basePath(entry.path, 20480);
  assert.equal(dirname(dirname(base)), dirname(entry.path), 'the base lives in the image\'s own entry');
  await mkdir(dirname(base), { recursive: true });
  await writeFile(base, 'converted base');
  await rm(join(dirname(entry.path), 'stamp.json'));

  const again = await cache.lookup(entry.sha256);
  assert.equal(again?.path, entry.path);
  assert.ok(existsSync(base), 'the base is kept');

  // The same layout with a visible folder would look like two images to the cache, which then drops the entry.
  const visible = join(dirname(entry.path), 'vmware');
  await mkdir(visible);
  await rm(join(dirname(entry.path), 'stamp.json'), { force: true });
  assert.equal(await cache.lookup(entry.sha256), undefined);
  assert.equal(existsSync(base), false);
});
