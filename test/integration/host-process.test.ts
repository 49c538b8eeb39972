import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { processAlive, processCommandLine, procStat, provedOurs } from '../../src/host/process.ts';

const NODE = /^node$/;

/** A real process whose command line names a pid file and a directory, like QEMU's. */
async function startMarked(t: { after(fn: () => unknown): void }) {
  const dir = await mkdtemp(join(tmpdir(), 'devcluster-proc-'));
  const pidFile = join(dir, 'marker.pid');
  // node ignores its extra arguments (GNU sleep would reject the path as an interval).
  const child = spawn(process.execPath, ['-e', 'setInterval(()=>{},1e6)', pidFile], { stdio: 'ignore' });
  const pid = child.pid;
  if (pid === undefined) throw new Error('sleep did not start');
  const exited = new Promise<void>((resolve) => child.on('exit', () => resolve()));
  await writeFile(pidFile, `${pid}\n`);
  t.after(async () => {
    child.kill('SIGKILL');
    await exited;
    await rm(dir, { recursive: true, force: true });
  });
  return { dir, pidFile, pid, child, exited };
}

test('a live process whose command line names the pid file and directory is proved ours', async (t) => {
  const p = await startMarked(t);
  const proof = await provedOurs({ pidFile: p.pidFile, program: NODE, mustInclude: [p.pidFile, p.dir] });
  assert.deepEqual(proof, { ours: true, pid: p.pid, argv: [process.execPath, '-e', 'setInterval(()=>{},1e6)', p.pidFile] });
});

test('the same pid is refused when the program or the command line differs', async (t) => {
  const p = await startMarked(t);
  const otherProgram = await provedOurs({ pidFile: p.pidFile, program: /^qemu-system-\w+$/, mustInclude: [p.pidFile] });
  assert.equal(otherProgram.ours, false);
  assert.match(otherProgram.ours ? '' : otherProgram.reason, /is node, not/);
  const otherProfile = await provedOurs({ pidFile: p.pidFile, program: NODE, mustInclude: [p.pidFile, join(p.dir, 'elsewhere')] });
  assert.equal(otherProfile.ours, false);
  assert.match(otherProfile.ours ? '' : otherProfile.reason, /does not name .*elsewhere/);
  const prefixOnly = await provedOurs({ pidFile: p.pidFile, program: NODE, mustInclude: [p.dir.slice(0, -1)] });
  assert.equal(prefixOnly.ours, false);
});

test('a dead pid is refused, and so is a pid file without a pid', async (t) => {
  const p = await startMarked(t);
  p.child.kill('SIGKILL');
  await p.exited;
  assert.equal(processAlive(p.pid), false);
  const dead = await provedOurs({ pidFile: p.pidFile, program: NODE, mustInclude: [p.pidFile] });
  assert.deepEqual(dead, { ours: false, pid: p.pid, reason: `process ${p.pid} is not running` });
  await writeFile(p.pidFile, 'not a pid\n');
  const garbage = await provedOurs({ pidFile: p.pidFile, program: NODE, mustInclude: [p.pidFile] });
  assert.equal(garbage.ours, false);
  assert.match(garbage.ours ? '' : garbage.reason, /holds no pid/);
  const missing = await provedOurs({ pidFile: join(p.dir, 'absent.pid'), program: NODE, mustInclude: [] });
  assert.equal(missing.ours, false);
});

test('the ps query used on macOS reads the same command line from the real ps', async (t) => {
  const p = await startMarked(t);
  assert.deepEqual(await processCommandLine(p.pid, { platform: 'darwin' }), [process.execPath, '-e', 'setInterval(()=>{},1e6)', p.pidFile]);
  assert.deepEqual(await processCommandLine(p.pid, { platform: 'linux' }), [process.execPath, '-e', 'setInterval(()=>{},1e6)', p.pidFile]);
  const stat = procStat(p.pid);
  assert.ok(stat !== undefined && /^\d+$/.test(stat.startTime) && stat.state !== 'Z');
});
