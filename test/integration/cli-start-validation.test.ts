import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { runCli, snapshotTree, tempDir } from '../helpers/cli.ts';

/**
 * A start that is refused must leave no trace: exit non-zero with the ID, the
 * home byte-for-byte as it was, and no new profile in `profile list` (issue
 * 14: "exit 2, nothing changed", yet the profile showed up in "Creating").
 */

const ENV = { DEVCLUSTER_HOST_CPUS: '4', DEVCLUSTER_HOST_MEMORY_MIB: '16384' };
const OTHER_PLATFORM_DRIVER = process.platform === 'win32' ? 'hyperkit' : 'hyperv';

/** A home with real content, so "unchanged" means more than "still empty"; one per case, so cases cannot mask each other. */
async function populatedHome(): Promise<string> {
  const home = await tempDir();
  await writeFile(join(home, 'config.json'), '{\n  "memory": 2048\n}\n');
  await mkdir(join(home, 'profiles', 'dev'), { recursive: true });
  await writeFile(join(home, 'profiles', 'dev', 'config.json'), '{\n  "cpus": 1\n}\n');
  return home;
}

const REFUSED: Array<{ why: string; args: string[]; id: string; env?: Record<string, string> }> = [
  { why: 'more CPUs than the host has', args: ['--cpus', '999'], id: 'HOST_CPUS_TOO_FEW' },
  { why: 'a malformed CPU count', args: ['--cpus', 'lots'], id: 'CONFIG_INVALID_VALUE' },
  { why: 'more memory than the host has', args: ['--memory', '64g'], id: 'HOST_MEMORY_TOO_LOW' },
  { why: 'a malformed memory size', args: ['--memory', '4 parsecs'], id: 'CONFIG_INVALID_VALUE' },
  { why: 'a disk too small', args: ['--disk-size', '1m'], id: 'CONFIG_INVALID_VALUE' },
  { why: 'an image name that is not a name, path or URL', args: ['--image', 'Not An Image!'], id: 'CONFIG_INVALID_VALUE' },
  { why: 'an image name not in the catalog', args: ['--image', 'no-such-image'], id: 'IMAGE_UNKNOWN' },
  { why: 'an image path that does not exist', args: ['--image', '/nonexistent/devcluster/disk.qcow2'], id: 'IMAGE_FILE_NOT_FOUND' },
  { why: 'an unknown driver', args: ['--driver', 'docker'], id: 'DRIVER_UNKNOWN' },
  { why: 'a driver for another platform', args: ['--driver', OTHER_PLATFORM_DRIVER], id: 'DRIVER_' },
  { why: 'a malformed driver setting', args: ['--qemu-network', 'carrier-pigeon'], id: 'CONFIG_INVALID_VALUE' },
  { why: 'a static IP that is not an address', args: ['--static-ip', '300.1.1.1'], id: 'CONFIG_INVALID_VALUE' },
  { why: 'a bad value in the environment', args: [], id: 'HOST_CPUS_TOO_FEW', env: { DEVCLUSTER_CPUS: '999' } },
  { why: 'a bad Kubernetes version (even with --no-kubernetes)', args: ['--kubernetes-version', 'v9'], id: 'KUBERNETES_VERSION_INVALID' },
  { why: 'an unsupported Kubernetes version', args: ['--kubernetes-version', 'v1.30.0'], id: 'KUBERNETES_VERSION_UNSUPPORTED' },
  { why: 'a release URL that is not http(s)', args: [], id: 'CONFIG_INVALID_VALUE', env: { DEVCLUSTER_KUBERNETES_RELEASE_URL: 'ftp://mirror.internal/k8s' } },
];

for (const c of REFUSED) {
  test(`start with ${c.why} creates no profile and changes nothing`, async () => {
    const home = await populatedHome();
    const beforeTree = await snapshotTree(home);
    const args = ['start', '--no-kubernetes', '-p', 'newprof', ...c.args];
    const r = await runCli(args, { home, env: { ...ENV, ...c.env } });
    assert.notEqual(r.code, 0, `devcluster ${args.join(' ')} succeeded:\n${r.stdout}`);
    assert.match(r.stderr, new RegExp(`Exiting due to ${c.id}`), `devcluster ${args.join(' ')}:\n${r.stderr}`);
    assert.deepEqual(await snapshotTree(home), beforeTree, `devcluster ${args.join(' ')} changed $DEVCLUSTER_HOME`);
    const list = await runCli(['profile', 'list', '-o', 'json'], { home, env: ENV });
    assert.equal(list.code, 0, list.stderr);
    assert.deepEqual((JSON.parse(list.stdout) as { profiles: Array<{ name: string }> }).profiles.map((p) => p.name), ['dev']);
  });
}

test('a bad value in a config file refuses every start, whatever the flags', async () => {
  const h = await tempDir();
  await mkdir(join(h, 'profiles', 'dev'), { recursive: true });
  await writeFile(join(h, 'profiles', 'dev', 'config.json'), '{\n  "memory": "lots"\n}\n');
  const beforeTree = await snapshotTree(h);
  const r = await runCli(['start', '--no-kubernetes', '-p', 'dev', '--memory', '2g'], { home: h, env: ENV });
  assert.equal(r.code, 2, r.stderr);
  assert.match(r.stderr, /CONFIG_INVALID_VALUE: .*profiles\/dev\/config\.json: memory/);
  assert.deepEqual(await snapshotTree(h), beforeTree);
});

test('a global-only key in a profile\'s config is refused, not silently ignored', async () => {
  const h = await tempDir();
  await mkdir(join(h, 'profiles', 'dev'), { recursive: true });
  await writeFile(join(h, 'profiles', 'dev', 'config.json'), '{\n  "profile": "other"\n}\n');
  const beforeTree = await snapshotTree(h);
  for (const args of [['start', '--no-kubernetes', '-p', 'dev'], ['config', 'view', '-p', 'dev']]) {
    const r = await runCli(args, { home: h, env: ENV });
    assert.equal(r.code, 18, r.stderr);
    assert.match(r.stderr, /CONFIG_FILE_CORRUPT: .*profiles\/dev\/config\.json: profile is a global setting/);
  }
  assert.deepEqual(await snapshotTree(h), beforeTree);
});
