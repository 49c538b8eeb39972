import http from 'node:http';
import https from 'node:https';
import net from 'node:net';
import type { AddressInfo } from 'node:net';
import { createHash } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { stat } from 'node:fs/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/**
 * A real HTTP(S) server on 127.0.0.1 that serves files and misbehaves on
 * request: each route has a plan, one behaviour per request (then "normal").
 * Every request is recorded with its headers and the body bytes sent.
 */
export interface RecordedRequest {
  readonly method: string;
  readonly path: string;
  readonly headers: http.IncomingHttpHeaders;
  bytesSent: number;
}

export type Behaviour =
  | { kind: 'normal' }
  /**
   * Send `after` body bytes, then destroy the socket (a connection reset) once
   * `when` resolves: a client drops bytes still unread when the connection
   * dies, so tests wait until the bytes are on the client's disk.
   */
  | { kind: 'reset'; after: number; when?: Promise<void> }
  /** Announce the full Content-Length, send `after` bytes, then close cleanly (once `when` resolves). */
  | { kind: 'truncate'; after: number; when?: Promise<void> }
  /** Send `after` bytes, then nothing more while keeping the connection open. */
  | { kind: 'stall'; after: number }
  /** Send headers, then hold the body until `release()` is called. */
  | { kind: 'hold'; release: Promise<void> }
  | { kind: 'status'; code: number; headers?: Record<string, string> }
  /** Always the whole file with 200, ignoring Range. */
  | { kind: 'ignore-range' }
  /** Change the ETag, then honour Range without looking at If-Range (a naive server). */
  | { kind: 'new-etag-naive'; etag: string }
  /** Serve these bytes instead of the route's body. */
  | { kind: 'bytes'; body: Buffer };

export interface Route {
  body: Buffer;
  etag?: string;
  lastModified?: string;
  plan: Behaviour[];
}

export function sha256(data: Buffer): string {
  return createHash('sha256').update(data).digest('hex');
}

/** Deterministic pseudo-random bytes (so failures reproduce). */
export function testBytes(size: number, seed = 1): Buffer {
  const out = Buffer.alloc(size);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < size; i += 1) {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    out[i] = x & 0xff;
  }
  return out;
}

/** Resolves once `path` holds at least `size` bytes, or after 10 s (then the test's assertions fail). */
export async function whenFileReaches(path: string, size: number): Promise<void> {
  for (let i = 0; i < 5000; i += 1) {
    const current = await stat(path).then((s) => s.size, () => 0);
    if (current >= size) return;
    await sleep(2);
  }
}

export class FaultServer {
  readonly requests: RecordedRequest[] = [];
  readonly routes = new Map<string, Route>();
  private server: http.Server | https.Server | undefined;
  private readonly sockets = new Set<net.Socket>();
  private readonly tls: { key: string; cert: string } | undefined;
  port = 0;

  constructor(tls?: { key: string; cert: string }) {
    this.tls = tls;
  }

  get origin(): string {
    return `${this.tls === undefined ? 'http' : 'https'}://127.0.0.1:${this.port}`;
  }

  url(path: string): string {
    return `${this.origin}${path}`;
  }

  route(path: string, route: Route): void {
    this.routes.set(path, route);
  }

  requestsTo(path: string): RecordedRequest[] {
    return this.requests.filter((r) => r.path === path);
  }

  async start(): Promise<this> {
    const handler = (req: http.IncomingMessage, res: http.ServerResponse) => this.handle(req, res);
    this.server = this.tls === undefined ? http.createServer(handler) : https.createServer(this.tls, handler);
    this.server.on('connection', (s: net.Socket) => {
      this.sockets.add(s);
      s.on('close', () => this.sockets.delete(s));
    });
    this.server.on('secureConnection', (s: net.Socket) => {
      this.sockets.add(s);
      s.on('close', () => this.sockets.delete(s));
    });
    await new Promise<void>((resolve) => this.server?.listen(0, '127.0.0.1', resolve));
    this.port = (this.server.address() as AddressInfo).port;
    return this;
  }

  async close(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    await new Promise<void>((resolve) => (this.server === undefined ? resolve() : this.server.close(() => resolve())));
  }

  private handle(req: http.IncomingMessage, res: http.ServerResponse): void {
    const path = (req.url ?? '/').replace(/\?.*$/, '');
    const record: RecordedRequest = { method: req.method ?? 'GET', path, headers: req.headers, bytesSent: 0 };
    this.requests.push(record);
    const route = this.routes.get(path);
    if (route === undefined) {
      res.writeHead(404, { 'content-length': '9' }).end('not found');
      return;
    }
    const behaviour = route.plan.shift() ?? { kind: 'normal' };
    const send = (chunk: Buffer, end: boolean, then?: () => void) => {
      record.bytesSent += chunk.length;
      if (end) res.end(chunk, then);
      else res.write(chunk, then);
    };
    const validators = (): Record<string, string> => ({
      ...(route.etag === undefined ? {} : { etag: route.etag }),
      ...(route.lastModified === undefined ? {} : { 'last-modified': route.lastModified }),
    });
    const body = behaviour.kind === 'bytes' ? behaviour.body : route.body;
    if (behaviour.kind === 'status') {
      res.writeHead(behaviour.code, { 'content-length': '0', ...behaviour.headers }).end();
      return;
    }
    if (behaviour.kind === 'new-etag-naive') route.etag = behaviour.etag;
    const range = /^bytes=(\d+)-$/.exec(String(req.headers['range'] ?? ''));
    const ifRange = req.headers['if-range'];
    const validatorOk = ifRange === undefined || ifRange === route.etag || ifRange === route.lastModified;
    const honourRange = range !== null && behaviour.kind !== 'ignore-range' && (behaviour.kind === 'new-etag-naive' || validatorOk);
    const start = honourRange ? Number(range?.[1]) : 0;
    if (honourRange && start >= body.length) {
      res.writeHead(416, { 'content-range': `bytes */${body.length}`, 'content-length': '0' }).end();
      return;
    }
    const rest = body.subarray(start);
    res.writeHead(honourRange ? 206 : 200, {
      'content-type': 'application/octet-stream',
      'content-length': String(rest.length),
      ...(honourRange ? { 'content-range': `bytes ${start}-${body.length - 1}/${body.length}` } : {}),
      ...validators(),
    });
    switch (behaviour.kind) {
      case 'reset':
        send(rest.subarray(0, behaviour.after), false, () => void (behaviour.when ?? Promise.resolve()).then(() => req.socket.destroy()));
        return;
      case 'truncate':
        send(rest.subarray(0, behaviour.after), false, () => void (behaviour.when ?? Promise.resolve()).then(() => req.socket.end()));
        return;
      case 'stall':
        send(rest.subarray(0, behaviour.after), false);
        return;
      case 'hold':
        res.flushHeaders();
        void behaviour.release.then(() => send(rest, true));
        return;
      default:
        send(rest, true);
    }
  }
}

/**
 * A forward and CONNECT proxy on 127.0.0.1 that records what it was asked.
 * Forwarded requests carry an absolute URI; CONNECT opens a raw tunnel.
 */
export class RecordingProxy {
  readonly seen: Array<{ method: string; target: string }> = [];
  private server: http.Server | undefined;
  private readonly sockets = new Set<net.Socket>();
  port = 0;

  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  async start(): Promise<this> {
    this.server = http.createServer((req, res) => {
      this.seen.push({ method: req.method ?? '', target: req.url ?? '' });
      const target = new URL(req.url ?? '');
      const upstream = http.request({ host: target.hostname, port: target.port, path: `${target.pathname}${target.search}`, method: req.method, headers: req.headers }, (up) => {
        res.writeHead(up.statusCode ?? 502, up.headers);
        up.pipe(res);
      });
      upstream.on('error', () => res.destroy());
      req.pipe(upstream);
    });
    this.server.on('connect', (req: http.IncomingMessage, client: net.Socket, head: Buffer) => {
      this.seen.push({ method: 'CONNECT', target: req.url ?? '' });
      const [host, port] = (req.url ?? '').split(':');
      const upstream = net.connect(Number(port), host, () => {
        client.write('HTTP/1.1 200 Connection Established\r\n\r\n');
        if (head.length > 0) upstream.write(head);
        upstream.pipe(client);
        client.pipe(upstream);
      });
      upstream.on('error', () => client.destroy());
      client.on('error', () => upstream.destroy());
    });
    this.server.on('connection', (s: net.Socket) => {
      this.sockets.add(s);
      s.on('close', () => this.sockets.delete(s));
    });
    await new Promise<void>((resolve) => this.server?.listen(0, '127.0.0.1', resolve));
    this.port = (this.server.address() as AddressInfo).port;
    return this;
  }

  async close(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    await new Promise<void>((resolve) => (this.server === undefined ? resolve() : this.server.close(() => resolve())));
  }
}

/** A self-signed certificate for 127.0.0.1, made by the openssl CLI. */
export function selfSignedCertificate(): { key: string; cert: string } {
  const dir = mkdtempSync(join(tmpdir(), 'devcluster-tls-'));
  try {
    const key = join(dir, 'key.pem');
    const cert = join(dir, 'cert.pem');
    execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', key, '-out', cert, '-days', '1',
      '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1'], { stdio: 'ignore' });
    return { key: readFileSync(key, 'utf8'), cert: readFileSync(cert, 'utf8') };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
