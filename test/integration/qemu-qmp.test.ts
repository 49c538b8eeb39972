import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { findQemu } from '../../drivers/qemu/binaries.ts';
import { launchQemu, ourQemuPid, waitForExit } from '../../drivers/qemu/process.ts';
import { connectQmp, qmpAddressArg, QmpCommandError } from '../../drivers/qemu/qmp.ts';
import { run } from '../../src/host/exec.ts';
import { skipUnlessPresent } from '../helpers/prerequisite.ts';

const qemu = await findQemu();
const MISSING = skipUnlessPresent(qemu === undefined ? 'qemu-system-x86_64 is not installed (apt-get install qemu-system-x86)' : false);

test('a real QEMU: launched detached, proved ours, answers each command by id, and quits', { skip: MISSING }, async (t) => {
  if (qemu === undefined) return;
  const dir = await mkdtemp(join(tmpdir(), 'devcluster-qmp-real-'));
  const pidFile = join(dir, 'qemu.pid');
  const qmp = { path: join(dir, 'qmp.sock') };
  t.after(() => rm(dir, { recursive: true, force: true }));
  const args = ['-machine', 'none', '-nodefaults', '-display', 'none', '-accel', 'tcg', '-qmp', qmpAddressArg(qmp), '-pidfile', pidFile];
  const pid = await launchQemu({ binary: qemu.system, args, logFile: join(dir, 'qemu.log'), pidFile, qmp, signal: AbortSignal.timeout(60_000), profileDir: dir });
  t.after(async () => {
    if ((await ourQemuPid(pidFile, dir)) === pid) process.kill(pid, 'SIGKILL');
  });
  assert.equal(await ourQemuPid(pidFile, dir), pid);
  assert.equal(await ourQemuPid(pidFile, join(dir, 'other-profile')), undefined, 'a QEMU of another profile is not ours');

  const client = await connectQmp(qmp, 10_000);
  try {
    const version = (await run(qemu.system, ['--version'], { parse: true })).stdout;
    assert.ok(client.version !== undefined && version.includes(`version ${client.version.slice(0, 2).join('.')}`), `${String(client.version)} vs ${version}`);
    const [status, name, missing, ver] = await Promise.allSettled([
      client.execute<{ status: string; running: boolean }>('query-status'),
      client.execute<Record<string, unknown>>('query-name'),
      client.execute('devcluster-no-such-command'),
      client.execute<{ qemu: { major: number } }>('query-version'),
    ]);
    assert.ok(status.status === 'fulfilled' && typeof status.value.status === 'string' && typeof status.value.running === 'boolean');
    assert.ok(name.status === 'fulfilled' && typeof name.value === 'object');
    assert.ok(missing.status === 'rejected' && missing.reason instanceof QmpCommandError && missing.reason.errorClass === 'CommandNotFound');
    assert.ok(ver.status === 'fulfilled' && ver.value.qemu.major === client.version?.[0]);
    await client.execute('quit').catch(() => undefined); // QEMU may close before its reply is read
  } finally {
    client.close();
  }
  assert.equal(await waitForExit(pid, 30_000), true);
  assert.equal(await ourQemuPid(pidFile, dir), undefined);
});
