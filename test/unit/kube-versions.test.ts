/**
 * src/kube/versions.ts: which Kubernetes versions devcluster installs, and how
 * kubernetes-version resolves: pinned as is, stable/latest read from a real
 * HTTP server on 127.0.0.1 in dl.k8s.io's layout and accepted only when
 * supported, offline and unreachable refused with the supported list.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { FaultServer } from '../helpers/image-server.ts';
import { isDevclusterError } from '../../src/ui/errors.ts';
import {
  DEFAULT_KUBERNETES_VERSION, KUBERNETES_RELEASES, SUPPORTED_KUBERNETES_VERSIONS, bundleComponents, kubernetesRelease, resolveKubernetesVersion,
} from '../../src/kube/versions.ts';
import { REQUIRED_COMPONENTS } from '../../src/kube/bundle-manifest.ts';

const root = join(import.meta.dirname, '..', '..');

function failsWith(id: string, check?: (e: { message: string; advice: string | undefined }) => void) {
  return (e: unknown) => {
    assert.ok(isDevclusterError(e), `not a DevclusterError: ${String(e)}`);
    assert.equal(e.id, id, e.message);
    check?.(e);
    return true;
  };
}

/** A port on 127.0.0.1 that nothing listens on. */
async function closedPort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((resolve) => s.listen(0, '127.0.0.1', resolve));
  const port = (s.address() as AddressInfo).port;
  await new Promise<void>((resolve) => s.close(() => resolve()));
  return port;
}

describe('supported Kubernetes versions', () => {
  test('the default is pinned and supported; two minors, newest first', () => {
    assert.equal(DEFAULT_KUBERNETES_VERSION, 'v1.37.2');
    assert.deepEqual(SUPPORTED_KUBERNETES_VERSIONS, ['v1.37.2', 'v1.36.3']);
    assert.ok(kubernetesRelease(DEFAULT_KUBERNETES_VERSION) !== undefined);
    assert.equal(kubernetesRelease('v1.36.2'), undefined);
  });

  test('the default release carries the versions images/kubernetes/versions.env builds', () => {
    const env = Object.fromEntries(readFileSync(join(root, 'images', 'kubernetes', 'versions.env'), 'utf8').split('\n')
      .map((l) => /^([A-Z_]+)=(\S+)$/.exec(l.trim())).filter((m) => m !== null).map((m) => [m[1], m[2]]));
    const r = kubernetesRelease(DEFAULT_KUBERNETES_VERSION)!;
    assert.deepEqual(
      { containerd: r.containerd, runc: r.runc, cniPlugins: r.cniPlugins, crictl: r.crictl },
      { containerd: env['CONTAINERD_VERSION'], runc: env['RUNC_VERSION'], cniPlugins: env['CNI_PLUGINS_VERSION'], crictl: env['CRI_TOOLS_VERSION'] },
    );
  });

  test('bundle components name every required component, in the built bundle\'s form', () => {
    for (const r of KUBERNETES_RELEASES) {
      const c = bundleComponents(r);
      assert.deepEqual(Object.keys(c).sort(), [...REQUIRED_COMPONENTS].sort(), r.version);
      assert.equal(c['kubernetes'], r.version);
    }
    // As the built v1.37.2 bundle's manifest.json has them (etcd's image tag 3.7.0-0 is etcd v3.7.0).
    assert.deepEqual(bundleComponents(kubernetesRelease('v1.37.2')!), {
      'cni-plugins': 'v1.10.0', containerd: 'v2.4.2', coredns: 'v1.14.6', crictl: 'v1.37.0', etcd: 'v3.7.0', kubernetes: 'v1.37.2', pause: '3.10.2', runc: 'v1.5.3',
    });
    assert.equal(bundleComponents(kubernetesRelease('v1.36.3')!)['etcd'], 'v3.6.8');
  });
});

describe('resolveKubernetesVersion', () => {
  const server = new FaultServer();
  before(async () => {
    await server.start();
  });
  after(async () => {
    await server.close();
  });
  const options = () => ({ releaseUrl: `${server.origin}/release/`, offline: false, env: {} });

  test('a pinned supported version is returned as is, with no request', async () => {
    const before = server.requests.length;
    assert.equal(await resolveKubernetesVersion('v1.36.3', options()), 'v1.36.3');
    assert.equal(await resolveKubernetesVersion('v1.37.2', { ...options(), offline: true }), 'v1.37.2');
    assert.equal(server.requests.length, before);
  });

  test('a pinned unsupported version is refused naming the supported ones', async () => {
    await assert.rejects(resolveKubernetesVersion('v1.30.0', options()), failsWith('KUBERNETES_VERSION_UNSUPPORTED', (e) => {
      assert.match(e.message, /v1\.30\.0/);
      assert.match(e.message, /v1\.37\.2 \(the default\) or v1\.36\.3/);
    }));
  });

  test('stable and latest are read from <kubernetes-release-url>/stable.txt and latest.txt', async () => {
    server.route('/release/stable.txt', { body: Buffer.from('v1.37.2'), plan: [] });
    server.route('/release/latest.txt', { body: Buffer.from('v1.36.3\n'), plan: [] });
    assert.equal(await resolveKubernetesVersion('stable', options()), 'v1.37.2');
    assert.equal(await resolveKubernetesVersion('latest', options()), 'v1.36.3');
    assert.equal(server.requestsTo('/release/stable.txt').length, 1);
    assert.equal(server.requestsTo('/release/latest.txt').length, 1);
  });

  test('what stable names is refused when devcluster does not support it', async () => {
    server.route('/release/stable.txt', { body: Buffer.from('v1.38.0'), plan: [] });
    server.route('/release/latest.txt', { body: Buffer.from('v1.39.0-alpha.1'), plan: [] });
    await assert.rejects(resolveKubernetesVersion('stable', options()), failsWith('KUBERNETES_VERSION_UNSUPPORTED', (e) => {
      assert.match(e.message, /v1\.38\.0/);
      assert.match(e.message, /stable\.txt/);
      assert.match(e.message, /v1\.36\.3/);
    }));
    await assert.rejects(resolveKubernetesVersion('latest', options()), failsWith('KUBERNETES_VERSION_UNSUPPORTED', (e) => assert.match(e.message, /v1\.39\.0-alpha\.1/)));
  });

  test('a server that answers something other than a version is refused', async () => {
    server.route('/release/stable.txt', { body: Buffer.from('<html>captive portal</html>'), plan: [] });
    await assert.rejects(resolveKubernetesVersion('stable', options()), failsWith('KUBERNETES_VERSION_UNRESOLVED', (e) => {
      assert.match(e.message, /does not hold a version/);
      assert.match(e.advice ?? '', /--kubernetes-version v1\.37\.2/);
    }));
  });

  test('offline: refused before any request, naming the supported versions', async () => {
    const before = server.requests.length;
    await assert.rejects(resolveKubernetesVersion('stable', { ...options(), offline: true }), failsWith('KUBERNETES_VERSION_UNRESOLVED', (e) => {
      assert.match(e.message, /offline/);
      assert.match(e.advice ?? '', /v1\.37\.2, v1\.36\.3/);
    }));
    assert.equal(server.requests.length, before);
  });

  test('unreachable or missing: a clear error naming the URL and the supported versions', async () => {
    server.routes.delete('/release/stable.txt');
    await assert.rejects(resolveKubernetesVersion('stable', options()), failsWith('KUBERNETES_VERSION_UNRESOLVED', (e) => {
      assert.match(e.message, /stable\.txt answered HTTP 404/);
      assert.match(e.advice ?? '', /v1\.37\.2, v1\.36\.3/);
    }));
    const port = await closedPort();
    await assert.rejects(resolveKubernetesVersion('stable', { releaseUrl: `http://127.0.0.1:${port}/release`, offline: false, env: {} }),
      failsWith('KUBERNETES_VERSION_UNRESOLVED', (e) => assert.match(e.message, /could not be reached: ECONNREFUSED/)));
  });
});
