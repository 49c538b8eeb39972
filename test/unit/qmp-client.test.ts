import { test } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { createServer } from 'node:net';
import type { Server, Socket } from 'node:net';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connectQmp, QmpCommandError } from '../../drivers/qemu/qmp.ts';
import { isDevclusterError } from '../../src/ui/errors.ts';

interface Received {
  execute: string;
  id?: unknown;
  arguments?: unknown;
}

/**
 * A QMP server on a real unix socket that speaks the protocol's framing
 * (greeting, one JSON object per line) and lets each test decide when and
 * what to answer.
 */
async function fakeQmp(t: { after(fn: () => unknown): void }, answer: (cmd: Received, send: (msg: unknown) => void, conn: Socket) => void) {
  const dir = await mkdtemp(join(tmpdir(), 'devcluster-qmp-'));
  const path = join(dir, 'qmp.sock');
  const received: Received[] = [];
  const server: Server = createServer((conn) => {
    conn.setEncoding('utf8');
    const send = (msg: unknown) => conn.write(`${JSON.stringify(msg)}\r\n`);
    send({ QMP: { version: { qemu: { major: 9, minor: 1, micro: 2 }, package: '' }, capabilities: ['oob'] } });
    let buffer = '';
    conn.on('data', (chunk: string) => {
      buffer += chunk;
      let nl: number;
      while ((nl = buffer.indexOf('\n')) >= 0) {
        const cmd = JSON.parse(buffer.slice(0, nl)) as Received;
        buffer = buffer.slice(nl + 1);
        received.push(cmd);
        if (cmd.execute === 'qmp_capabilities') send({ return: {}, id: cmd.id });
        else answer(cmd, send, conn);
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(path, resolve));
  t.after(async () => {
    await new Promise((resolve) => server.close(resolve));
    await rm(dir, { recursive: true, force: true });
  });
  return { path, received, server };
}

test('a reply that arrives after its command timed out is dropped; the next command gets its own reply', async (t) => {
  let heldId: unknown;
  const qmp = await fakeQmp(t, (cmd, send) => {
    if (cmd.execute === 'query-slow') {
      heldId = cmd.id; // answered only later, after the client gave up
      return;
    }
    if (cmd.execute === 'query-status') {
      send({ return: { status: 'stale', running: false }, id: heldId });
      send({ event: 'RESUME', data: {}, timestamp: { seconds: 1, microseconds: 0 } });
      send({ return: { status: 'running', running: true }, id: cmd.id });
    }
  });
  const client = await connectQmp({ path: qmp.path }, 2000);
  try {
    assert.deepEqual(client.version, [9, 1, 2]);
    await assert.rejects(client.execute('query-slow', undefined, { timeoutMs: 50 }), (e: unknown) => isDevclusterError(e) && e.id === 'QEMU_MONITOR_UNREACHABLE' && /did not answer query-slow/.test(e.message));
    assert.deepEqual(await client.execute('query-status'), { status: 'running', running: true });
    assert.deepEqual(client.events().map((e) => e.event), ['RESUME']);
    const ids = qmp.received.map((c) => c.id);
    assert.equal(new Set(ids).size, ids.length, 'every command carries its own id');
    assert.ok(ids.every((id) => typeof id === 'string' && id !== ''));
  } finally {
    client.close();
  }
});

test('replies answered out of order reach the commands that asked; errors carry QEMU\'s class', async (t) => {
  const held: Received[] = [];
  const qmp = await fakeQmp(t, (cmd, send) => {
    held.push(cmd);
    if (held.length < 3) return;
    for (const c of held.reverse()) {
      if (c.execute === 'no-such-command') send({ error: { class: 'CommandNotFound', desc: "The command no-such-command has not been found" }, id: c.id });
      else send({ return: { name: c.execute, args: c.arguments ?? null }, id: c.id });
    }
  });
  const client = await connectQmp({ path: qmp.path }, 2000);
  try {
    const [a, b, c] = await Promise.allSettled([
      client.execute('query-name'),
      client.execute('no-such-command'),
      client.execute('human-monitor-command', { 'command-line': 'info version' }),
    ]);
    assert.deepEqual(a, { status: 'fulfilled', value: { name: 'query-name', args: null } });
    assert.equal(b.status, 'rejected');
    assert.ok(b.status === 'rejected' && b.reason instanceof QmpCommandError && b.reason.errorClass === 'CommandNotFound');
    assert.deepEqual(c, { status: 'fulfilled', value: { name: 'human-monitor-command', args: { 'command-line': 'info version' } } });
  } finally {
    client.close();
  }
});

test('a reply without an id or with an unknown id is never taken by a waiting command', async (t) => {
  const qmp = await fakeQmp(t, (cmd, send) => {
    if (cmd.execute === 'query-status') {
      send({ return: { wrong: 1 } });
      send({ return: { wrong: 2 }, id: 'someone-else' });
      send({ error: { class: 'GenericError', desc: 'JSON parse error' } });
      send({ return: { right: true }, id: cmd.id });
    }
  });
  const client = await connectQmp({ path: qmp.path }, 2000);
  try {
    assert.deepEqual(await client.execute('query-status'), { right: true });
  } finally {
    client.close();
  }
});

test('when the connection closes, every pending command fails at once and later ones are refused', async (t) => {
  let commands = 0;
  const qmp = await fakeQmp(t, (cmd, _send, conn) => {
    commands++;
    if (commands === 2) conn.destroy(); // two commands pending, then the monitor goes away
  });
  const client = await connectQmp({ path: qmp.path }, 60_000);
  const results = await Promise.allSettled([client.execute('query-a'), client.execute('query-b')]);
  for (const r of results) {
    assert.equal(r.status, 'rejected');
    assert.ok(r.status === 'rejected' && isDevclusterError(r.reason) && r.reason.id === 'QEMU_MONITOR_UNREACHABLE' && /closed/.test(r.reason.message));
  }
  await assert.rejects(client.execute('query-c'), /closed/);
  assert.deepEqual(qmp.received.map((c) => c.execute), ['qmp_capabilities', 'query-a', 'query-b']);
});

test('a monitor that never greets fails with QEMU_MONITOR_UNREACHABLE and the socket is closed', { timeout: 30_000 }, async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'devcluster-qmp-'));
  const path = join(dir, 'silent.sock');
  const sockets: Socket[] = [];
  const server = createServer((conn) => sockets.push(conn));
  await new Promise<void>((resolve) => server.listen(path, resolve));
  t.after(async () => {
    for (const s of sockets) s.destroy();
    await new Promise((resolve) => server.close(resolve));
    await rm(dir, { recursive: true, force: true });
  });
  await assert.rejects(connectQmp({ path }, 50), (e: unknown) => isDevclusterError(e) && e.id === 'QEMU_MONITOR_UNREACHABLE' && /did not greet/.test(e.message));
  assert.equal(sockets.length, 1, 'the client connected once');
  const socket = sockets[0] as Socket;
  // The client's end closing reaches the server as end of stream; a socket left open never ends and the test times out.
  if (!socket.readableEnded) await once(socket.resume(), 'end');
  assert.equal(socket.readableEnded, true);
});

test('on Windows an AF_UNIX path is refused with a clear error instead of being opened as a named pipe', async () => {
  await assert.rejects(connectQmp({ path: 'C:\\Users\\a\\.devcluster\\profiles\\dev\\qmp.sock' }, 50, 'win32'), (e: unknown) => isDevclusterError(e) && e.id === 'QEMU_MONITOR_UNREACHABLE' && /AF_UNIX/.test(e.message));
});
