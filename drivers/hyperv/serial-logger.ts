/**
 * The VM's serial console (COM1, a named pipe Hyper-V serves while the VM
 * runs) appended to the profile's serial log. Hyper-V keeps no log of the
 * port itself, so something must read the pipe for the life of the VM:
 * `start` runs this file detached with Node (`node serial-logger.ts <pipe>
 * <log>`). It connects (retrying while the VM boots), copies every byte, and
 * exits once the pipe has been gone for a minute (the VM is off).
 */
import { createWriteStream, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';

const GIVE_UP_MS = 60_000;

async function main(pipe: string, log: string, giveUpMs: number): Promise<void> {
  const out = createWriteStream(log, { flags: 'a', mode: 0o600 });
  let lastConnected = Date.now();
  while (Date.now() - lastConnected < giveUpMs) {
    const connected = await new Promise<boolean>((resolve) => {
      const socket = connect(pipe);
      let opened = false;
      socket.on('connect', () => {
        opened = true;
      });
      socket.on('data', (chunk) => out.write(chunk));
      socket.on('error', () => resolve(opened));
      socket.on('close', () => resolve(opened));
    });
    if (connected) lastConnected = Date.now();
    await sleep(Math.min(1000, giveUpMs / 4));
  }
  out.end();
}

const [pipe, log, giveUp, pidFile] = process.argv.slice(2);
if (pipe === undefined || log === undefined) {
  process.stderr.write('usage: serial-logger.ts <pipe> <log file> [give-up ms] [pid file]\n');
  process.exit(2);
}
// The pid file lets the next start see that a logger already reads this pipe (Hyper-V serves one client).
if (pidFile !== undefined) writeFileSync(pidFile, `${process.pid}\n`, { mode: 0o600 });
await main(pipe, log, giveUp === undefined ? GIVE_UP_MS : Number(giveUp));
