import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { chmod, mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { CLI, REPO, childResult, runCli, snapshotTree, tempDir } from '../helpers/cli.ts';
import type { CliResult } from '../helpers/cli.ts';
import { skipUnlessPresent } from '../helpers/prerequisite.ts';

/**
 * What devcluster says about a home it cannot use, and about files it cannot
 * read: each condition its own error ID naming the path, nothing changed.
 */

const ENV = { DEVCLUSTER_HOST_CPUS: '4', DEVCLUSTER_HOST_MEMORY_MIB: '16384' };

function escape(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');
}

test('DEVCLUSTER_HOME pointing at a file: HOME_NOT_A_DIRECTORY for every command that uses the home, nothing changed', async () => {
  const dir = await tempDir();
  const file = join(dir, 'not-a-dir');
  await writeFile(file, 'someone else\'s file\n');
  const before = await snapshotTree(dir);
  const commands = [
    ['config', 'view'],
    ['config', 'get', 'memory'],
    ['config', 'set', 'cpus', '2'],
    ['config', 'unset', 'cpus'],
    ['profile', 'list'],
    ['start', '--no-kubernetes'],
    ['stop'],
    ['delete'],
    ['status'],
    ['image', 'list'],
    ['doctor'],
  ];
  for (const home of [file, join(file, 'sub')]) {
    for (const args of commands) {
      const label = `DEVCLUSTER_HOME=${home} devcluster ${args.join(' ')}`;
      const r = await runCli(args, { home, env: ENV });
      assert.equal(r.code, 13, `${label}: exit ${r.code}\n${r.stderr}`);
      assert.match(r.stderr, /HOME_NOT_A_DIRECTORY/, label);
      assert.match(r.stderr, new RegExp(`${escape(file)}[^\\n]* is a file, not a directory; accepted: a directory`), label);
      assert.doesNotMatch(r.stderr, /CONFIG_FILE_CORRUPT|config\.json|INTERNAL_ERROR|\n\s+at /, label);
    }
    const json = await runCli(['config', 'view', '-o', 'json'], { home, env: ENV });
    const doc = JSON.parse(json.stdout) as { error: { id: string; exitCode: number; details: { file: string } } };
    assert.equal(doc.error.id, 'HOME_NOT_A_DIRECTORY');
    assert.equal(doc.error.exitCode, 13);
    assert.equal(doc.error.details.file, file);
  }
  assert.deepEqual(await snapshotTree(dir), before, 'the file and its directory are unchanged');
  // Commands that never touch the home still work.
  assert.equal((await runCli(['version'], { home: file })).code, 0);
  assert.equal((await runCli(['completion', 'bash'], { home: file })).code, 0);
});

test('a state.json that is not a file: profile list says Unreadable state; config view says why; both exit 0', async () => {
  const home = await tempDir();
  await mkdir(join(home, 'profiles', 'odd', 'state.json'), { recursive: true });
  const list = await runCli(['profile', 'list', '-o', 'json'], { home, env: ENV });
  assert.equal(list.code, 0, list.stderr);
  const row = (JSON.parse(list.stdout) as { profiles: Array<{ name: string; status: string; problem?: string }> }).profiles.find((p) => p.name === 'odd');
  assert.equal(row?.status, 'Unreadable state');
  assert.match(row?.problem ?? '', /state\.json: it is a directory \(EISDIR\)/);
  const view = await runCli(['config', 'view', '-p', 'odd'], { home, env: ENV });
  assert.equal(view.code, 0, view.stderr);
  assert.match(view.stdout, /Existing cluster odd: Unreadable state: cannot read .*state\.json: it is a directory \(EISDIR\)/);
});

test('a config.json that is not a file: FILE_UNREADABLE with the path and errno, not CONFIG_FILE_CORRUPT', async () => {
  const home = await tempDir();
  await mkdir(join(home, 'config.json'));
  const before = await snapshotTree(home);
  const r = await runCli(['config', 'set', 'cpus', '2'], { home, env: ENV });
  assert.equal(r.code, 27, r.stderr);
  assert.match(r.stderr, new RegExp(`FILE_UNREADABLE: cannot read ${escape(join(home, 'config.json'))}: it is a directory \\(EISDIR\\)`));
  assert.doesNotMatch(r.stderr, /CONFIG_FILE_CORRUPT|not valid JSON/);
  const after = await snapshotTree(home);
  delete after['/logs'];
  for (const k of Object.keys(after)) if (k.startsWith('/logs/')) delete after[k];
  assert.deepEqual(after, before, 'nothing but the run log is written');
});

/**
 * Permission checks need a user the files do not belong to: uid 65534 via
 * setpriv when the tests run as root (root reads anything), the current user
 * otherwise (then mode 000 keeps its own files from it).
 */
function unprivilegedPrefix(): string[] | string {
  if (process.getuid?.() !== 0) return [];
  const probe = spawnSync('setpriv', ['--reuid=65534', '--regid=65534', '--clear-groups', process.execPath, '-e', 'process.exit(process.getuid() === 65534 ? 0 : 1)']);
  if (probe.error !== undefined || probe.status !== 0) return 'setpriv cannot run node as uid 65534 (util-linux setpriv, and a node binary uid 65534 can execute)';
  return ['setpriv', '--reuid=65534', '--regid=65534', '--clear-groups'];
}

const PREFIX = unprivilegedPrefix();
const permissionSkip = skipUnlessPresent(typeof PREFIX === 'string' ? PREFIX : false);

function runUnprivileged(args: readonly string[], home: string): Promise<CliResult> {
  const prefix = PREFIX as string[];
  const argv = [...prefix, process.execPath, CLI, ...args];
  return childResult(spawn(argv[0] as string, argv.slice(1), {
    env: { ...process.env, ...ENV, NO_COLOR: '1', DEVCLUSTER_HOME: home, HOME: home },
    cwd: REPO,
    stdio: ['ignore', 'pipe', 'pipe'],
  }));
}

/** A home the unprivileged user can enter, holding files it cannot read. */
async function homeWithLockedFiles(): Promise<string> {
  const home = await tempDir();
  await writeFile(join(home, 'config.json'), '{\n  "cpus": 1\n}\n');
  await mkdir(join(home, 'profiles', 'mine'), { recursive: true });
  await writeFile(join(home, 'profiles', 'mine', 'state.json'), '{"schemaVersion":1,"profile":"mine","driver":"qemu","status":"Stopped","resources":[],"driverData":{}}\n');
  for (const dir of [home, join(home, 'profiles'), join(home, 'profiles', 'mine')]) await chmod(dir, 0o755);
  return home;
}

test('permission denied on config.json: FILE_UNREADABLE naming the file and EACCES, not invalid JSON', { skip: permissionSkip }, async () => {
  const home = await homeWithLockedFiles();
  await chmod(join(home, 'config.json'), 0o000);
  const before = await snapshotTree(home);
  for (const args of [['config', 'view'], ['config', 'set', 'memory', '2g'], ['profile', 'list']]) {
    const r = await runUnprivileged(args, home);
    assert.equal(r.code, 27, `${args.join(' ')}: exit ${r.code}\n${r.stderr}`);
    assert.match(r.stderr, new RegExp(`FILE_UNREADABLE: cannot read ${escape(join(home, 'config.json'))}: permission denied \\(EACCES\\)`), args.join(' '));
    assert.doesNotMatch(r.stderr, /CONFIG_FILE_CORRUPT|not valid JSON|INTERNAL_ERROR/);
  }
  assert.deepEqual(await snapshotTree(home), before);
});

test('permission denied on a state.json: profile list shows it as Unreadable state and still lists the rest', { skip: permissionSkip }, async () => {
  const home = await homeWithLockedFiles();
  await mkdir(join(home, 'profiles', 'other'));
  await chmod(join(home, 'profiles', 'other'), 0o755);
  await chmod(join(home, 'profiles', 'mine', 'state.json'), 0o000);
  const r = await runUnprivileged(['profile', 'list', '-o', 'json'], home);
  assert.equal(r.code, 0, r.stderr);
  const rows = (JSON.parse(r.stdout) as { profiles: Array<{ name: string; status: string; problem?: string }> }).profiles;
  assert.deepEqual(rows.map((p) => [p.name, p.status]), [['mine', 'Unreadable state'], ['other', 'Not created']]);
  assert.match(rows[0]?.problem ?? '', /state\.json: permission denied \(EACCES\)/);
});

test('a home the user cannot write: HOST_PERMISSION_DENIED naming the path, nothing changed', { skip: permissionSkip }, async () => {
  const home = await homeWithLockedFiles();
  await chmod(home, 0o555);
  const before = await snapshotTree(home);
  const r = await runUnprivileged(['config', 'set', 'memory', '2g'], home);
  assert.equal(r.code, 27, r.stderr);
  assert.match(r.stderr, new RegExp(`HOST_PERMISSION_DENIED: .*${escape(home)}[^\\n]*: permission denied \\(EACCES\\)`));
  assert.match(r.stderr, /DEVCLUSTER_HOME/);
  assert.doesNotMatch(r.stderr, /INTERNAL_ERROR|\n\s+at /);
  // Reading still works on a read-only home.
  assert.equal((await runUnprivileged(['config', 'get', 'cpus'], home)).stdout.trim(), '1');
  assert.deepEqual(await snapshotTree(home), before);
});

test('a home the user cannot reach: HOST_PERMISSION_DENIED at once, naming the directory in the way', { skip: permissionSkip }, async () => {
  const outer = await tempDir();
  await chmod(outer, 0o755);
  const locked = join(outer, 'locked');
  await mkdir(locked, { mode: 0o000 });
  await chmod(locked, 0o000);
  const home = join(locked, 'home');
  const r = await runUnprivileged(['config', 'view'], home);
  assert.equal(r.code, 27, r.stderr);
  assert.match(r.stderr, new RegExp(`HOST_PERMISSION_DENIED: devcluster home ${escape(home)} \\(DEVCLUSTER_HOME=[^)]*\\) cannot be reached: permission denied \\(EACCES\\): ${escape(locked)} cannot be entered`));
});
