import { intToIpv4, isIpv4, parseCidr } from '../host/ipv4.ts';
import type { Ipv4Net } from '../host/ipv4.ts';
import { inputError } from '../ui/errors.ts';
import './pki-errors.ts';

/**
 * What the cluster's certificates must say, decided without touching a file:
 * names, subjects, usages and lifetimes, following kubeadm 1.37
 * (cmd/kubeadm/app/phases/certs/certlist.go, util/pkiutil/pki_helpers.go) so
 * `kubeadm init` accepts the files as its own and generates only the rest.
 */

export const DEFAULT_SERVICE_CIDR = '10.96.0.0/12';
export const DEFAULT_DNS_DOMAIN = 'cluster.local';
/** kubeadm's caCertificateValidityPeriod default (10 years). */
export const DEFAULT_CA_VALIDITY_DAYS = 3650;
const MAX_VALIDITY_DAYS = 36_500;
/**
 * notBefore lies this far before now: a guest clock that lags the host (after
 * the laptop slept, or before time sync) must still accept the certificates.
 * kubeadm backdates by 5 minutes; minikube by 24 hours for this reason.
 */
export const CERTIFICATE_BACKDATE_MS = 24 * 3600 * 1000;
const DAY_MS = 24 * 3600 * 1000;

export interface ClusterPkiRequest {
  /** Names and addresses the API server is reached by, beyond the ones every cluster has: the control-plane alias, the guest IP, a forwarded 127.0.0.1. */
  apiServerSans: { dns: readonly string[]; ips: readonly string[] };
  /** Shown in the CAs' subjects (OU), so a CA can be told apart by profile. Printable ASCII, at most 64 characters. */
  clusterName: string;
  /** The Kubernetes node name (kubeadm puts it in the API server certificate). */
  nodeName: string;
  /** Lifetime of the API server and admin certificates; kubeadm's default is 365. */
  validityDays: number;
  /** Lifetime of a new CA; default 3650 as kubeadm. */
  caValidityDays?: number;
  /** The service network; its first address is the `kubernetes` Service's ClusterIP. Default 10.96.0.0/12. */
  serviceCidr?: string;
  /** Cluster DNS domain; default cluster.local. */
  dnsDomain?: string;
  now?: Date;
}

/** A request that passed validation, every default filled in. */
export interface PkiPlan {
  clusterName: string;
  nodeName: string;
  validityDays: number;
  caValidityDays: number;
  /** Whole seconds: certificates carry no milliseconds, so comparisons stay exact. */
  now: Date;
  apiServerSans: { dns: string[]; ips: string[] };
}

export type ExtendedKeyUsage = 'serverAuth' | 'clientAuth';

export interface SubjectSpec {
  commonName: string;
  organizations: readonly string[];
  organizationalUnits: readonly string[];
}

/** A leaf certificate: what the subject, usage and names must be. */
export interface LeafSpec {
  subject: SubjectSpec;
  usage: ExtendedKeyUsage;
  dns: readonly string[];
  ips: readonly string[];
}

/** kubeadm's CA common names (certlist.go). */
export const CA_COMMON_NAMES = { ca: 'kubernetes', 'front-proxy-ca': 'front-proxy-ca', 'etcd-ca': 'etcd-ca' } as const;
export type CaName = keyof typeof CA_COMMON_NAMES;

/**
 * The group kubeadm >= 1.29 puts in admin.conf's client certificate. `kubeadm
 * init` binds it to the cluster-admin ClusterRole with the ClusterRoleBinding
 * of the same name (created through super-admin.conf, whose certificate is in
 * system:masters). Unlike system:masters it goes through RBAC, so deleting
 * that binding revokes it.
 */
export const CLUSTER_ADMINS_GROUP = 'kubeadm:cluster-admins';
export const ADMIN_COMMON_NAME = 'kubernetes-admin';
export const APISERVER_COMMON_NAME = 'kube-apiserver';

export function caSubject(ca: CaName, clusterName: string): SubjectSpec {
  return { commonName: CA_COMMON_NAMES[ca], organizations: [], organizationalUnits: [clusterName] };
}

export function apiServerSpec(plan: PkiPlan): LeafSpec {
  return {
    subject: { commonName: APISERVER_COMMON_NAME, organizations: [], organizationalUnits: [] },
    usage: 'serverAuth',
    dns: plan.apiServerSans.dns,
    ips: plan.apiServerSans.ips,
  };
}

export function adminSpec(): LeafSpec {
  return {
    subject: { commonName: ADMIN_COMMON_NAME, organizations: [CLUSTER_ADMINS_GROUP], organizationalUnits: [] },
    usage: 'clientAuth',
    dns: [],
    ips: [],
  };
}

/**
 * The API server certificate's names: the ones kubeadm would give it
 * (pkiutil.GetAPIServerAltNames: node name, the kubernetes Service's names,
 * its ClusterIP, plus the advertise address and control-plane endpoint the
 * caller passes), localhost and 127.0.0.1 for clients in the guest, then the
 * caller's extras. Duplicates are dropped, first occurrence kept. kubeadm
 * init does not check an existing apiserver.crt's names (only its chain), so
 * covering them is the host's job.
 */
export function apiServerAltNames(options: {
  nodeName: string;
  serviceCidr: string;
  dnsDomain: string;
  dns: readonly string[];
  ips: readonly string[];
}): { dns: string[]; ips: string[] } {
  const dns = [
    options.nodeName,
    'kubernetes',
    'kubernetes.default',
    'kubernetes.default.svc',
    `kubernetes.default.svc.${options.dnsDomain}`,
    'localhost',
    ...options.dns,
  ].map((d) => d.toLowerCase());
  const ips = [firstServiceAddress(options.serviceCidr), '127.0.0.1', ...options.ips];
  return { dns: [...new Set(dns)], ips: [...new Set(ips)] };
}

/** The first host address of the service network: the `kubernetes` Service's ClusterIP. */
export function firstServiceAddress(cidr: string): string {
  const net = serviceNetwork(cidr);
  if (net === undefined) {
    throw inputError('KUBE_PKI_INPUT_INVALID', `service network ${JSON.stringify(cidr)} is not an IPv4 network of at least 4 addresses`, {
      advice: 'Give it as address/prefix with a prefix of 30 or less, e.g. 10.96.0.0/12 (the Kubernetes default).',
    });
  }
  return intToIpv4(net.base + 1);
}

/** An IPv4 network given as address/prefix with room for the ClusterIP; undefined otherwise. */
function serviceNetwork(cidr: unknown): Ipv4Net | undefined {
  if (typeof cidr !== 'string' || !cidr.includes('/')) return undefined;
  const net = parseCidr(cidr);
  return net !== undefined && net.prefix <= 30 ? net : undefined;
}

const DNS_LABEL = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/;

/** An RFC 1123 subdomain, as Kubernetes requires of node names and as TLS clients match dNSName entries. */
export function isDnsSubdomain(name: string): boolean {
  return name.length > 0 && name.length <= 253 && name.split('.').every((l) => DNS_LABEL.test(l));
}

/**
 * Checks the request and fills in the defaults. Every problem is named in one
 * KUBE_PKI_INPUT_INVALID error, thrown before anything is written.
 */
export function planClusterPki(request: ClusterPkiRequest): PkiPlan {
  const problems: string[] = [];
  const show = (v: unknown): string => JSON.stringify(v) ?? String(v);

  const clusterName = request.clusterName;
  if (typeof clusterName !== 'string' || !/^[\x20-\x7e]{1,64}$/.test(clusterName) || clusterName.trim() !== clusterName) {
    problems.push(`cluster name ${show(clusterName)} must be 1 to 64 printable ASCII characters without leading or trailing spaces`);
  }
  const nodeName = request.nodeName;
  if (typeof nodeName !== 'string' || !isDnsSubdomain(nodeName)) {
    problems.push(`node name ${show(nodeName)} is not a lowercase RFC 1123 name (letters, digits, "-" and ".")`);
  }
  const dnsDomain = request.dnsDomain ?? DEFAULT_DNS_DOMAIN;
  if (typeof dnsDomain !== 'string' || !isDnsSubdomain(dnsDomain)) problems.push(`DNS domain ${show(dnsDomain)} is not a lowercase RFC 1123 name`);
  const serviceCidr = request.serviceCidr ?? DEFAULT_SERVICE_CIDR;
  if (serviceNetwork(serviceCidr) === undefined) {
    problems.push(`service network ${show(serviceCidr)} is not an IPv4 network of at least 4 addresses (address/prefix, prefix 30 or less)`);
  }

  const sans = request.apiServerSans as { dns?: unknown; ips?: unknown } | undefined;
  const extraDns = Array.isArray(sans?.dns) ? (sans.dns as unknown[]) : undefined;
  const extraIps = Array.isArray(sans?.ips) ? (sans.ips as unknown[]) : undefined;
  if (extraDns === undefined || extraIps === undefined) problems.push('apiServerSans must have a dns list and an ips list');
  for (const d of extraDns ?? []) {
    if (typeof d !== 'string' || !isDnsSubdomain(d.toLowerCase())) problems.push(`API server name ${show(d)} is not an RFC 1123 DNS name`);
  }
  for (const ip of extraIps ?? []) {
    if (typeof ip !== 'string' || !isIpv4(ip)) problems.push(`API server address ${show(ip)} is not an IPv4 address`);
  }

  const caValidityDays = request.caValidityDays ?? DEFAULT_CA_VALIDITY_DAYS;
  if (!Number.isInteger(caValidityDays) || caValidityDays < 1 || caValidityDays > MAX_VALIDITY_DAYS) {
    problems.push(`CA lifetime ${show(caValidityDays)} days must be a whole number from 1 to ${MAX_VALIDITY_DAYS}`);
  }
  const validityDays = request.validityDays;
  if (!Number.isInteger(validityDays) || validityDays < 1 || validityDays > MAX_VALIDITY_DAYS) {
    problems.push(`certificate lifetime ${show(validityDays)} days must be a whole number from 1 to ${MAX_VALIDITY_DAYS}`);
  } else if (Number.isInteger(caValidityDays) && validityDays > caValidityDays) {
    problems.push(`certificate lifetime (${validityDays} days) must not exceed the CA's (${caValidityDays} days)`);
  }
  const now = request.now ?? new Date();
  if (!(now instanceof Date) || Number.isNaN(now.getTime())) problems.push('now must be a valid Date');

  if (problems.length > 0) {
    throw inputError('KUBE_PKI_INPUT_INVALID', `the cluster certificates cannot be made: ${problems.join('; ')}`, {
      advice: 'Nothing was written. Correct the values named above (they come from the profile\'s settings and the driver\'s network plan).',
      details: { problems },
    });
  }
  return {
    clusterName,
    nodeName,
    validityDays,
    caValidityDays,
    now: new Date(Math.floor(now.getTime() / 1000) * 1000),
    apiServerSans: apiServerAltNames({ nodeName, serviceCidr, dnsDomain, dns: extraDns as string[], ips: extraIps as string[] }),
  };
}

/** notBefore and notAfter of a certificate made now; a leaf never outlives its CA. */
export function validityWindow(now: Date, days: number, caNotAfter?: Date): { notBefore: Date; notAfter: Date } {
  const notAfter = new Date(now.getTime() + days * DAY_MS);
  return {
    notBefore: new Date(now.getTime() - CERTIFICATE_BACKDATE_MS),
    notAfter: caNotAfter !== undefined && caNotAfter < notAfter ? caNotAfter : notAfter,
  };
}

/**
 * Whether a certificate is close enough to its end to be reissued: within 30
 * days, or within the last third of a shorter lifetime (a 3-day certificate is
 * renewed after 2 days, not on every start).
 */
export function isDueForRenewal(notBefore: Date, notAfter: Date, now: Date): boolean {
  const lifetime = notAfter.getTime() - notBefore.getTime();
  const window = Math.min(30 * DAY_MS, lifetime / 3);
  return notAfter.getTime() - now.getTime() < window;
}
