/**
 * The cluster PKI's choices, without files: the API server's names, the
 * subjects and usages kubeadm expects, request validation, lifetimes, the
 * subjectAltName reader, and the reasons a leaf certificate is reissued
 * (certificates made in memory with our own issuer; openssl checks them in
 * test/contract/kube-pki.test.ts).
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { X509Certificate, generateKeyPairSync } from 'node:crypto';
import {
  ADMIN_COMMON_NAME,
  CERTIFICATE_BACKDATE_MS,
  CLUSTER_ADMINS_GROUP,
  adminSpec,
  apiServerAltNames,
  apiServerSpec,
  caSubject,
  firstServiceAddress,
  isDueForRenewal,
  planClusterPki,
  validityWindow,
} from '../../src/kube/pki-plan.ts';
import type { ClusterPkiRequest, LeafSpec } from '../../src/kube/pki-plan.ts';
import { parseSubjectAltNames } from '../../src/kube/certificate-info.ts';
import { leafProblem } from '../../src/kube/pki.ts';
import { issueCertificate } from '../../src/kube/x509-issue.ts';
import { isDevclusterError } from '../../src/ui/errors.ts';

const DAY = 24 * 3600 * 1000;

const base: ClusterPkiRequest = {
  apiServerSans: { dns: ['control-plane.devcluster.internal'], ips: ['192.168.5.15'] },
  clusterName: 'dev',
  nodeName: 'dev',
  validityDays: 365,
  now: new Date('2026-11-28T12:00:00.250Z'),
};

function refusal(fn: () => unknown): { id: string; message: string; input: boolean } {
  try {
    fn();
  } catch (e) {
    if (isDevclusterError(e)) return { id: e.id, message: e.message, input: e.input };
    throw e;
  }
  assert.fail('expected a refusal');
}

describe('API server names', () => {
  test('the names kubeadm checks apiserver.crt for, localhost, then the extras, in that order', () => {
    assert.deepEqual(
      apiServerAltNames({ nodeName: 'dev', serviceCidr: '10.96.0.0/12', dnsDomain: 'cluster.local', dns: ['control-plane.devcluster.internal'], ips: ['192.168.5.15', '127.0.0.1'] }),
      {
        dns: ['dev', 'kubernetes', 'kubernetes.default', 'kubernetes.default.svc', 'kubernetes.default.svc.cluster.local', 'localhost', 'control-plane.devcluster.internal'],
        ips: ['10.96.0.1', '127.0.0.1', '192.168.5.15'],
      },
    );
  });

  test('the ClusterIP follows the service network and the domain follows dnsDomain; names are lowercased and deduplicated', () => {
    const sans = apiServerAltNames({ nodeName: 'node-1', serviceCidr: '172.20.0.0/16', dnsDomain: 'corp.example', dns: ['Kubernetes', 'API.example'], ips: ['172.20.0.1'] });
    assert.deepEqual(sans.dns, ['node-1', 'kubernetes', 'kubernetes.default', 'kubernetes.default.svc', 'kubernetes.default.svc.corp.example', 'localhost', 'api.example']);
    assert.deepEqual(sans.ips, ['172.20.0.1', '127.0.0.1']);
  });

  test('the first service address is the network address plus one, host bits cleared', () => {
    assert.equal(firstServiceAddress('10.96.0.0/12'), '10.96.0.1');
    assert.equal(firstServiceAddress('10.100.7.9/16'), '10.100.0.1');
    assert.equal(firstServiceAddress('192.168.1.0/30'), '192.168.1.1');
    for (const bad of ['10.96.0.0', '10.96.0.0/31', '10.96.0.0/33', 'fd00::/108', 'ten']) {
      assert.equal(refusal(() => firstServiceAddress(bad)).id, 'KUBE_PKI_INPUT_INVALID', bad);
    }
  });
});

describe('subjects and usages', () => {
  test('the admin certificate is kubeadm >= 1.29 admin.conf: CN kubernetes-admin in group kubeadm:cluster-admins, client auth', () => {
    const spec = adminSpec();
    assert.equal(spec.subject.commonName, ADMIN_COMMON_NAME);
    assert.equal(ADMIN_COMMON_NAME, 'kubernetes-admin');
    assert.deepEqual(spec.subject.organizations, [CLUSTER_ADMINS_GROUP]);
    assert.equal(CLUSTER_ADMINS_GROUP, 'kubeadm:cluster-admins');
    assert.notDeepEqual(spec.subject.organizations, ['system:masters']);
    assert.equal(spec.usage, 'clientAuth');
    assert.deepEqual([spec.dns, spec.ips], [[], []]);
  });

  test('the API server certificate is CN kube-apiserver, server auth, with the planned names', () => {
    const plan = planClusterPki(base);
    const spec = apiServerSpec(plan);
    assert.deepEqual(spec.subject, { commonName: 'kube-apiserver', organizations: [], organizationalUnits: [] });
    assert.equal(spec.usage, 'serverAuth');
    assert.deepEqual(spec.ips, plan.apiServerSans.ips);
    assert.ok(spec.dns.includes('control-plane.devcluster.internal'));
  });

  test("the CAs carry kubeadm's common names and the cluster name as OU", () => {
    assert.deepEqual(caSubject('ca', 'dev'), { commonName: 'kubernetes', organizations: [], organizationalUnits: ['dev'] });
    assert.equal(caSubject('front-proxy-ca', 'dev').commonName, 'front-proxy-ca');
    assert.equal(caSubject('etcd-ca', 'dev').commonName, 'etcd-ca');
  });
});

describe('request validation', () => {
  test('a good request is planned with the defaults and now in whole seconds', () => {
    const plan = planClusterPki(base);
    assert.equal(plan.caValidityDays, 3650);
    assert.equal(plan.now.toISOString(), '2026-11-28T12:00:00.000Z');
    assert.deepEqual(plan.apiServerSans.ips, ['10.96.0.1', '127.0.0.1', '192.168.5.15']);
  });

  test('every problem is named in one usage error', () => {
    const r = refusal(() =>
      planClusterPki({
        ...base,
        apiServerSans: { dns: ['bad_name', '-x.example'], ips: ['192.168.5.300', 'fe80::1'] },
        clusterName: 'a\nb',
        nodeName: 'Dev',
        serviceCidr: '10.96.0.0/31',
        dnsDomain: 'cluster..local',
        validityDays: 0,
      }),
    );
    assert.equal(r.id, 'KUBE_PKI_INPUT_INVALID');
    assert.equal(r.input, true);
    for (const part of ['"bad_name"', '"-x.example"', '"192.168.5.300"', '"fe80::1"', 'cluster name "a\\nb"', 'node name "Dev"', '"10.96.0.0/31"', '"cluster..local"', 'lifetime 0 days']) {
      assert.ok(r.message.includes(part), `${part} in: ${r.message}`);
    }
  });

  test('lifetimes: whole days, the leaf no longer than the CA', () => {
    assert.match(refusal(() => planClusterPki({ ...base, validityDays: 1.5 })).message, /lifetime 1.5 days/);
    assert.match(refusal(() => planClusterPki({ ...base, validityDays: 400, caValidityDays: 365 })).message, /must not exceed the CA's \(365 days\)/);
    assert.match(refusal(() => planClusterPki({ ...base, caValidityDays: -1 })).message, /CA lifetime -1 days/);
    assert.equal(planClusterPki({ ...base, validityDays: 365, caValidityDays: 365 }).validityDays, 365);
  });

  test('missing SAN lists and an invalid date are refused', () => {
    assert.match(refusal(() => planClusterPki({ ...base, apiServerSans: {} as ClusterPkiRequest['apiServerSans'] })).message, /dns list and an ips list/);
    assert.match(refusal(() => planClusterPki({ ...base, now: new Date('nonsense') })).message, /valid Date/);
  });
});

describe('lifetimes', () => {
  test('notBefore is backdated 24 hours for a lagging guest clock; a leaf ends with its CA at the latest', () => {
    const now = new Date('2026-11-28T12:00:00Z');
    const w = validityWindow(now, 365);
    assert.equal(w.notBefore.getTime(), now.getTime() - CERTIFICATE_BACKDATE_MS);
    assert.equal(CERTIFICATE_BACKDATE_MS, DAY);
    assert.equal(w.notAfter.getTime(), now.getTime() + 365 * DAY);
    const caEnd = new Date(now.getTime() + 100 * DAY);
    assert.equal(validityWindow(now, 365, caEnd).notAfter.getTime(), caEnd.getTime());
  });

  test('renewal: within 30 days of the end, or the last third of a short lifetime', () => {
    const start = new Date('2026-01-01T00:00:00Z');
    const year = new Date(start.getTime() + 365 * DAY);
    assert.equal(isDueForRenewal(start, year, new Date(year.getTime() - 31 * DAY)), false);
    assert.equal(isDueForRenewal(start, year, new Date(year.getTime() - 29 * DAY)), true);
    const short = new Date(start.getTime() + 3 * DAY);
    assert.equal(isDueForRenewal(start, short, new Date(start.getTime() + 1 * DAY)), false);
    assert.equal(isDueForRenewal(start, short, new Date(start.getTime() + 2.1 * DAY)), true);
  });
});

describe('subjectAltName text', () => {
  test("Node's format: DNS and IP entries, quoted values with commas, other types left out", () => {
    assert.deepEqual(parseSubjectAltNames('DNS:Kubernetes, IP Address:10.96.0.1, email:a@b, IP Address:0:0:0:0:0:0:0:1, DNS:"a, b", URI:http://x'), {
      dns: ['kubernetes', 'a, b'],
      ips: ['10.96.0.1', '0:0:0:0:0:0:0:1'],
    });
    assert.deepEqual(parseSubjectAltNames(''), { dns: [], ips: [] });
  });
});

describe('when a leaf certificate is reissued', () => {
  const now = new Date('2026-11-28T12:00:00Z');
  const pem = (k: ReturnType<typeof generateKeyPairSync>) => ({
    key: k.privateKey.export({ type: 'pkcs1', format: 'pem' }).toString(),
    pub: k.publicKey.export({ type: 'spki', format: 'pem' }).toString(),
  });
  const rsa = () => pem(generateKeyPairSync('rsa', { modulusLength: 2048 }));
  const caKey = rsa();
  const otherCaKey = rsa();
  const leafKey = rsa();
  const spec: LeafSpec = apiServerSpec(planClusterPki({ ...base, now }));

  async function makeCa(key: { key: string; pub: string }): Promise<string> {
    return issueCertificate(
      { subject: caSubject('ca', 'dev'), ...validityWindow(now, 3650), publicKeyPem: key.pub, ca: true },
      { selfSigned: { keyPem: key.key } },
    );
  }
  async function makeLeaf(caPem: string, caKeyPem: string, change: Partial<Parameters<typeof issueCertificate>[0]> = {}): Promise<string> {
    return issueCertificate(
      { subject: spec.subject, ...validityWindow(now, 365), publicKeyPem: leafKey.pub, ca: false, usage: spec.usage, dns: spec.dns, ips: spec.ips, ...change },
      { ca: { certPem: caPem, keyPem: caKeyPem } },
    );
  }

  test('each reason, and none for a certificate that fits', async () => {
    const caPem = await makeCa(caKey);
    const ca = new X509Certificate(caPem);
    const good = await makeLeaf(caPem, caKey.key);
    assert.equal(leafProblem(good, leafKey.key, spec, ca, now), undefined);

    assert.equal(leafProblem(good, leafKey.key, spec, undefined, now), 'the CA is new');
    assert.equal(leafProblem(undefined, leafKey.key, spec, ca, now), 'its certificate was missing');
    assert.equal(leafProblem(good, undefined, spec, ca, now), 'its key was missing');
    assert.equal(leafProblem('not a certificate', leafKey.key, spec, ca, now), 'its certificate file is not a PEM certificate');
    assert.equal(leafProblem(good, 'not a key', spec, ca, now), 'its key file is not an unencrypted PEM private key');
    assert.equal(leafProblem(good, otherCaKey.key, spec, ca, now), 'its key does not match its certificate');

    const otherCaPem = await makeCa(otherCaKey);
    assert.equal(leafProblem(await makeLeaf(otherCaPem, otherCaKey.key), leafKey.key, spec, ca, now), 'it is not signed by the cluster CA');

    const late = new Date(now.getTime() + 340 * DAY);
    assert.match(leafProblem(good, leafKey.key, spec, ca, late) ?? '', /^it expires on 2027-11-28/);
    assert.match(leafProblem(good, leafKey.key, spec, ca, new Date(now.getTime() - 2 * DAY)) ?? '', /^it is not valid before 2026-11-27/);

    const oldAdmin = await makeLeaf(caPem, caKey.key, { subject: { commonName: 'kube-apiserver', organizations: ['system:masters'], organizationalUnits: [] } });
    assert.equal(leafProblem(oldAdmin, leafKey.key, spec, ca, now), "its subject is O=system:masters, CN=kube-apiserver, not the one kubeadm expects");
    assert.equal(leafProblem(await makeLeaf(caPem, caKey.key, { usage: 'clientAuth' }), leafKey.key, spec, ca, now), 'it lacks the serverAuth extended key usage');

    const movedGuest = { ...spec, ips: [...spec.ips, '192.168.5.99'], dns: [...spec.dns, 'api.example'] };
    assert.equal(leafProblem(good, leafKey.key, movedGuest, ca, now), 'it does not cover api.example, 192.168.5.99');
    // Names it covers beyond the requested ones (an earlier address) are no reason.
    assert.equal(leafProblem(good, leafKey.key, { ...spec, ips: spec.ips.slice(0, 2) }, ca, now), undefined);
  });
});
