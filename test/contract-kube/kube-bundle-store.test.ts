/**
 * The real built Kubernetes node bundle through the CLI: `devcluster bundle
 * import` copies and verifies all of it (every sha256) into a temporary home,
 * `bundle list` shows it as a complete imported bundle with the manifest's
 * components and images, findBundle finds it, its manifest.json is the
 * built bytes; as a .tar it is extracted and verified into another home, and
 * into the first one it changes nothing.
 *
 * The bundle is DEVCLUSTER_KUBE_BUNDLE (default
 * /var/cache/devcluster-test/kube-bundle/<version>, version
 * DEVCLUSTER_KUBE_VERSION, default v1.37.2); it is only read. Without one this
 * is skipped off CI and fails under CI. About 30 s.
 */
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { skipUnlessPresent } from '../helpers/prerequisite.ts';
import { runCli, snapshotTree, tempDir } from '../helpers/cli.ts';
import { formatBytes } from '../../src/image/progress.ts';
import { findBundle } from '../../src/kube/bundle-store.ts';

const version = process.env['DEVCLUSTER_KUBE_VERSION'] ?? 'v1.37.2';
const bundle = process.env['DEVCLUSTER_KUBE_BUNDLE'] ?? `/var/cache/devcluster-test/kube-bundle/${version}`;

const skip = skipUnlessPresent(existsSync(join(bundle, 'manifest.json'))
  ? false
  : `no complete bundle at ${bundle} (no manifest.json); build one with images/kubernetes/build.sh ${version} ${bundle}`);

const work = await tempDir('kube-bundle-store-real-');
after(() => rmSync(work, { recursive: true, force: true }));

describe('the built bundle through devcluster bundle import and list', { skip }, () => {
  const home = join(work, 'home');
  const cached = join(home, 'cache', 'kubernetes', version);

  test('import verifies and caches it', async () => {
    const manifest = JSON.parse(readFileSync(join(bundle, 'manifest.json'), 'utf8')) as { files: unknown[]; images: unknown[] };
    const r = await runCli(['bundle', 'import', bundle], { home });
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, new RegExp(`^Verifying ${manifest.files.length} files \\(.*\\) against the manifest of Kubernetes ${version.replace(/\./g, '\\.')}$`, 'm'));
    assert.match(r.stdout, new RegExp(`node bundle imported: ${cached.replace(/\./g, '\\.')} \\(${manifest.files.length} files, ${manifest.images.length} images, `));
    assert.deepEqual(readFileSync(join(cached, 'manifest.json')), readFileSync(join(bundle, 'manifest.json')));
    const found = await findBundle(home, version);
    assert.equal(found?.dir, cached);
    assert.equal(found?.manifest.images.length, manifest.images.length);
  });

  test('list shows it complete, imported, with its components and images', async () => {
    const manifest = JSON.parse(readFileSync(join(bundle, 'manifest.json'), 'utf8')) as { components: Record<string, string>; images: unknown[] };
    const json = await runCli(['bundle', 'list', '-o', 'json'], { home });
    assert.equal(json.code, 0, json.stderr);
    const doc = JSON.parse(json.stdout) as { bundles: Array<{ version: string; status: string; source: string; origin: string; components: Record<string, string>; images: number; sizeBytes: number; problems: string[] }> };
    assert.equal(doc.bundles.length, 1);
    const b = doc.bundles[0]!;
    assert.deepEqual([b.version, b.status, b.source, b.origin, b.images, b.problems], [version, 'ok', 'import', bundle, manifest.images.length, []]);
    assert.deepEqual(b.components, manifest.components);
    assert.ok(b.sizeBytes > 100 * 1024 * 1024, `${b.sizeBytes} bytes`);
    const table = await runCli(['bundle', 'list'], { home });
    assert.equal(table.code, 0, table.stderr);
    assert.match(table.stdout, new RegExp(`^${version.replace(/\./g, '\\.')}\\s+import\\s+containerd ${manifest.components['containerd']}, runc ${manifest.components['runc']}, etcd ${manifest.components['etcd']}, \\+4 more\\s+${manifest.images.length}\\s+${formatBytes(b.sizeBytes).replace(/\./g, '\\.')}\\s+ok$`, 'm'));
  });

  test('as a .tar it is extracted, verified and cached in another home; into this one it changes nothing', async () => {
    const archive = join(work, `kube-bundle-${version}.tar`);
    execFileSync('tar', ['-C', bundle, '-cf', archive, '.']);
    const other = join(work, 'home-2');
    const fromTar = await runCli(['bundle', 'import', archive], { home: other });
    assert.equal(fromTar.code, 0, fromTar.stderr);
    assert.match(fromTar.stdout, /^Extracting \d+ files from /m);
    assert.equal((await findBundle(other, version))?.dir, join(other, 'cache', 'kubernetes', version));
    rmSync(other, { recursive: true, force: true });

    const before = await snapshotTree(join(home, 'cache', 'kubernetes'));
    const r = await runCli(['bundle', 'import', archive], { home });
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /is already cached with the same manifest .*; nothing changed$/m);
    assert.deepEqual(await snapshotTree(join(home, 'cache', 'kubernetes')), before);
  });
});
