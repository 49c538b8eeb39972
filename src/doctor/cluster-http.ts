import { request } from 'node:https';
import { connect as tlsConnect } from 'node:tls';
import { readFile } from 'node:fs/promises';
import type { ClusterAccessor } from './types.ts';

/**
 * The doctor's view of a cluster's API server over HTTPS. /readyz and
 * /version are readable without credentials in kubeadm clusters
 * (system:public-info-viewer), so no client certificate is needed. The
 * profile's CA verifies the server when it exists.
 */
export function httpClusterAccessor(apiServer: string, caFile: string | undefined): ClusterAccessor {
  const url = new URL(apiServer);
  const ca = caFile === undefined ? Promise.resolve(undefined) : readFile(caFile, 'utf8').catch(() => undefined);

  async function get(path: string, options: { signal?: AbortSignal; timeoutMs?: number } = {}): Promise<{ status: number; body: string }> {
    const caPem = await ca;
    return new Promise((resolve, reject) => {
      const req = request(
        {
          host: url.hostname,
          port: url.port === '' ? 443 : Number(url.port),
          path,
          method: 'GET',
          // Only public health endpoints are read, so an unverified server is
          // acceptable before the CA exists; the name is not checked because a
          // port-forwarded cluster is reached as 127.0.0.1.
          ...(caPem === undefined ? { rejectUnauthorized: false } : { ca: caPem, checkServerIdentity: () => undefined }),
          timeout: options.timeoutMs ?? 5000,
          ...(options.signal === undefined ? {} : { signal: options.signal }),
        },
        (res) => {
          let body = '';
          res.setEncoding('utf8');
          res.on('data', (d: string) => {
            if (body.length < 64 * 1024) body += d;
          });
          res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
          res.on('error', reject);
        },
      );
      req.on('timeout', () => req.destroy(new Error(`no answer from ${url.host} within ${options.timeoutMs ?? 5000}ms`)));
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
    servingCertificate(options = {}) {
      return new Promise((resolve, reject) => {
        const socket = tlsConnect({ host: url.hostname, port: url.port === '' ? 443 : Number(url.port), rejectUnauthorized: false, servername: isIp(url.hostname) ? '' : url.hostname }, () => {
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

function isIp(host: string): boolean {
  return /^[\d.]+$/.test(host) || host.includes(':');
}
