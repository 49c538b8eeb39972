import { request } from 'node:https';
import { connect as tlsConnect } from 'node:tls';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { PKI_FILES } from '../kube/pki.ts';
import type { ClusterAccessor, NodeReadiness } from './types.ts';

/** The files that authenticate the host to a cluster and the cluster to the host; each may be missing. */
export interface ClusterTlsFiles {
  caFile?: string;
  clientCertFile?: string;
  clientKeyFile?: string;
}

/** The profile's CA and the admin client pair devcluster wrote into the host's kubeconfig. */
export function profileTlsFiles(pkiDir: string): Required<ClusterTlsFiles> {
  const at = (p: string) => join(pkiDir, ...p.split('/'));
  return { caFile: at(PKI_FILES.caCert), clientCertFile: at(PKI_FILES.adminCert), clientKeyFile: at(PKI_FILES.adminKey) };
}

interface TlsMaterial {
  ca?: string;
  cert?: string;
  key?: string;
}

async function readMaterial(files: ClusterTlsFiles): Promise<TlsMaterial> {
  const read = (path: string | undefined) => (path === undefined ? Promise.resolve(undefined) : readFile(path, 'utf8').catch(() => undefined));
  const [ca, cert, key] = await Promise.all([read(files.caFile), read(files.clientCertFile), read(files.clientKeyFile)]);
  return { ...(ca === undefined ? {} : { ca }), ...(cert === undefined || key === undefined ? {} : { cert, key }) };
}

/** The Ready condition of a Node object (GET /api/v1/nodes/<name>), with its reason when it is not True. */
export function nodeReadiness(body: string): NodeReadiness {
  let node: unknown;
  try {
    node = JSON.parse(body);
  } catch {
    return { status: 'Unknown', reason: 'the answer is not JSON' };
  }
  const conditions = (node as { status?: { conditions?: unknown } } | null)?.status?.conditions;
  const ready = Array.isArray(conditions) ? (conditions as Array<Record<string, unknown>>).find((c) => c['type'] === 'Ready') : undefined;
  if (ready === undefined) return { status: 'Unknown', reason: 'the node reports no Ready condition yet' };
  if (ready['status'] === 'True') return { status: 'Ready' };
  const why = [ready['reason'], ready['message']].filter((x): x is string => typeof x === 'string' && x !== '').join(': ');
  return { status: ready['status'] === 'False' ? 'NotReady' : 'Unknown', ...(why === '' ? {} : { reason: why }) };
}

/**
 * The cluster's API server over HTTPS, as kubectl reaches it with the
 * profile's kubeconfig entry: the server verified against the profile's CA
 * (chain and name; the serving certificate covers 127.0.0.1 for a
 * port-forwarded cluster), and the admin client certificate presented, so
 * endpoints that need credentials (nodes) answer too. Before the CA exists
 * only the anonymous health endpoints are worth asking, so the server is
 * then not verified.
 */
export function httpClusterAccessor(apiServer: string, files: ClusterTlsFiles): ClusterAccessor {
  const url = new URL(apiServer);
  const port = url.port === '' ? 443 : Number(url.port);
  const host = url.hostname.replace(/^\[(.*)\]$/, '$1');
  let material: Promise<TlsMaterial> | undefined;

  async function get(path: string, options: { signal?: AbortSignal; timeoutMs?: number } = {}): Promise<{ status: number; body: string }> {
    material ??= readMaterial(files);
    const tls = await material;
    const timeoutMs = options.timeoutMs ?? 5000;
    return new Promise((resolve, reject) => {
      const req = request(
        {
          host,
          port,
          path,
          method: 'GET',
          headers: { accept: 'application/json, */*' },
          ...(tls.ca === undefined ? { rejectUnauthorized: false } : { ca: tls.ca }),
          ...(tls.cert === undefined || tls.key === undefined ? {} : { cert: tls.cert, key: tls.key }),
          // One request per connection: a status or doctor run must not keep the process alive.
          agent: false,
          timeout: timeoutMs,
          ...(options.signal === undefined ? {} : { signal: options.signal }),
        },
        (res) => {
          let body = '';
          res.setEncoding('utf8');
          res.on('data', (d: string) => {
            if (body.length < 256 * 1024) body += d;
          });
          res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
          res.on('error', reject);
        },
      );
      req.on('timeout', () => req.destroy(new Error(`no answer from ${url.host} within ${timeoutMs}ms`)));
      req.on('error', reject);
      req.end();
    });
  }

  return {
    readyz: (options) => get('/readyz', options),
    async serverVersion(options) {
      const { status, body } = await get('/version', options);
      if (status !== 200) throw new Error(`GET /version answered HTTP ${status}`);
      const v = (JSON.parse(body) as { gitVersion?: unknown }).gitVersion;
      if (typeof v !== 'string') throw new Error('GET /version has no gitVersion');
      return v;
    },
    async node(name, options) {
      const { status, body } = await get(`/api/v1/nodes/${encodeURIComponent(name)}`, options);
      if (status === 404) return { status: 'Unknown', reason: `node ${name} is not registered` };
      if (status !== 200) return { status: 'Unknown', reason: `GET /api/v1/nodes/${name} answered HTTP ${status}${httpReason(body)}` };
      return nodeReadiness(body);
    },
    servingCertificate(options = {}) {
      return new Promise((resolve, reject) => {
        const socket = tlsConnect({ host, port, rejectUnauthorized: false, servername: isIp(host) ? '' : host }, () => {
          const cert = socket.getPeerX509Certificate();
          socket.end();
          if (cert === undefined) reject(new Error('the server sent no certificate'));
          else resolve(cert.toString());
        });
        socket.setTimeout(options.timeoutMs ?? 5000, () => socket.destroy(new Error(`no TLS handshake with ${url.host} within ${options.timeoutMs ?? 5000}ms`)));
        socket.on('error', reject);
        options.signal?.addEventListener('abort', () => socket.destroy(new Error('aborted')), { once: true });
      });
    },
  };
}

/** The message of a Kubernetes Status object ("nodes is forbidden: ..."), when the body is one. */
function httpReason(body: string): string {
  try {
    const m = (JSON.parse(body) as { message?: unknown }).message;
    return typeof m === 'string' && m !== '' ? `: ${m}` : '';
  } catch {
    return '';
  }
}

function isIp(host: string): boolean {
  return /^[\d.]+$/.test(host) || host.includes(':');
}
