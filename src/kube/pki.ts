import { X509Certificate, createPrivateKey, createPublicKey, generateKeyPair } from 'node:crypto';
import type { KeyObject } from 'node:crypto';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { permissionError, readTextFile, writeFileAtomic } from '../profile/atomic.ts';
import { DevclusterError } from '../ui/errors.ts';
import { certificateInfo } from './certificate-info.ts';
import { adminSpec, apiServerSpec, caSubject, isDueForRenewal, planClusterPki, validityWindow } from './pki-plan.ts';
import type { CaName, ClusterPkiRequest, LeafSpec, PkiPlan } from './pki-plan.ts';
import { issueCertificate } from './x509-issue.ts';
import './pki-errors.ts';

export { certificateInfo } from './certificate-info.ts';
export type { CertificateInfo, DistinguishedName } from './certificate-info.ts';
export type { ClusterPkiRequest } from './pki-plan.ts';

/**
 * The cluster's PKI, made on the host and handed to `kubeadm init`, which
 * reuses every certificate and key it finds valid in its certificatesDir and
 * generates only the rest (the kubelet, front-proxy and etcd leaves). The
 * three CAs, the service-account key pair and the API server certificate are
 * kubeadm's files; admin.crt/admin.key are the host kubeconfig's client
 * certificate and never go to the guest.
 *
 * Keys are RSA-2048, kubeadm's default encryptionAlgorithm (v1beta4), so the
 * certificates kubeadm adds are of the same kind. Keys are written as kubeadm
 * writes them (PKCS#1 PEM, mode 0600); sa.pub is a PKIX public key.
 */

/** Paths relative to the PKI directory, '/'-separated as in the guest's /etc/kubernetes/pki. */
export const PKI_FILES = {
  caCert: 'ca.crt',
  caKey: 'ca.key',
  frontProxyCaCert: 'front-proxy-ca.crt',
  frontProxyCaKey: 'front-proxy-ca.key',
  etcdCaCert: 'etcd/ca.crt',
  etcdCaKey: 'etcd/ca.key',
  serviceAccountKey: 'sa.key',
  serviceAccountPublicKey: 'sa.pub',
  apiServerCert: 'apiserver.crt',
  apiServerKey: 'apiserver.key',
  adminCert: 'admin.crt',
  adminKey: 'admin.key',
} as const;

export type PkiFile = keyof typeof PKI_FILES;

/** The files the guest's certificatesDir gets; the admin pair stays on the host. */
export const KUBEADM_PKI_FILES: readonly string[] = Object.entries(PKI_FILES)
  .filter(([k]) => k !== 'adminCert' && k !== 'adminKey')
  .map(([, v]) => v);

export type PkiItem = CaName | 'sa' | 'apiserver' | 'admin';

export interface PkiItemOutcome {
  item: PkiItem;
  action: 'created' | 'kept' | 'reissued';
  /** Why a file was made again (for the start's summary: "reissued apiserver: it does not cover 192.168.5.15"). */
  reason?: string;
}

export interface ClusterPki {
  dir: string;
  /** Absolute paths of every file. */
  paths: Record<PkiFile, string>;
  /** One entry per item, in the order ca, front-proxy-ca, etcd-ca, sa, apiserver, admin. */
  outcomes: PkiItemOutcome[];
  /** The names the API server certificate must cover (it may cover more: earlier addresses are not removed). */
  apiServerSans: { dns: string[]; ips: string[] };
}

const CA_FILES: Readonly<Record<CaName, { cert: PkiFile; key: PkiFile }>> = {
  ca: { cert: 'caCert', key: 'caKey' },
  'front-proxy-ca': { cert: 'frontProxyCaCert', key: 'frontProxyCaKey' },
  'etcd-ca': { cert: 'etcdCaCert', key: 'etcdCaKey' },
};

const SECRET_MODE = 0o600;
const PUBLIC_MODE = 0o644;

/**
 * Makes the cluster's PKI in `dir`, or brings an existing one up to date:
 * files that are valid are kept as they are (the CAs are never replaced); an
 * API server or admin certificate that is missing, expiring, not signed by
 * the CA, or does not cover a requested name is reissued from the same CA.
 * The request is checked and every existing file judged before anything is
 * written, so a refusal (KUBE_PKI_INPUT_INVALID, KUBE_PKI_UNUSABLE) changes
 * nothing. Callers hold the profile lock.
 */
export async function createClusterPki(dir: string, request: ClusterPkiRequest): Promise<ClusterPki> {
  const plan = planClusterPki(request);
  const paths = Object.fromEntries(Object.entries(PKI_FILES).map(([k, v]) => [k, join(dir, ...v.split('/'))])) as Record<PkiFile, string>;

  const cas = {
    ca: await judgeCa(paths, 'ca', plan),
    'front-proxy-ca': await judgeCa(paths, 'front-proxy-ca', plan),
    'etcd-ca': await judgeCa(paths, 'etcd-ca', plan),
  };
  const sa = await judgeServiceAccountKey(paths);
  const clusterCa = cas.ca.kind === 'keep' ? cas.ca.pair.cert : undefined;
  const apiServer = await judgeLeaf(paths.apiServerCert, paths.apiServerKey, apiServerSpec(plan), clusterCa, plan.now);
  const admin = await judgeLeaf(paths.adminCert, paths.adminKey, adminSpec(), clusterCa, plan.now);

  await mkdir(join(dir, 'etcd'), { recursive: true, mode: 0o700 }).catch((e: unknown) => {
    throw permissionError(e) ?? e;
  });
  const [clusterCaPair] = await Promise.all([
    settleCa(paths, 'ca', cas.ca, plan),
    settleCa(paths, 'front-proxy-ca', cas['front-proxy-ca'], plan),
    settleCa(paths, 'etcd-ca', cas['etcd-ca'], plan),
    settleServiceAccountKey(paths, sa),
  ]);
  await Promise.all([
    settleLeaf(paths.apiServerCert, paths.apiServerKey, apiServerSpec(plan), apiServer, clusterCaPair, plan),
    settleLeaf(paths.adminCert, paths.adminKey, adminSpec(), admin, clusterCaPair, plan),
  ]);

  return {
    dir,
    paths,
    outcomes: [
      outcome('ca', cas.ca),
      outcome('front-proxy-ca', cas['front-proxy-ca']),
      outcome('etcd-ca', cas['etcd-ca']),
      outcome('sa', sa),
      outcome('apiserver', apiServer),
      outcome('admin', admin),
    ],
    apiServerSans: plan.apiServerSans,
  };
}

interface CaPair {
  cert: X509Certificate;
  certPem: string;
  keyPem: string;
}

type CaJudgement = { kind: 'keep'; pair: CaPair } | { kind: 'create'; reason?: string };
type ServiceAccountJudgement = { kind: 'keep' } | { kind: 'create' } | { kind: 'repair'; keyPem: string; reason: string };
type LeafJudgement = { kind: 'keep' } | { kind: 'create' } | { kind: 'reissue'; reason: string };

function outcome(item: PkiItem, j: CaJudgement | ServiceAccountJudgement | LeafJudgement): PkiItemOutcome {
  const action = j.kind === 'keep' ? 'kept' : j.kind === 'create' ? 'created' : 'reissued';
  const reason = 'reason' in j ? j.reason : undefined;
  return reason === undefined ? { item, action } : { item, action, reason };
}

function unusable(path: string, problem: string, cause?: unknown): DevclusterError {
  return new DevclusterError('KUBE_PKI_UNUSABLE', `${path} cannot be used: ${problem}`, {
    advice:
      'devcluster does not replace a cluster\'s CA or service-account key on its own: the cluster, its kubeconfigs and its tokens trust them. ' +
      'Put the original file back, or move the pki directory aside and create the cluster again (devcluster delete, then devcluster start).',
    details: { path },
    ...(cause === undefined ? {} : { cause }),
  });
}

async function judgeCa(paths: Record<PkiFile, string>, name: CaName, plan: PkiPlan): Promise<CaJudgement> {
  const certPath = paths[CA_FILES[name].cert];
  const keyPath = paths[CA_FILES[name].key];
  const [certPem, keyPem] = [await readTextFile(certPath), await readTextFile(keyPath)];
  if (certPem === undefined && keyPem === undefined) return { kind: 'create' };
  // The key is written before the certificate, so a key alone is what an
  // interrupted first run leaves: nothing can trust a CA whose certificate
  // was never written.
  if (certPem === undefined) return { kind: 'create', reason: `${keyPath} had no certificate beside it (an interrupted run); a new CA was made` };
  if (keyPem === undefined) throw unusable(keyPath, `it is missing while ${certPath} exists; kubeadm cannot sign the cluster's other certificates without it`);
  let cert: X509Certificate;
  try {
    cert = new X509Certificate(certPem);
  } catch (e) {
    throw unusable(certPath, 'it is not a PEM certificate', e);
  }
  let key: KeyObject;
  try {
    key = createPrivateKey(keyPem);
  } catch (e) {
    throw unusable(keyPath, 'it is not an unencrypted PEM private key', e);
  }
  if (!cert.ca) throw unusable(certPath, 'it is not a CA certificate (CA:TRUE is missing)');
  if (!cert.checkPrivateKey(key)) throw unusable(keyPath, `it is not the key of ${certPath}`);
  if (key.asymmetricKeyType !== 'rsa') throw unusable(keyPath, `it is an ${key.asymmetricKeyType ?? 'unknown'} key; devcluster signs with RSA CA keys`);
  if (cert.validToDate <= plan.now) throw unusable(certPath, `it expired on ${cert.validToDate.toISOString()}`);
  return { kind: 'keep', pair: { cert, certPem, keyPem } };
}

async function settleCa(paths: Record<PkiFile, string>, name: CaName, j: CaJudgement, plan: PkiPlan): Promise<CaPair> {
  if (j.kind === 'keep') return j.pair;
  const key = await newRsaKey();
  const keyPem = key.privateKey.export({ type: 'pkcs1', format: 'pem' }).toString();
  const { notBefore, notAfter } = validityWindow(plan.now, plan.caValidityDays);
  const certPem = await issueCertificate(
    { subject: caSubject(name, plan.clusterName), notBefore, notAfter, publicKeyPem: spkiPem(key.publicKey), ca: true },
    { selfSigned: { keyPem } },
  );
  await writeFileAtomic(paths[CA_FILES[name].key], keyPem, { mode: SECRET_MODE });
  await writeFileAtomic(paths[CA_FILES[name].cert], certPem, { mode: PUBLIC_MODE });
  return { cert: new X509Certificate(certPem), certPem, keyPem };
}

/** kubeadm keeps any sa.key it can parse; sa.pub is derived from it, so a wrong or missing one is rewritten. */
async function judgeServiceAccountKey(paths: Record<PkiFile, string>): Promise<ServiceAccountJudgement> {
  const keyPem = await readTextFile(paths.serviceAccountKey);
  if (keyPem === undefined) return { kind: 'create' };
  let key: KeyObject;
  try {
    key = createPrivateKey(keyPem);
  } catch (e) {
    throw unusable(paths.serviceAccountKey, 'it is not an unencrypted PEM private key', e);
  }
  const pubPem = await readTextFile(paths.serviceAccountPublicKey);
  const expected = spkiPem(createPublicKey(key));
  if (pubPem === undefined) return { kind: 'repair', keyPem, reason: `${paths.serviceAccountPublicKey} was missing; it was written from sa.key` };
  let matches = false;
  try {
    matches = spkiPem(createPublicKey(pubPem)) === expected;
  } catch {
    // not a public key: rewritten below
  }
  return matches ? { kind: 'keep' } : { kind: 'repair', keyPem, reason: `${paths.serviceAccountPublicKey} did not hold sa.key's public key; it was rewritten` };
}

async function settleServiceAccountKey(paths: Record<PkiFile, string>, j: ServiceAccountJudgement): Promise<void> {
  if (j.kind === 'keep') return;
  let keyPem: string;
  if (j.kind === 'repair') {
    keyPem = j.keyPem;
  } else {
    keyPem = (await newRsaKey()).privateKey.export({ type: 'pkcs1', format: 'pem' }).toString();
    await writeFileAtomic(paths.serviceAccountKey, keyPem, { mode: SECRET_MODE });
  }
  await writeFileAtomic(paths.serviceAccountPublicKey, spkiPem(createPublicKey(keyPem)), { mode: PUBLIC_MODE });
}

/**
 * Keep, create or reissue a leaf. `ca` is the kept cluster CA, or undefined
 * when a new one is being made (then every leaf is made again).
 */
async function judgeLeaf(certPath: string, keyPath: string, spec: LeafSpec, ca: X509Certificate | undefined, now: Date): Promise<LeafJudgement> {
  const [certPem, keyPem] = [await readTextFile(certPath), await readTextFile(keyPath)];
  if (certPem === undefined && keyPem === undefined) return { kind: 'create' };
  const problem = leafProblem(certPem, keyPem, spec, ca, now);
  return problem === undefined ? { kind: 'keep' } : { kind: 'reissue', reason: problem };
}

/** Why an existing leaf cannot stay, or undefined when it can. */
export function leafProblem(certPem: string | undefined, keyPem: string | undefined, spec: LeafSpec, ca: X509Certificate | undefined, now: Date): string | undefined {
  if (ca === undefined) return 'the CA is new';
  if (certPem === undefined) return 'its certificate was missing';
  if (keyPem === undefined) return 'its key was missing';
  let cert: X509Certificate;
  let key: KeyObject;
  try {
    cert = new X509Certificate(certPem);
  } catch {
    return 'its certificate file is not a PEM certificate';
  }
  try {
    key = createPrivateKey(keyPem);
  } catch {
    return 'its key file is not an unencrypted PEM private key';
  }
  if (!cert.checkPrivateKey(key)) return 'its key does not match its certificate';
  if (!cert.checkIssued(ca) || !cert.verify(ca.publicKey)) return 'it is not signed by the cluster CA';
  const info = certificateInfo(cert);
  if (info.notBefore > now) return `it is not valid before ${info.notBefore.toISOString()}`;
  if (isDueForRenewal(info.notBefore, info.notAfter, now)) return `it expires on ${info.notAfter.toISOString()}`;
  if (info.subject.commonName !== spec.subject.commonName || !sameSet(info.subject.organizations, spec.subject.organizations)) {
    return `its subject is ${info.subject.text.replace(/\n/g, ', ')}, not the one kubeadm expects`;
  }
  if (!info.extendedKeyUsages.includes(spec.usage)) return `it lacks the ${spec.usage} extended key usage`;
  const missing = [...spec.dns.filter((d) => !info.dnsNames.includes(d)), ...spec.ips.filter((ip) => !info.ipAddresses.includes(ip))];
  if (missing.length > 0) return `it does not cover ${missing.join(', ')}`;
  return undefined;
}

async function settleLeaf(certPath: string, keyPath: string, spec: LeafSpec, j: LeafJudgement, ca: CaPair, plan: PkiPlan): Promise<void> {
  if (j.kind === 'keep') return;
  const key = await newRsaKey();
  const { notBefore, notAfter } = validityWindow(plan.now, plan.validityDays, ca.cert.validToDate);
  const certPem = await issueCertificate(
    { subject: spec.subject, notBefore, notAfter, publicKeyPem: spkiPem(key.publicKey), ca: false, usage: spec.usage, dns: spec.dns, ips: spec.ips },
    { ca: { certPem: ca.certPem, keyPem: ca.keyPem } },
  );
  await writeFileAtomic(keyPath, key.privateKey.export({ type: 'pkcs1', format: 'pem' }), { mode: SECRET_MODE });
  await writeFileAtomic(certPath, certPem, { mode: PUBLIC_MODE });
}

function sameSet(a: readonly string[], b: readonly string[]): boolean {
  return a.length === b.length && [...a].sort().join('\n') === [...b].sort().join('\n');
}

const generateKeyPairAsync = promisify(generateKeyPair);

function newRsaKey(): Promise<{ publicKey: KeyObject; privateKey: KeyObject }> {
  return generateKeyPairAsync('rsa', { modulusLength: 2048, publicExponent: 0x10001 });
}

function spkiPem(key: KeyObject): string {
  return key.export({ type: 'spki', format: 'pem' }).toString();
}
