import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { runCli, snapshotTree, tempDir } from '../helpers/cli.ts';

const ENV = { DEVCLUSTER_HOST_CPUS: '4', DEVCLUSTER_HOST_MEMORY_MIB: '16384' };
let home: string;

before(async () => {
  home = await tempDir();
  // A home with real content, so "unchanged" means more than "still empty".
  await writeFile(join(home, 'config.json'), '{\n  "memory": 4096\n}\n');
  await mkdir(join(home, 'profiles', 'dev'), { recursive: true });
  await writeFile(join(home, 'profiles', 'dev', 'config.json'), '{\n  "cpus": 2\n}\n');
});

const INVALID: Array<{ args: string[]; id: string; env?: Record<string, string> }> = [
  { args: ['config', 'set', '-p', 'Bad_Name', 'cpus', '2'], id: 'PROFILE_INVALID_NAME' },
  { args: ['config', 'set', '-p', '../escape', 'cpus', '2'], id: 'PROFILE_INVALID_NAME' },
  { args: ['config', 'set', '-p', 'con', 'cpus', '2'], id: 'PROFILE_INVALID_NAME' },
  { args: ['config', 'get', '-p', 'a/b', 'cpus'], id: 'PROFILE_INVALID_NAME' },
  { args: ['config', 'set', 'memory', 'abc'], id: 'CONFIG_INVALID_VALUE' },
  { args: ['config', 'set', 'memory', '0'], id: 'CONFIG_INVALID_VALUE' },
  { args: ['config', 'set', 'memory', '--', '-4g'], id: 'CONFIG_INVALID_VALUE' },
  { args: ['config', 'set', 'memory', '-4g'], id: 'USAGE_INVALID_ARGUMENT' },
  { args: ['config', 'set', 'memory', '64g'], id: 'HOST_MEMORY_TOO_LOW' },
  { args: ['config', 'set', '-p', 'dev', 'memory', '64g'], id: 'HOST_MEMORY_TOO_LOW' },
  { args: ['config', 'set', 'cpus', '0'], id: 'CONFIG_INVALID_VALUE' },
  { args: ['config', 'set', 'cpus', '9'], id: 'HOST_CPUS_TOO_FEW' },
  { args: ['config', 'set', 'disk-size', '1m'], id: 'CONFIG_INVALID_VALUE' },
  { args: ['config', 'set', 'kubernetes-version', 'latest-ish'], id: 'KUBERNETES_VERSION_INVALID' },
  { args: ['config', 'set', 'kubernetes-version', 'v9'], id: 'KUBERNETES_VERSION_INVALID' },
  { args: ['config', 'set', 'kubernetes-version', 'v1.30.0'], id: 'KUBERNETES_VERSION_UNSUPPORTED' },
  { args: ['config', 'set', 'containerd-release-url', 'mirror.internal/containerd'], id: 'CONFIG_INVALID_VALUE' },
  { args: ['config', 'set', 'driver', 'docker'], id: 'DRIVER_UNKNOWN' },
  { args: ['config', 'set', 'memroy', '4g'], id: 'CONFIG_UNKNOWN_KEY' },
  { args: ['config', 'set', '-p', 'dev', 'profile', 'x'], id: 'USAGE_INVALID_ARGUMENT' },
  { args: ['config', 'unset', 'nonsense'], id: 'CONFIG_UNKNOWN_KEY' },
  { args: ['config', 'view', '-o', 'yaml'], id: 'OUTPUT_FORMAT_INVALID' },
  { args: ['config', 'view'], id: 'CONFIG_INVALID_VALUE', env: { DEVCLUSTER_MEMORY: 'lots' } },
  { args: ['config', 'view'], id: 'PROFILE_INVALID_NAME', env: { DEVCLUSTER_PROFILE: 'NOPE' } },
  { args: ['profile', 'list', '-o', 'xml'], id: 'OUTPUT_FORMAT_INVALID' },
  { args: ['completion', 'tcsh'], id: 'USAGE_INVALID_ARGUMENT' },
  { args: ['frobnicate'], id: 'USAGE_UNKNOWN_COMMAND' },
  { args: ['start', '--no-kubernetes', '--cpus', 'abc'], id: 'CONFIG_INVALID_VALUE' },
  { args: ['start', '--no-kubernetes', '-p', 'fresh', '--memory', '64g'], id: 'HOST_MEMORY_TOO_LOW' },
  { args: ['start', '--no-kubernetes', '--driver', 'docker'], id: 'DRIVER_UNKNOWN' },
  { args: ['start', '--offline'], id: 'KUBE_DOWNLOAD_OFFLINE' },
  { args: ['start', '--kubernetes-version', 'v1.30.0'], id: 'KUBERNETES_VERSION_UNSUPPORTED' },
  { args: ['stop', '--timeout', 'soon'], id: 'USAGE_INVALID_ARGUMENT' },
  { args: ['stop', '-p', 'nope'], id: 'PROFILE_NOT_FOUND' },
  { args: ['delete', '-p', 'nope'], id: 'PROFILE_NOT_FOUND' },
  { args: ['delete', '--purge'], id: 'USAGE_INVALID_ARGUMENT' },
  { args: ['logs', '-n', 'many'], id: 'USAGE_INVALID_ARGUMENT' },
  { args: ['config', 'set', 'memory'], id: 'USAGE_INVALID_ARGUMENT' },
  { args: ['config', 'set', '--bogus-flag', 'memory', '4g'], id: 'USAGE_INVALID_ARGUMENT' },
];

for (const c of INVALID) {
  test(`rejects: devcluster ${c.args.join(' ')}${c.env === undefined ? '' : ` with ${JSON.stringify(c.env)}`}`, async () => {
    const before = await snapshotTree(home);
    const r = await runCli(c.args, { home, env: { ...ENV, ...c.env } });
    assert.notEqual(r.code, 0, 'exit code must be non-zero');
    assert.match(r.stdout + r.stderr, new RegExp(c.id), `output names ${c.id}`);
    assert.doesNotMatch(r.stderr, /\n\s+at /, 'no stack trace without -v');
    assert.deepEqual(await snapshotTree(home), before, '$DEVCLUSTER_HOME must be unchanged');
  });
}

test('usage errors exit 2, host limits exit in the 20s', async () => {
  assert.equal((await runCli(['config', 'set', 'memory', 'abc'], { home, env: ENV })).code, 2);
  assert.equal((await runCli(['config', 'set', 'memory', '64g'], { home, env: ENV })).code, 23);
});

test('a corrupt config file is reported with its path and left as it was', async () => {
  const h = await tempDir();
  await writeFile(join(h, 'config.json'), '{ "memory": 4096,, }');
  const before = await snapshotTree(h);
  const r = await runCli(['config', 'set', 'cpus', '2'], { home: h, env: ENV });
  assert.equal(r.code, 18);
  assert.match(r.stderr, /CONFIG_FILE_CORRUPT/);
  assert.match(r.stderr, new RegExp(join(h, 'config.json').replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')));
  assert.deepEqual(await snapshotTree(h), before);
});

test('valid settings are saved where asked and resolved with precedence flags > env > profile > global > default', async () => {
  const h = await tempDir();
  assert.equal((await runCli(['config', 'set', 'memory', '6g'], { home: h, env: ENV })).code, 0);
  assert.equal((await runCli(['config', 'set', '-p', 'dev', 'memory', '8g'], { home: h, env: ENV })).code, 0);
  const get = async (args: string[], env: Record<string, string> = {}) => JSON.parse((await runCli(['config', 'get', ...args, '-o', 'json'], { home: h, env: { ...ENV, ...env } })).stdout) as { profile: string; value: unknown; source: string };
  assert.deepEqual(await get(['memory']), { profile: 'devcluster', key: 'memory', value: 6144, source: 'global', origin: join(h, 'config.json') });
  assert.equal((await get(['-p', 'dev', 'memory'])).value, 8192);
  assert.equal((await get(['-p', 'dev', 'memory'])).source, 'profile');
  assert.equal((await get(['-p', 'dev', 'memory'], { DEVCLUSTER_MEMORY: '2g' })).value, 2048);
  assert.equal((await get(['-p', 'dev', 'memory'], { DEVCLUSTER_MEMORY: '2g' })).source, 'env');
  assert.equal((await get(['cpus'])).source, 'default');
  assert.equal((await runCli(['config', 'unset', '-p', 'dev', 'memory'], { home: h, env: ENV })).code, 0);
  assert.equal((await get(['-p', 'dev', 'memory'])).value, 6144);
  // The active profile follows the global `profile` setting, then DEVCLUSTER_PROFILE.
  assert.equal((await runCli(['config', 'set', 'profile', 'dev'], { home: h, env: ENV })).code, 0);
  assert.equal((await get(['memory'])).profile, 'dev');
  assert.equal((await get(['memory'], { DEVCLUSTER_PROFILE: 'other' })).profile, 'other');
});

test('delete --all --purge removes what devcluster keeps and nothing else in a shared home', async () => {
  const h = await tempDir();
  await writeFile(join(h, 'notes.txt'), 'mine\n');
  assert.equal((await runCli(['config', 'set', '-p', 'dev', 'cpus', '2'], { home: h, env: ENV })).code, 0);
  assert.equal((await runCli(['config', 'set', 'memory', '2g'], { home: h, env: ENV })).code, 0);
  const r = await runCli(['delete', '--all', '--purge'], { home: h, env: ENV });
  assert.equal(r.code, 0, r.stderr);
  const left = await snapshotTree(h);
  assert.deepEqual(Object.keys(left).sort(), ['.', '/notes.txt']);
});
