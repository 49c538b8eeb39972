/**
 * The serial-port logger start runs for a Hyper-V VM: COM1 is a named pipe
 * Hyper-V serves; on Linux the same Node code connects to a Unix socket,
 * which stands in for the pipe here (net.connect takes either path).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { REPO } from '../helpers/cli.ts';

test('the serial logger appends what the VM writes, reconnects after a reboot, and exits once the port stays gone', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'hv-serial-'));
  try {
    const pipe = join(dir, 'com1.sock');
    const log = join(dir, 'serial.log');
    let boots = 0;
    const server = createServer((socket) => {
      boots++;
      socket.end(`boot ${boots}: Welcome to Photon\r\n`);
      // One connection per "boot": the second comes after the logger reconnects.
      if (boots === 2) server.close();
    });
    await new Promise<void>((resolve) => server.listen(pipe, resolve));
    const pidFile = join(dir, 'serial-logger.pid');
    const child = spawn(process.execPath, [join(REPO, 'drivers', 'hyperv', 'serial-logger.ts'), pipe, log, '400', pidFile], { stdio: 'ignore' });
    const code = await new Promise<number | null>((resolve) => child.on('exit', resolve));
    assert.equal(code, 0);
    assert.equal(readFileSync(log, 'utf8'), 'boot 1: Welcome to Photon\r\nboot 2: Welcome to Photon\r\n');
    assert.equal(readFileSync(pidFile, 'utf8'), `${child.pid}\n`, 'the pid file names the logger, so the next start does not run a second one');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
