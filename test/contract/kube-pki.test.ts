/**
 * The cluster PKI's files, checked by the real OpenSSL (Debian package
 * openssl): chains, names, key usages, key/certificate pairs, the
 * service-account pair, modes; a TLS handshake between openssl s_client and a
 * server holding the API server certificate, with the admin certificate as
 * the client's; what a second run keeps, what a new address reissues, and
 * that refusals change nothing.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { copyFile, cp, readFile, rm, stat, unlink, writeFile } from 'node:fs/promises';
import { createServer } from 'node:tls';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { pathToFileURL } from 'node:url';
import { REPO, snapshotTree, tempDir } from '../helpers/cli.ts';
import { skipUnlessPresent } from '../helpers/prerequisite.ts';
import { KUBEADM_PKI_FILES, PKI_FILES, certificateInfo, createClusterPki } from '../../src/kube/pki.ts';
import type { ClusterPki, ClusterPkiRequest } from '../../src/kube/pki.ts';
import { isDevclusterError } from '../../src/ui/errors.ts';

const OPENSSL = '/usr/bin/openssl';
const skip = skipUnlessPresent(existsSync(OPENSSL) ? false : `${OPENSSL} is missing: install the Debian package openssl`);
const execFileAsync = promisify(execFile);
const C_LOCALE = { ...process.env, LANG: 'C', LC_ALL: 'C' };

/** Its output is parsed, so it runs in the C locale; a failure throws with openssl's stderr. */
function openssl(args: string[], cwd?: string): string {
  return execFileSync(OPENSSL, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], env: C_LOCALE, ...(cwd === undefined ? {} : { cwd }) });
}

function opensslFails(args: string[], cwd: string): string {
  try {
    openssl(args, cwd);
  } catch (e) {
    return `${(e as { stdout?: string }).stdout ?? ''}${(e as { stderr?: string }).stderr ?? ''}`;
  }
  assert.fail(`openssl ${args.join(' ')} succeeded`);
}

const request: ClusterPkiRequest = {
  apiServerSans: { dns: ['control-plane.devcluster.internal'], ips: ['192.168.5.15', '127.0.0.1'] },
  clusterName: 'dev',
  nodeName: 'dev',
  validityDays: 365,
};

const ACTIONS = (pki: ClusterPki): Record<string, string> => Object.fromEntries(pki.outcomes.map((o) => [o.item, o.action]));

async function refusal(p: Promise<unknown>): Promise<{ id: string; message: string }> {
  try {
    await p;
  } catch (e) {
    if (isDevclusterError(e)) return { id: e.id, message: e.message };
    throw e;
  }
  assert.fail('expected a refusal');
}

describe('cluster PKI against openssl', { skip }, () => {
  let root: string;
  let dir: string;
  let first: ClusterPki;

  before(async () => {
    root = await tempDir('devcluster-pki-');
    dir = join(root, 'pki');
    first = await createClusterPki(dir, request);
  });

  after(async () => {
    if (root !== undefined) await rm(root, { recursive: true, force: true });
  });

  test('a first run creates every file kubeadm reads and the admin pair; keys are 0600', async () => {
    assert.deepEqual(ACTIONS(first), { ca: 'created', 'front-proxy-ca': 'created', 'etcd-ca': 'created', sa: 'created', apiserver: 'created', admin: 'created' });
    assert.deepEqual([...KUBEADM_PKI_FILES].sort(), [
      'apiserver.crt', 'apiserver.key', 'ca.crt', 'ca.key', 'etcd/ca.crt', 'etcd/ca.key', 'front-proxy-ca.crt', 'front-proxy-ca.key', 'sa.key', 'sa.pub',
    ]);
    for (const [name, rel] of Object.entries(PKI_FILES)) {
      const mode = (await stat(join(dir, rel))).mode & 0o777;
      assert.equal(mode, rel.endsWith('.key') ? 0o600 : 0o644, `${name} (${rel}) has mode ${mode.toString(8)}`);
      assert.equal(first.paths[name as keyof typeof PKI_FILES], join(dir, rel));
    }
  });

  test('openssl verify: the API server and admin certificates chain to ca.crt, not to another CA', () => {
    assert.equal(openssl(['verify', '-CAfile', 'ca.crt', 'apiserver.crt', 'admin.crt'], dir), 'apiserver.crt: OK\nadmin.crt: OK\n');
    assert.match(opensslFails(['verify', '-CAfile', 'front-proxy-ca.crt', 'apiserver.crt'], dir), /unable to get local issuer certificate/);
    for (const ca of ['ca.crt', 'front-proxy-ca.crt', 'etcd/ca.crt']) assert.equal(openssl(['verify', '-CAfile', ca, ca], dir), `${ca}: OK\n`);
    // Purpose checks: openssl's sslserver/sslclient purposes read the key usages.
    assert.equal(openssl(['verify', '-purpose', 'sslserver', '-CAfile', 'ca.crt', 'apiserver.crt'], dir), 'apiserver.crt: OK\n');
    assert.equal(openssl(['verify', '-purpose', 'sslclient', '-CAfile', 'ca.crt', 'admin.crt'], dir), 'admin.crt: OK\n');
    assert.match(opensslFails(['verify', '-purpose', 'sslclient', '-CAfile', 'ca.crt', 'apiserver.crt'], dir), /unsuitable certificate purpose/);
  });

  test('the API server certificate: subject, every SAN, server auth, CA:FALSE, RSA 2048, SHA-256', () => {
    const text = openssl(['x509', '-in', 'apiserver.crt', '-noout', '-text', '-nameopt', 'RFC2253'], dir);
    assert.match(text, /Subject: CN=kube-apiserver\n/);
    assert.match(text, /Issuer: CN=kubernetes,OU=dev\n/);
    const sanLine = /X509v3 Subject Alternative Name: *\n\s*(.*)\n/.exec(text)?.[1] ?? '';
    const sans = sanLine.split(', ');
    for (const d of ['dev', 'kubernetes', 'kubernetes.default', 'kubernetes.default.svc', 'kubernetes.default.svc.cluster.local', 'localhost', 'control-plane.devcluster.internal']) {
      assert.ok(sans.includes(`DNS:${d}`), `DNS:${d} in ${sanLine}`);
    }
    for (const ip of ['10.96.0.1', '127.0.0.1', '192.168.5.15']) assert.ok(sans.includes(`IP Address:${ip}`), `IP ${ip} in ${sanLine}`);
    assert.equal(sans.length, 10, sanLine);
    assert.match(text, /X509v3 Extended Key Usage: *\n\s*TLS Web Server Authentication\n/);
    assert.match(text, /X509v3 Basic Constraints: critical\n\s*CA:FALSE\n/);
    assert.match(text, /X509v3 Key Usage: critical\n\s*Digital Signature, Key Encipherment\n/);
    assert.match(text, /Public-Key: \(2048 bit\)/);
    assert.match(text, /Signature Algorithm: sha256WithRSAEncryption/);
    assert.match(text, /X509v3 Authority Key Identifier/);
  });

  test('the admin certificate: CN kubernetes-admin, O kubeadm:cluster-admins, client auth only, no SANs', () => {
    const text = openssl(['x509', '-in', 'admin.crt', '-noout', '-text', '-nameopt', 'RFC2253'], dir);
    assert.match(text, /Subject: CN=kubernetes-admin,O=kubeadm:cluster-admins\n/);
    assert.match(text, /X509v3 Extended Key Usage: *\n\s*TLS Web Client Authentication\n/);
    assert.doesNotMatch(text, /Subject Alternative Name|Server Authentication/);
  });

  test('the three CAs: self-signed, CA:TRUE, keyCertSign, kubeadm\'s common names, 10 years', () => {
    for (const [file, cn] of [['ca.crt', 'kubernetes'], ['front-proxy-ca.crt', 'front-proxy-ca'], ['etcd/ca.crt', 'etcd-ca']] as const) {
      const text = openssl(['x509', '-in', file, '-noout', '-text', '-nameopt', 'RFC2253'], dir);
      assert.match(text, new RegExp(`Subject: CN=${cn},OU=dev\\n`), file);
      assert.match(text, new RegExp(`Issuer: CN=${cn},OU=dev\\n`), file);
      assert.match(text, /X509v3 Basic Constraints: critical\n\s*CA:TRUE\n/, file);
      assert.match(text, /X509v3 Key Usage: critical\n\s*Digital Signature, Key Encipherment, Certificate Sign\n/, file);
      assert.match(text, /X509v3 Subject Key Identifier/, file);
      const info = certificateInfo(openssl(['x509', '-in', file], dir));
      assert.equal(Math.round((info.notAfter.getTime() - info.notBefore.getTime()) / 86_400_000), 3651, file);
    }
  });

  test('every key is the RSA 2048 key of its certificate, in the PKCS#1 form kubeadm writes', async () => {
    const pairs = [['ca.crt', 'ca.key'], ['front-proxy-ca.crt', 'front-proxy-ca.key'], ['etcd/ca.crt', 'etcd/ca.key'], ['apiserver.crt', 'apiserver.key'], ['admin.crt', 'admin.key']];
    for (const [crt, key] of pairs as [string, string][]) {
      assert.equal(openssl(['x509', '-in', crt, '-noout', '-pubkey'], dir), openssl(['pkey', '-in', key, '-pubout'], dir), `${key} belongs to ${crt}`);
      assert.match(openssl(['pkey', '-in', key, '-noout', '-text'], dir), /^Private-Key: \(2048 bit, 2 primes\)/, key);
      assert.match(await readFile(join(dir, key), 'utf8'), /^-----BEGIN RSA PRIVATE KEY-----\n/, key);
    }
    assert.notEqual(openssl(['x509', '-in', 'ca.crt', '-noout', '-pubkey'], dir), openssl(['pkey', '-in', 'apiserver.key', '-pubout'], dir));
  });

  test('openssl pkey -pubout of sa.key is sa.pub', async () => {
    assert.equal(openssl(['pkey', '-in', 'sa.key', '-pubout'], dir), await readFile(join(dir, 'sa.pub'), 'utf8'));
    assert.match(openssl(['pkey', '-in', 'sa.key', '-noout', '-text'], dir), /^Private-Key: \(2048 bit, 2 primes\)/);
  });

  test('certificateInfo reads what openssl reads', async () => {
    const pem = await readFile(join(dir, 'apiserver.crt'), 'utf8');
    const info = certificateInfo(pem);
    const dates = openssl(['x509', '-in', 'apiserver.crt', '-noout', '-serial', '-startdate', '-enddate'], dir);
    assert.equal(`serial=${info.serialNumber}`, /serial=.*/.exec(dates)?.[0]);
    assert.equal(info.notBefore.getTime(), new Date(/notBefore=(.*)/.exec(dates)?.[1] ?? '').getTime());
    assert.equal(info.notAfter.getTime(), new Date(/notAfter=(.*)/.exec(dates)?.[1] ?? '').getTime());
    assert.equal(info.subject.commonName, 'kube-apiserver');
    assert.deepEqual([info.issuer.commonName, info.issuer.organizationalUnits], ['kubernetes', ['dev']]);
    assert.deepEqual(info.dnsNames, first.apiServerSans.dns);
    assert.deepEqual(info.ipAddresses, first.apiServerSans.ips);
    assert.deepEqual(info.extendedKeyUsages, ['serverAuth']);
    assert.equal(info.isCa, false);
    assert.equal(info.notAfter.getTime() - info.notBefore.getTime(), 366 * 86_400_000);
  });

  test('certificateInfo reads a certificate openssl made: several groups, a quoted SAN, IPv6', async () => {
    const key = join(root, 'other.key');
    const crt = join(root, 'other.crt');
    openssl(['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', key, '-out', crt, '-days', '2', '-subj', '/O=system:masters/O=team, one/CN=jane',
      '-addext', 'subjectAltName=DNS:api.example,IP:10.0.0.1,IP:::1,email:jane@example.com', '-addext', 'extendedKeyUsage=clientAuth,serverAuth']);
    const info = certificateInfo(await readFile(crt, 'utf8'));
    assert.deepEqual(info.subject.organizations, ['system:masters', 'team, one']);
    assert.equal(info.subject.commonName, 'jane');
    assert.deepEqual(info.dnsNames, ['api.example']);
    assert.deepEqual(info.ipAddresses, ['10.0.0.1', '0:0:0:0:0:0:0:1']);
    assert.deepEqual(info.extendedKeyUsages, ['clientAuth', 'serverAuth']);
  });

  test('TLS: openssl s_client trusts the API server certificate by ca.crt for 127.0.0.1 and the control-plane name, not for another address; the server accepts the admin certificate', async () => {
    const read = (f: string) => readFile(join(dir, f));
    const server = createServer({ key: await read('apiserver.key'), cert: await read('apiserver.crt'), ca: await read('ca.crt'), requestCert: true, rejectUnauthorized: true }, (socket) => {
      socket.end(`hello ${socket.getPeerCertificate().subject.CN}\n`);
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const port = (server.address() as AddressInfo).port;
    const client = async (check: string[]): Promise<string> => {
      const r = await execFileAsync(OPENSSL, ['s_client', '-connect', `127.0.0.1:${port}`, '-CAfile', 'ca.crt', '-cert', 'admin.crt', '-key', 'admin.key', '-ign_eof', ...check], { cwd: dir, env: C_LOCALE, timeout: 30_000 })
        .catch((e: { stdout?: string; stderr?: string }) => ({ stdout: e.stdout ?? '', stderr: e.stderr ?? '' }));
      return `${r.stdout}${r.stderr}`;
    };
    try {
      const byIp = await client(['-verify_ip', '127.0.0.1', '-verify_return_error']);
      assert.match(byIp, /Verify return code: 0 \(ok\)/);
      assert.match(byIp, /hello kubernetes-admin/);
      const byName = await client(['-verify_hostname', 'control-plane.devcluster.internal', '-verify_return_error']);
      assert.match(byName, /Verify return code: 0 \(ok\)/);
      const wrong = await client(['-verify_ip', '192.168.5.99', '-verify_return_error']);
      assert.match(wrong, /IP address mismatch/);
      assert.doesNotMatch(wrong, /hello/);
    } finally {
      await new Promise((resolve) => server.close(resolve));
    }
  });

  test('a second run keeps every file byte for byte', async () => {
    const before = await snapshotTree(dir);
    const again = await createClusterPki(dir, request);
    assert.deepEqual(new Set(Object.values(ACTIONS(again))), new Set(['kept']));
    assert.deepEqual(await snapshotTree(dir), before);
  });

  test('a new guest address reissues only the API server certificate, from the same CA', async () => {
    const before = await snapshotTree(dir);
    const moved = await createClusterPki(dir, { ...request, apiServerSans: { ...request.apiServerSans, ips: ['192.168.5.23', '127.0.0.1'] } });
    assert.deepEqual(ACTIONS(moved), { ca: 'kept', 'front-proxy-ca': 'kept', 'etcd-ca': 'kept', sa: 'kept', apiserver: 'reissued', admin: 'kept' });
    assert.equal(moved.outcomes.find((o) => o.item === 'apiserver')?.reason, 'it does not cover 192.168.5.23');
    const after = await snapshotTree(dir);
    const changed = Object.keys(after).filter((k) => after[k] !== before[k]).sort();
    assert.deepEqual(changed, ['/apiserver.crt', '/apiserver.key']);
    assert.equal(openssl(['verify', '-CAfile', 'ca.crt', 'apiserver.crt'], dir), 'apiserver.crt: OK\n');
    assert.match(openssl(['x509', '-in', 'apiserver.crt', '-noout', '-ext', 'subjectAltName'], dir), /IP Address:192\.168\.5\.23/);
  });

  test('a broken leaf is reissued, the rest kept: a missing key, a certificate that is not one', async () => {
    await unlink(join(dir, 'apiserver.key'));
    await writeFile(join(dir, 'admin.crt'), 'not a certificate\n');
    const before = await snapshotTree(dir);
    const repaired = await createClusterPki(dir, request);
    assert.deepEqual(ACTIONS(repaired), { ca: 'kept', 'front-proxy-ca': 'kept', 'etcd-ca': 'kept', sa: 'kept', apiserver: 'reissued', admin: 'reissued' });
    assert.equal(repaired.outcomes.find((o) => o.item === 'admin')?.reason, 'its certificate file is not a PEM certificate');
    assert.equal(openssl(['verify', '-CAfile', 'ca.crt', 'apiserver.crt', 'admin.crt'], dir), 'apiserver.crt: OK\nadmin.crt: OK\n');
    assert.equal(before['/ca.crt'], (await snapshotTree(dir))['/ca.crt']);
  });

  test('sa.pub that does not match sa.key is rewritten from it; sa.key stays', async () => {
    const saKey = await readFile(join(dir, 'sa.key'), 'utf8');
    await copyFile(join(dir, 'apiserver.crt'), join(dir, 'sa.pub'));
    const r = await createClusterPki(dir, request);
    assert.equal(r.outcomes.find((o) => o.item === 'sa')?.action, 'reissued');
    assert.equal(await readFile(join(dir, 'sa.key'), 'utf8'), saKey);
    assert.equal(openssl(['pkey', '-in', 'sa.key', '-pubout'], dir), await readFile(join(dir, 'sa.pub'), 'utf8'));
  });
});

describe('cluster PKI refusals change nothing', { skip }, () => {
  let root: string;
  let dir: string;

  before(async () => {
    root = await tempDir('devcluster-pki-refusal-');
    dir = join(root, 'pki');
    await createClusterPki(dir, request);
  });

  after(async () => {
    if (root !== undefined) await rm(root, { recursive: true, force: true });
  });

  test('bad input: nothing is created in a new directory, nothing changes in an existing one', async () => {
    const fresh = join(root, 'fresh');
    const bad = { ...request, apiServerSans: { dns: [], ips: ['192.168.5.256'] } };
    assert.equal((await refusal(createClusterPki(fresh, bad))).id, 'KUBE_PKI_INPUT_INVALID');
    assert.equal(existsSync(fresh), false);
    const before = await snapshotTree(dir);
    assert.equal((await refusal(createClusterPki(dir, bad))).id, 'KUBE_PKI_INPUT_INVALID');
    assert.deepEqual(await snapshotTree(dir), before);
  });

  test('a damaged CA is never replaced: not PEM, the wrong key, a missing key, a leaf in its place, expired', async () => {
    const cases: [string, (d: string) => Promise<void>, RegExp, Partial<ClusterPkiRequest>?][] = [
      ['not PEM', (d) => writeFile(join(d, 'ca.crt'), 'garbage\n'), /ca\.crt cannot be used: it is not a PEM certificate/],
      ['wrong key', (d) => copyFile(join(d, 'front-proxy-ca.key'), join(d, 'ca.key')), /ca\.key cannot be used: it is not the key of .*ca\.crt/],
      ['missing key', (d) => unlink(join(d, 'etcd', 'ca.key')), /etcd\/ca\.key cannot be used: it is missing/],
      ['a leaf in its place', (d) => copyFile(join(d, 'apiserver.crt'), join(d, 'front-proxy-ca.crt')), /front-proxy-ca\.crt cannot be used: it is not a CA certificate/],
      ['expired', async () => {}, /ca\.crt cannot be used: it expired on /, { now: new Date(Date.now() + 3660 * 86_400_000), validityDays: 1 }],
    ];
    for (const [name, damage, message, change] of cases) {
      const d = join(root, name.replace(/ /g, '-'));
      await cp(dir, d, { recursive: true });
      await damage(d);
      const damaged = await snapshotTree(d);
      const r = await refusal(createClusterPki(d, { ...request, ...change }));
      assert.equal(r.id, 'KUBE_PKI_UNUSABLE', name);
      assert.match(r.message, message, name);
      assert.deepEqual(await snapshotTree(d), damaged, `${name}: nothing written`);
    }
  });

  test('a CA key without its certificate (an interrupted first run) gives a new CA and new leaves', async () => {
    const oldCa = await readFile(join(dir, 'ca.crt'), 'utf8');
    await unlink(join(dir, 'ca.crt'));
    const r = await createClusterPki(dir, request);
    assert.deepEqual(ACTIONS(r), { ca: 'created', 'front-proxy-ca': 'kept', 'etcd-ca': 'kept', sa: 'kept', apiserver: 'reissued', admin: 'reissued' });
    assert.match(r.outcomes[0]?.reason ?? '', /ca\.key had no certificate beside it/);
    assert.equal(r.outcomes.find((o) => o.item === 'apiserver')?.reason, 'the CA is new');
    assert.notEqual(await readFile(join(dir, 'ca.crt'), 'utf8'), oldCa);
    assert.equal(openssl(['verify', '-CAfile', 'ca.crt', 'apiserver.crt', 'admin.crt'], dir), 'apiserver.crt: OK\nadmin.crt: OK\n');
  });
});

describe('node-forge is loaded when a certificate is made, not before', () => {
  test('importing the PKI module loads no node-forge; creating a PKI does', async () => {
    const dir = await tempDir('devcluster-pki-imports-');
    try {
      const record = join(dir, 'imports.txt');
      const script = [
        `const pki = await import(${JSON.stringify(pathToFileURL(join(REPO, 'src', 'kube', 'pki.ts')).href)});`,
        "const { appendFileSync } = await import('node:fs');",
        `appendFileSync(${JSON.stringify(record)}, 'IMPORTED\\n');`,
        `await pki.createClusterPki(${JSON.stringify(join(dir, 'pki'))}, ${JSON.stringify(request)});`,
      ].join('\n');
      await execFileAsync(process.execPath, ['--import', join(REPO, 'test', 'helpers', 'record-imports.ts'), '--input-type=module', '-e', script], {
        env: { ...process.env, RECORD_IMPORTS: record },
        timeout: 60_000,
      });
      const lines = (await readFile(record, 'utf8')).split('\n');
      const mark = lines.indexOf('IMPORTED');
      assert.ok(mark > 0, 'the import hook recorded the PKI module before the mark');
      const forge = (l: string): boolean => l.includes('/node_modules/node-forge/');
      assert.deepEqual(lines.slice(0, mark).filter(forge), []);
      assert.ok(lines.slice(mark).some(forge), 'node-forge is loaded to make the certificates');
      assert.equal(existsSync(join(dir, 'pki', 'apiserver.crt')), true);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
