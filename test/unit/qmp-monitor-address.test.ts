import { test } from 'node:test';
import assert from 'node:assert/strict';
import { chmod, mkdir, mkdtemp, readdir, readFile, rm, stat, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { monitorAddress, prepareMonitorAddress } from '../../drivers/qemu/monitor-address.ts';
import { qmpAddressArg } from '../../drivers/qemu/qmp.ts';
import { isDevclusterError } from '../../src/ui/errors.ts';

/** A path of exactly `bytes` bytes under `root`. */
function pathOf(root: string, bytes: number): string {
  return root + '/' + 'p'.repeat(bytes - root.length - 1);
}

test('a short profile directory holds its own socket', () => {
  assert.deepEqual(monitorAddress('/home/a/.devcluster/profiles/dev', '/home/a/.devcluster', 'linux'), { path: '/home/a/.devcluster/profiles/dev/qmp.sock' });
  assert.equal(qmpAddressArg({ path: '/h/p/qmp.sock' }), 'unix:/h/p/qmp.sock,server=on,wait=off');
});

test('sun_path is 108 bytes on Linux and 104 on macOS, the NUL included', () => {
  const profile = pathOf('/h', 107 - '/qmp.sock'.length); // socket path of exactly 107 bytes
  assert.equal(Buffer.byteLength(join(profile, 'qmp.sock')), 107);
  assert.deepEqual(monitorAddress(profile, '/h', 'linux'), { path: join(profile, 'qmp.sock') });
  const onMac = monitorAddress(profile, '/h', 'darwin');
  assert.match(onMac.path, /^\/h\/run\/[0-9a-f]{16}\.sock$/);
  assert.equal(onMac.privateDir, '/h/run');
  const longer = pathOf('/h', 108 - '/qmp.sock'.length);
  assert.equal(monitorAddress(longer, '/h', 'linux').privateDir, '/h/run');
});

test('the fallback socket is private to the home and differs per profile, never in /tmp', () => {
  const home = '/home/someone/.devcluster';
  const a = monitorAddress(pathOf(`${home}/profiles`, 150), home, 'linux');
  const b = monitorAddress(pathOf(`${home}/profiles`, 151), home, 'linux');
  assert.notEqual(a.path, b.path);
  for (const x of [a, b]) {
    assert.ok(x.path.startsWith(`${home}/run/`));
    assert.ok(!x.path.startsWith('/tmp'));
  }
  assert.deepEqual(monitorAddress(pathOf(`${home}/profiles`, 150), home, 'linux'), a, 'stable across calls');
});

test('a home too long even for <home>/run fails with an ID that asks for a shorter DEVCLUSTER_HOME', () => {
  const home = pathOf('/h', 90);
  assert.throws(
    () => monitorAddress(`${home}/profiles/dev`, home, 'linux'),
    (e: unknown) => isDevclusterError(e) && e.id === 'QEMU_MONITOR_PATH_TOO_LONG' && e.exitCode === 2 && /DEVCLUSTER_HOME/.test(e.advice ?? '') && /at most 107/.test(e.message),
  );
  // The same home fits on Linux with 4 bytes less but not on macOS.
  const edge = pathOf('/h', 107 - 26);
  const profile = `${edge}/profiles/${'x'.repeat(30)}`;
  assert.equal(monitorAddress(profile, edge, 'linux').privateDir, `${edge}/run`);
  assert.throws(() => monitorAddress(profile, edge, 'darwin'), (e: unknown) => isDevclusterError(e) && e.id === 'QEMU_MONITOR_PATH_TOO_LONG');
});

test('Windows: an AF_UNIX socket in the profile directory, never a TCP port', () => {
  const short = monitorAddress('C:\\Users\\ann\\.devcluster\\profiles\\dev', 'C:\\Users\\ann\\.devcluster', 'win32');
  assert.deepEqual(short, { path: 'C:\\Users\\ann\\.devcluster\\profiles\\dev\\qmp.sock' });
  assert.equal(qmpAddressArg(short), 'unix:C:\\Users\\ann\\.devcluster\\profiles\\dev\\qmp.sock,server=on,wait=off');
  const home = 'C:\\Users\\' + 'n'.repeat(60) + '\\.devcluster';
  const long = monitorAddress(`${home}\\profiles\\${'x'.repeat(20)}`, home, 'win32');
  assert.match(long.path, /^C:\\Users\\n+\\\.devcluster\\run\\[0-9a-f]{16}\.sock$/);
  assert.ok(!('port' in long));
  // Non-ASCII names count in UTF-8 bytes.
  const wide = 'C:\\Users\\' + 'é'.repeat(50);
  assert.throws(() => monitorAddress(`${wide}\\profiles\\dev`, wide, 'win32'), (e: unknown) => isDevclusterError(e) && e.id === 'QEMU_MONITOR_PATH_TOO_LONG');
});

test('the private socket directory is created 0700, tightened if loose, refused if not a directory', async (t) => {
  const home = await mkdtemp(join(tmpdir(), 'devcluster-mon-'));
  t.after(() => rm(home, { recursive: true, force: true }));
  const runDir = join(home, 'run');
  await prepareMonitorAddress({ path: join(runDir, 'x.sock'), privateDir: runDir }, 'linux');
  assert.equal((await stat(runDir)).mode & 0o777, 0o700);
  await chmod(runDir, 0o755);
  await prepareMonitorAddress({ path: join(runDir, 'x.sock'), privateDir: runDir }, 'linux');
  assert.equal((await stat(runDir)).mode & 0o777, 0o700);
  await prepareMonitorAddress({ path: join(home, 'qmp.sock') }, 'linux'); // nothing to create
  assert.deepEqual(await readdir(home), ['run'], 'a socket in the profile directory needs no directory of its own');

  const other = join(home, 'elsewhere');
  await mkdir(other);
  const linked = join(home, 'linked');
  await symlink(other, join(linked));
  await assert.rejects(prepareMonitorAddress({ path: join(linked, 'x.sock'), privateDir: linked }, 'linux'), (e: unknown) => isDevclusterError(e) && e.id === 'QEMU_MONITOR_DIR_UNSAFE');
  const file = join(home, 'file');
  await writeFile(file, 'not a directory');
  await assert.rejects(prepareMonitorAddress({ path: join(file, 'x.sock'), privateDir: file }, 'linux'));
  assert.equal(await readFile(file, 'utf8'), 'not a directory', 'the file in the way is left alone');
});
