import http from 'node:http';
import https from 'node:https';
import net from 'node:net';
import tls from 'node:tls';
import type { Duplex } from 'node:stream';
import { ipv4ToInt, isIpv4, netContainsAddress, parseCidr } from '../host/ipv4.ts';
import { inputError } from '../ui/errors.ts';

/**
 * Proxy support for downloads, since got has none of its own: the standard
 * variables (lower case first, as curl reads them) pick a proxy per scheme, and
 * two small agents speak to it. Plain http targets are forwarded (absolute URI
 * in the request line, what every proxy accepts); https targets go through a
 * CONNECT tunnel, so the proxy never sees the content and TLS is end to end.
 */
export interface ProxyChoice {
  readonly proxy: URL;
  /** The variable the proxy came from, for messages. */
  readonly variable: string;
}

function firstSet(env: NodeJS.ProcessEnv, names: readonly string[]): [string, string] | undefined {
  for (const name of names) {
    const v = env[name];
    if (v !== undefined && v.trim() !== '') return [name, v.trim()];
  }
  return undefined;
}

function defaultPort(protocol: string): number {
  return protocol === 'https:' ? 443 : 80;
}

/** Brackets-free host for comparisons (URL keeps IPv6 literals in brackets). */
function bareHost(hostname: string): string {
  return hostname.replace(/^\[|\]$/g, '').toLowerCase();
}

/**
 * NO_PROXY: entries separated by commas or spaces. `*` matches everything;
 * `example.com` and `.example.com` match that host and every host below it;
 * `host:port` matches only that port; `10.0.0.0/8` matches IPv4 addresses in
 * the range. Loopback is not special: list it when a proxy must be bypassed.
 */
export function noProxyMatches(target: URL, noProxy: string): boolean {
  const host = bareHost(target.hostname);
  const port = Number(target.port || defaultPort(target.protocol));
  for (const raw of noProxy.split(/[\s,]+/)) {
    const entry = raw.trim().toLowerCase();
    if (entry === '') continue;
    if (entry === '*') return true;
    const cidr = /^(\d+\.\d+\.\d+\.\d+)\/(\d{1,2})$/.exec(entry);
    if (cidr !== null) {
      // A prefix above 32 is read as 32, as it always was here.
      const range = parseCidr(`${cidr[1] as string}/${Math.min(32, Number(cidr[2]))}`);
      if (range !== undefined && isIpv4(host) && netContainsAddress(range, ipv4ToInt(host))) return true;
      continue;
    }
    let name = entry;
    let entryPort: number | undefined;
    const bracketed = /^\[([^\]]+)\](?::(\d+))?$/.exec(entry);
    const hostPort = /^([^:]+):(\d+)$/.exec(entry);
    if (bracketed !== null) {
      name = bracketed[1] as string;
      entryPort = bracketed[2] === undefined ? undefined : Number(bracketed[2]);
    } else if (hostPort !== null) {
      name = hostPort[1] as string;
      entryPort = Number(hostPort[2]);
    }
    if (entryPort !== undefined && entryPort !== port) continue;
    name = name.replace(/^\*?\./, '');
    if (host === name || (!net.isIP(name) && host.endsWith(`.${name}`))) return true;
  }
  return false;
}

/** The proxy for a target URL from the environment, or undefined to go direct. */
export function proxyFor(target: URL, env: NodeJS.ProcessEnv = process.env): ProxyChoice | undefined {
  const names = target.protocol === 'https:'
    ? ['https_proxy', 'HTTPS_PROXY', 'all_proxy', 'ALL_PROXY']
    : ['http_proxy', 'HTTP_PROXY', 'all_proxy', 'ALL_PROXY'];
  const found = firstSet(env, names);
  if (found === undefined) return undefined;
  const noProxy = firstSet(env, ['no_proxy', 'NO_PROXY']);
  if (noProxy !== undefined && noProxyMatches(target, noProxy[1])) return undefined;
  const [variable, value] = found;
  let proxy: URL;
  try {
    proxy = new URL(/^[a-z][a-z0-9+.-]*:\/\//i.test(value) ? value : `http://${value}`);
  } catch {
    throw inputError('CONFIG_INVALID_VALUE', `${variable}=${JSON.stringify(value)} is not a proxy URL; accepted: http://host:port or https://host:port`);
  }
  if (proxy.protocol !== 'http:' && proxy.protocol !== 'https:') {
    throw inputError('CONFIG_INVALID_VALUE', `${variable}=${JSON.stringify(value)}: ${proxy.protocol.replace(/:$/, '')} proxies are not supported; accepted: http://host:port or https://host:port`, {
      advice: 'Point the variable at an HTTP proxy, or unset it to connect directly.',
    });
  }
  return { proxy, variable };
}

function proxyAuthorization(proxy: URL): string | undefined {
  if (proxy.username === '' && proxy.password === '') return undefined;
  const user = decodeURIComponent(proxy.username);
  const pass = decodeURIComponent(proxy.password);
  return `Basic ${Buffer.from(`${user}:${pass}`).toString('base64')}`;
}

function connectToProxy(proxy: URL, tlsOptions: tls.ConnectionOptions): net.Socket {
  const port = Number(proxy.port || defaultPort(proxy.protocol));
  const host = bareHost(proxy.hostname);
  if (proxy.protocol === 'https:') {
    return tls.connect({ ...tlsOptions, host, port, ...(net.isIP(host) === 0 ? { servername: host } : {}) });
  }
  return net.connect({ host, port });
}

/** A proxy that answered CONNECT with something other than 200. */
export class ProxyRefusedError extends Error {
  readonly statusCode: number;
  constructor(statusCode: number, proxy: URL) {
    super(`the proxy ${proxy.host} refused the tunnel with HTTP ${statusCode}`);
    this.name = 'ProxyRefusedError';
    this.statusCode = statusCode;
  }
}

type AgentWithAddRequest = { addRequest(req: http.ClientRequest, options: Record<string, unknown>): void };

/** Plain http through a proxy: every request goes to the proxy with an absolute URI. */
class ForwardProxyAgent extends http.Agent {
  private readonly proxy: URL;
  private readonly tlsOptions: tls.ConnectionOptions;

  constructor(proxy: URL, tlsOptions: tls.ConnectionOptions) {
    super({ keepAlive: false });
    this.proxy = proxy;
    this.tlsOptions = tlsOptions;
  }

  // Not in Node's typings, but the documented extension point hpagent-style
  // agents use: the request line is rewritten before the headers are sent.
  addRequest(req: http.ClientRequest, options: Record<string, unknown>): void {
    const host = String(options['hostname'] ?? options['host'] ?? 'localhost');
    const port = Number(options['port'] ?? 80);
    const hostPart = net.isIPv6(host) ? `[${host}]` : host;
    req.path = `http://${hostPart}${port === 80 ? '' : `:${port}`}${req.path}`;
    const auth = proxyAuthorization(this.proxy);
    if (auth !== undefined) req.setHeader('proxy-authorization', auth);
    (http.Agent.prototype as unknown as AgentWithAddRequest).addRequest.call(this, req, options);
  }

  override createConnection(): Duplex {
    return connectToProxy(this.proxy, this.tlsOptions);
  }
}

/** https through a proxy: a CONNECT tunnel, then TLS with the target inside it. */
class TunnelProxyAgent extends https.Agent {
  private readonly proxy: URL;
  private readonly proxyTls: tls.ConnectionOptions;

  constructor(proxy: URL, proxyTls: tls.ConnectionOptions) {
    super({ keepAlive: false });
    this.proxy = proxy;
    this.proxyTls = proxyTls;
  }

  override createConnection(options: https.RequestOptions, callback?: (err: Error | null, stream: Duplex) => void): Duplex | null | undefined {
    const done = callback ?? (() => undefined);
    const host = bareHost(String(options.hostname ?? options.host ?? 'localhost'));
    const port = Number(options.port ?? 443);
    const authority = `${net.isIPv6(host) ? `[${host}]` : host}:${port}`;
    const headers: Record<string, string> = { host: authority };
    const auth = proxyAuthorization(this.proxy);
    if (auth !== undefined) headers['proxy-authorization'] = auth;
    const socket = connectToProxy(this.proxy, this.proxyTls);
    const request = http.request({ method: 'CONNECT', path: authority, headers, createConnection: () => socket });
    let settled = false;
    const settle = (err: Error | null, stream?: Duplex) => {
      if (settled) return;
      settled = true;
      done(err, stream as Duplex);
    };
    request.once('connect', (res, tunnel, head) => {
      if (res.statusCode !== 200) {
        tunnel.destroy();
        settle(new ProxyRefusedError(res.statusCode ?? 0, this.proxy));
        return;
      }
      if (head.length > 0) tunnel.unshift(head);
      const secure = tls.connect({
        ...(options as tls.ConnectionOptions),
        socket: tunnel,
        ...(net.isIP(host) === 0 ? { servername: String(options.servername ?? host) } : {}),
      });
      settle(null, secure);
    });
    request.once('error', (e) => settle(e));
    request.end();
    return undefined;
  }
}

export interface ProxyAgents {
  readonly agent: { http?: http.Agent; https?: https.Agent } | undefined;
  readonly choice: ProxyChoice | undefined;
}

/** The agents got should use for this URL (undefined: direct, got's defaults). */
export function agentsFor(target: URL, env: NodeJS.ProcessEnv = process.env, tlsOptions: tls.ConnectionOptions = {}): ProxyAgents {
  const choice = proxyFor(target, env);
  if (choice === undefined) return { agent: undefined, choice };
  // A redirect may change the scheme, so both agents are set (each with its
  // scheme's proxy); NO_PROXY is decided on the first URL's host.
  const httpChoice = target.protocol === 'http:' ? choice : proxyFor(new URL(`http://${target.host}/`), env);
  const httpsChoice = target.protocol === 'https:' ? choice : proxyFor(new URL(`https://${target.host}/`), env);
  return {
    agent: {
      ...(httpChoice === undefined ? {} : { http: new ForwardProxyAgent(httpChoice.proxy, tlsOptions) }),
      ...(httpsChoice === undefined ? {} : { https: new TunnelProxyAgent(httpsChoice.proxy, tlsOptions) }),
    },
    choice,
  };
}
