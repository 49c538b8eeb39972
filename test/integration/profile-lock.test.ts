import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { watch } from 'node:fs';
import { readFile, writeFile, mkdir } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { acquireProfileLock } from '../../src/profile/lock.ts';
import { profilePaths } from '../../src/profile/paths.ts';
import { runCli, snapshotTree, tempDir } from '../helpers/cli.ts';

const ENV = { DEVCLUSTER_HOST_CPUS: '4', DEVCLUSTER_HOST_MEMORY_MIB: '16384' };

test('a second process changing a locked profile fails fast with PROFILE_BUSY and changes nothing', async () => {
  const home = await tempDir();
  assert.equal((await runCli(['config', 'set', '-p', 'dev', 'cpus', '2'], { home, env: ENV })).code, 0);
  const paths = profilePaths(home, 'dev');
  const lock = await acquireProfileLock('dev', paths.lock, { command: 'start' });
  try {
    const before = await snapshotTree(home);
    const r = await runCli(['config', 'set', '-p', 'dev', 'cpus', '3'], { home, env: ENV });
    assert.equal(r.code, 11);
    assert.match(r.stderr, new RegExp(`PROFILE_BUSY: profile dev is busy \\(pid ${process.pid}, command start\\)`));
    const after = await snapshotTree(home);
    // Only the log of the failed run may appear; the profile's files are intact.
    for (const [path, entry] of Object.entries(before)) assert.equal(after[path], entry, path);
    assert.deepEqual(JSON.parse(await readFile(paths.config, 'utf8')), { cpus: 2 });
  } finally {
    await lock.release();
  }
});

/**
 * Resolves once another process has tried to take the lock `count` times:
 * every attempt writes its owner to `<lock>.<pid>.<random>.tmp` beside the
 * lock before linking it into place.
 */
function othersTryingLock(lockPath: string, count: number): { tried: Promise<void>; close(): void } {
  const prefix = `${basename(lockPath)}.`;
  const names = new Set<string>();
  const watcher = watch(dirname(lockPath));
  const tried = new Promise<void>((resolve) => {
    watcher.on('change', (_event, file) => {
      const name = String(file);
      if (!name.startsWith(prefix) || !name.endsWith('.tmp') || name.startsWith(`${prefix}${process.pid}.`)) return;
      names.add(name);
      if (names.size >= count) resolve();
    });
  });
  return { tried, close: () => watcher.close() };
}

test('--wait-lock waits for the holder and then succeeds', async () => {
  const home = await tempDir();
  const paths = profilePaths(home, 'dev');
  const lock = await acquireProfileLock('dev', paths.lock, { command: 'stop' });
  const attempts = othersTryingLock(paths.lock, 2);
  const pending = runCli(['config', 'set', '-p', 'dev', '--wait-lock', 'cpus', '3'], { home, env: ENV });
  // Two attempts by the child: it found the lock held and kept trying instead of failing or writing.
  const first = await Promise.race([attempts.tried.then(() => 'tried twice'), pending.then((r) => `exited ${r.code}: ${r.stderr}`)]);
  attempts.close();
  assert.equal(first, 'tried twice');
  await assert.rejects(readFile(paths.config), { code: 'ENOENT' }, 'nothing is written while the lock is held');
  await lock.release();
  const r = await pending;
  assert.equal(r.code, 0, r.stderr);
  assert.deepEqual(JSON.parse(await readFile(paths.config, 'utf8')), { cpus: 3 });
});

test('a lock left by a dead process is taken over', async () => {
  const home = await tempDir();
  const paths = profilePaths(home, 'dev');
  const dead = spawn(process.execPath, ['-e', '0']);
  const deadPid = await new Promise<number>((resolve) => dead.on('exit', () => resolve(dead.pid ?? 0)));
  await mkdir(paths.dir, { recursive: true });
  await writeFile(paths.lock, JSON.stringify({ pid: deadPid, command: 'start', hostname: (await import('node:os')).hostname(), startedAt: new Date().toISOString() }));
  const r = await runCli(['config', 'set', '-p', 'dev', 'cpus', '2'], { home, env: ENV });
  assert.equal(r.code, 0, r.stderr);
  await assert.rejects(readFile(paths.lock), { code: 'ENOENT' });
});

test('a lock whose pid was reused by another process is stale', async () => {
  const home = await tempDir();
  const paths = profilePaths(home, 'dev');
  await mkdir(paths.dir, { recursive: true });
  // Our own pid, but a start time that is not ours: the owner is gone and the pid reused.
  await writeFile(paths.lock, JSON.stringify({ pid: process.pid, command: 'start', hostname: (await import('node:os')).hostname(), startedAt: 'x', procStart: '1' }));
  const lock = await acquireProfileLock('dev', paths.lock, { command: 'test' });
  const owner = JSON.parse(await readFile(paths.lock, 'utf8')) as { command: string };
  assert.equal(owner.command, 'test', 'the stale lock was replaced by ours');
  await lock.release();
  await assert.rejects(readFile(paths.lock), { code: 'ENOENT' });
});

test('two processes hammering one profile: every write lands whole, and busy is reported, never corruption', async () => {
  const home = await tempDir();
  const paths = profilePaths(home, 'dev');
  const worker = (values: number[]) =>
    Promise.all(values.map((v) => runCli(['config', 'set', '-p', 'dev', '--wait-lock', 'cpus', String(v)], { home, env: ENV })));
  const results = (await Promise.all([worker([1, 2, 3]), worker([4, 1, 2])])).flat();
  for (const r of results) assert.equal(r.code, 0, r.stderr);
  const final = JSON.parse(await readFile(paths.config, 'utf8')) as { cpus: number };
  assert.ok([1, 2, 3, 4].includes(final.cpus));
  const fast = await Promise.all([1, 2, 3, 4].map((v) => runCli(['config', 'set', '-p', 'dev', 'cpus', String(v)], { home, env: ENV })));
  for (const r of fast) assert.ok(r.code === 0 || (r.code === 11 && /PROFILE_BUSY/.test(r.stderr)), r.stderr);
  JSON.parse(await readFile(paths.config, 'utf8'));
  await assert.rejects(readFile(paths.lock), { code: 'ENOENT' });
});

test('the lock file records who holds it', async () => {
  const home = await tempDir();
  const paths = profilePaths(home, 'x');
  const lock = await acquireProfileLock('x', paths.lock, { command: 'delete' });
  const owner = JSON.parse(await readFile(join(paths.dir, 'lock.json'), 'utf8')) as { pid: number; command: string };
  assert.equal(owner.pid, process.pid);
  assert.equal(owner.command, 'delete');
  await lock.release();
});
