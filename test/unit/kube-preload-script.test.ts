/**
 * The guest's preload extraction (preloadScript), run by a real sh with the
 * real tar on a small archive: it extracts only where containerd never ran,
 * renames the whole tree into place, replaces what an interrupted extraction
 * left, and a failed extraction leaves no containerd root behind. The real
 * preload, extracted by the same script and used by the bundle's containerd,
 * is checked in test/contract-kube/kube-bundle.test.ts.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { preloadScript } from '../../src/kube/guest-bundle.ts';
import { tempDir } from '../helpers/cli.ts';

async function fixture(): Promise<{ dir: string; archive: string; root: string }> {
  const dir = await tempDir('preload-script-');
  const src = join(dir, 'src');
  mkdirSync(join(src, 'io.containerd.snapshotter.v1.overlayfs', 'snapshots', '1', 'fs'), { recursive: true });
  writeFileSync(join(src, 'io.containerd.snapshotter.v1.overlayfs', 'metadata.db'), 'snapshots');
  writeFileSync(join(src, 'io.containerd.snapshotter.v1.overlayfs', 'snapshots', '1', 'fs', 'pause'), 'binary');
  const archive = join(dir, 'it\'s a preload.tar');
  const made = spawnSync('tar', ['--create', '--file', archive, '-C', src, '.'], { encoding: 'utf8' });
  assert.equal(made.status, 0, made.stderr);
  return { dir, archive, root: join(dir, 'var lib', 'containerd') };
}

function runScript(archive: string, root: string): { status: number | null; stdout: string; stderr: string } {
  return spawnSync('sh', ['-c', ['set -e', `mkdir -p '${join(root, '..')}'`, ...preloadScript(archive, root), 'preload_wait'].join('\n')], { encoding: 'utf8' });
}

test('a containerd root that does not exist is filled from the archive, whole, mode 0711', async () => {
  const { archive, root } = await fixture();
  const r = runScript(archive, root);
  assert.equal(r.status, 0, r.stderr);
  assert.equal(r.stdout, 'preloaded\n');
  assert.equal(readFileSync(join(root, 'io.containerd.snapshotter.v1.overlayfs', 'snapshots', '1', 'fs', 'pause'), 'utf8'), 'binary');
  assert.equal(statSync(root).mode & 0o777, 0o711);
  assert.deepEqual(readdirSync(join(root, '..')), ['containerd'], 'no staging directory is left');
});

test('a root that exists (containerd ran) is left exactly as it is, and nothing is said', async () => {
  const { archive, root } = await fixture();
  mkdirSync(root, { recursive: true });
  writeFileSync(join(root, 'own-state'), 'keep');
  const r = runScript(archive, root);
  assert.equal(r.status, 0, r.stderr);
  assert.equal(r.stdout, '');
  assert.deepEqual(readdirSync(root), ['own-state']);
});

test('what an interrupted extraction left beside the root is replaced, not merged', async () => {
  const { archive, root } = await fixture();
  mkdirSync(`${root}.devcluster-preload/half`, { recursive: true });
  const r = runScript(archive, root);
  assert.equal(r.status, 0, r.stderr);
  assert.equal(existsSync(join(root, 'half')), false);
  assert.equal(existsSync(join(root, 'io.containerd.snapshotter.v1.overlayfs', 'metadata.db')), true);
});

test('a failed extraction fails the script and makes no containerd root', async () => {
  const { dir, root } = await fixture();
  const r = runScript(join(dir, 'missing.tar'), root);
  assert.notEqual(r.status, 0);
  assert.match(r.stderr, /missing\.tar/);
  assert.equal(existsSync(root), false);
});
