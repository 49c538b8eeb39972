import { connect } from 'node:net';
import type { Socket } from 'node:net';
import { DevclusterError } from '../../src/ui/errors.ts';
import { logLine } from '../../src/ui/context.ts';
import './errors.ts';

/**
 * A QMP client: one connection, capabilities negotiated, every command sent
 * with an `id` that QEMU echoes in its reply, so a reply reaches the command
 * that asked for it. A command that times out is forgotten: its late reply is
 * dropped instead of being taken by the next command.
 */
/** Always an AF_UNIX socket path: a TCP monitor would let any local user control the VM. */
export type QmpAddress = { path: string };

export interface QmpEvent {
  event: string;
  data?: unknown;
}

export interface QmpClient {
  /** QEMU's version from the greeting, e.g. [7, 2, 22]. */
  readonly version: readonly [number, number, number] | undefined;
  execute<T = unknown>(command: string, args?: Record<string, unknown>, options?: { timeoutMs?: number }): Promise<T>;
  /** Asynchronous events received so far (the most recent MAX_EVENTS). */
  events(): QmpEvent[];
  close(): void;
}

/** A QMP error reply: the command ran and QEMU refused it. */
export class QmpCommandError extends Error {
  readonly errorClass: string;
  constructor(command: string, errorClass: string, desc: string) {
    super(`QMP ${command}: ${errorClass}: ${desc}`);
    this.errorClass = errorClass;
  }
}

const MAX_EVENTS = 1000;

export function qmpAddressArg(address: QmpAddress): string {
  return `unix:${address.path},server=on,wait=off`;
}

interface Waiter {
  command: string;
  resolve(value: unknown): void;
  reject(error: Error): void;
}

function monitorError(message: string): DevclusterError {
  return new DevclusterError('QEMU_MONITOR_UNREACHABLE', message);
}

/**
 * Connects, waits for the greeting and negotiates capabilities. `timeoutMs`
 * bounds the greeting and is each command's default limit.
 */
export async function connectQmp(address: QmpAddress, timeoutMs = 5000, platform: NodeJS.Platform = process.platform): Promise<QmpClient> {
  if (platform === 'win32' && !/^\\\\[.?]\\pipe\\/i.test(address.path)) {
    // libuv implements Windows local sockets as named pipes only (nodejs/node#55979, libuv/libuv#2537).
    throw monitorError(`Node.js cannot connect to the AF_UNIX socket ${address.path} on Windows`);
  }
  const socket: Socket = connect(address.path);
  socket.setEncoding('utf8');
  const pending = new Map<string, Waiter>();
  const events: QmpEvent[] = [];
  let nextId = 1;
  let closedBy: Error | undefined;
  let buffer = '';
  let onGreeting: ((msg: Record<string, unknown>) => void) | undefined;
  let onFailure: ((e: Error) => void) | undefined;

  const fail = (e: Error) => {
    if (closedBy !== undefined) return;
    closedBy = e;
    onFailure?.(e);
    for (const w of pending.values()) w.reject(e);
    pending.clear();
  };

  const dispatch = (msg: Record<string, unknown>) => {
    if ('QMP' in msg) {
      onGreeting?.(msg);
      return;
    }
    if ('event' in msg) {
      events.push({ event: String(msg['event']), ...(msg['data'] === undefined ? {} : { data: msg['data'] }) });
      if (events.length > MAX_EVENTS) events.splice(0, events.length - MAX_EVENTS);
      return;
    }
    const id = typeof msg['id'] === 'string' ? msg['id'] : undefined;
    const waiter = id === undefined ? undefined : pending.get(id);
    if (id === undefined || waiter === undefined) {
      // The reply of a command that timed out, or one QEMU could not attribute (unparsable input).
      logLine('debug', `qmp: dropped a reply for ${id ?? 'no id'}`);
      return;
    }
    pending.delete(id);
    if ('error' in msg) {
      const err = (msg['error'] ?? {}) as { class?: unknown; desc?: unknown };
      waiter.reject(new QmpCommandError(waiter.command, String(err.class ?? 'GenericError'), String(err.desc ?? '')));
    } else {
      waiter.resolve(msg['return']);
    }
  };

  socket.on('data', (chunk: string) => {
    buffer += chunk;
    let nl: number;
    while ((nl = buffer.indexOf('\n')) >= 0) {
      const line = buffer.slice(0, nl).trim();
      buffer = buffer.slice(nl + 1);
      if (line === '') continue;
      let msg: unknown;
      try {
        msg = JSON.parse(line);
      } catch {
        logLine('debug', `qmp: unparsable line from QEMU: ${line.slice(0, 200)}`);
        continue;
      }
      if (msg !== null && typeof msg === 'object' && !Array.isArray(msg)) dispatch(msg as Record<string, unknown>);
    }
  });
  socket.on('error', (e) => fail(monitorError(`QEMU monitor connection failed: ${e.message}`)));
  socket.on('close', () => fail(monitorError('QEMU monitor connection closed')));

  const greeting = await new Promise<Record<string, unknown>>((resolve, reject) => {
    const timer = setTimeout(() => reject(monitorError(`QEMU monitor did not greet within ${timeoutMs}ms`)), timeoutMs);
    onGreeting = (msg) => {
      clearTimeout(timer);
      resolve(msg);
    };
    onFailure = (e) => {
      clearTimeout(timer);
      reject(e);
    };
  }).catch((e: unknown) => {
    socket.destroy();
    throw e;
  });
  onGreeting = undefined;
  onFailure = undefined;

  const client: QmpClient = {
    version: greetingVersion(greeting),
    execute<T>(command: string, args?: Record<string, unknown>, options: { timeoutMs?: number } = {}) {
      if (closedBy !== undefined) return Promise.reject(closedBy);
      const id = `dc-${nextId++}`;
      const limit = options.timeoutMs ?? timeoutMs;
      return new Promise<T>((resolve, reject) => {
        const timer = setTimeout(() => {
          pending.delete(id);
          reject(monitorError(`QEMU monitor did not answer ${command} within ${limit}ms`));
        }, limit);
        pending.set(id, {
          command,
          resolve: (v) => {
            clearTimeout(timer);
            resolve(v as T);
          },
          reject: (e) => {
            clearTimeout(timer);
            reject(e);
          },
        });
        socket.write(`${JSON.stringify({ execute: command, ...(args === undefined ? {} : { arguments: args }), id })}\n`);
      });
    },
    events: () => [...events],
    close: () => {
      fail(monitorError('QEMU monitor connection closed by devcluster'));
      socket.destroy();
    },
  };
  try {
    await client.execute('qmp_capabilities');
  } catch (e) {
    socket.destroy();
    throw e;
  }
  return client;
}

function greetingVersion(greeting: Record<string, unknown>): [number, number, number] | undefined {
  const q = (greeting['QMP'] as { version?: { qemu?: { major?: unknown; minor?: unknown; micro?: unknown } } } | undefined)?.version?.qemu;
  if (q === undefined || typeof q.major !== 'number' || typeof q.minor !== 'number' || typeof q.micro !== 'number') return undefined;
  return [q.major, q.minor, q.micro];
}
