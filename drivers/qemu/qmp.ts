import { connect } from 'node:net';
import type { Socket } from 'node:net';
import { DevclusterError } from '../../src/ui/errors.ts';

/**
 * A minimal QMP client: one connection, capabilities negotiated, commands
 * answered in order. Asynchronous events are collected, not dispatched.
 */
export type QmpAddress = { path: string } | { host: string; port: number };

export interface QmpClient {
  execute<T = unknown>(command: string, args?: Record<string, unknown>): Promise<T>;
  events(): Array<{ event: string; data?: unknown }>;
  close(): void;
}

export function qmpAddressArg(address: QmpAddress): string {
  return 'path' in address ? `unix:${address.path},server=on,wait=off` : `tcp:${address.host}:${address.port},server=on,wait=off`;
}

export async function connectQmp(address: QmpAddress, timeoutMs = 5000): Promise<QmpClient> {
  const socket: Socket = 'path' in address ? connect(address.path) : connect(address.port, address.host);
  socket.setEncoding('utf8');
  const waiting: Array<{ resolve(v: unknown): void; reject(e: Error): void }> = [];
  const events: Array<{ event: string; data?: unknown }> = [];
  let buffer = '';
  let greeted: (() => void) | undefined;
  let failed: ((e: Error) => void) | undefined;
  const fail = (e: Error) => {
    failed?.(e);
    for (const w of waiting.splice(0)) w.reject(e);
  };
  socket.on('data', (chunk: string) => {
    buffer += chunk;
    let nl: number;
    while ((nl = buffer.indexOf('\n')) >= 0) {
      const line = buffer.slice(0, nl).trim();
      buffer = buffer.slice(nl + 1);
      if (line === '') continue;
      let msg: Record<string, unknown>;
      try {
        msg = JSON.parse(line) as Record<string, unknown>;
      } catch {
        continue;
      }
      if ('QMP' in msg) greeted?.();
      else if ('event' in msg) events.push({ event: String(msg['event']), data: msg['data'] });
      else if ('return' in msg) waiting.shift()?.resolve(msg['return']);
      else if ('error' in msg) {
        const err = msg['error'] as { class?: string; desc?: string };
        waiting.shift()?.reject(new Error(`QMP ${err.class ?? 'error'}: ${err.desc ?? ''}`));
      }
    }
  });
  socket.on('error', (e) => fail(e));
  socket.on('close', () => fail(new Error('QMP connection closed')));

  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new DevclusterError('QEMU_MONITOR_UNREACHABLE', 'QEMU monitor did not greet in time')), timeoutMs);
    greeted = () => {
      clearTimeout(timer);
      resolve();
    };
    failed = (e) => {
      clearTimeout(timer);
      reject(e);
    };
  }).catch((e: unknown) => {
    socket.destroy();
    throw e;
  });
  failed = undefined;

  const client: QmpClient = {
    execute<T>(command: string, args?: Record<string, unknown>) {
      return new Promise<T>((resolve, reject) => {
        const timer = setTimeout(() => reject(new DevclusterError('QEMU_MONITOR_UNREACHABLE', `QEMU monitor did not answer ${command}`)), timeoutMs);
        waiting.push({
          resolve: (v) => {
            clearTimeout(timer);
            resolve(v as T);
          },
          reject: (e) => {
            clearTimeout(timer);
            reject(e);
          },
        });
        socket.write(`${JSON.stringify(args === undefined ? { execute: command } : { execute: command, arguments: args })}\n`);
      });
    },
    events: () => events,
    close: () => socket.destroy(),
  };
  try {
    await client.execute('qmp_capabilities');
  } catch (e) {
    socket.destroy();
    throw e;
  }
  return client;
}
