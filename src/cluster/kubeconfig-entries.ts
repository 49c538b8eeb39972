import { X509Certificate } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { loadKubeconfig, sameServer } from '../doctor/kubeconfig.ts';
import { kubeconfigEntryNames, ownsEntry, removeClusterFromKubeconfig } from '../kube/kubeconfig-merge.ts';
import type { KubeconfigEntryRef, KubeconfigLocation } from '../kube/kubeconfig-merge.ts';
import { PKI_FILES } from '../kube/pki.ts';
import '../kube/pki-errors.ts';
import { DevclusterError } from '../ui/errors.ts';

/**
 * The profile's three kubeconfig entries as the commands other than start
 * see them: whether they are as start wrote them (status), removing them
 * (delete), and the certificates they are made of (update-context).
 */

/** The user's kubeconfig, found as kubectl finds it: KUBECONFIG, else ~/.kube/config. */
export function userKubeconfig(): KubeconfigLocation {
  return { env: process.env, userHome: homedir() };
}

export interface ProfileCredentials {
  caPem: string;
  clientCertPem: string;
  clientKeyPem: string;
}

function pkiPath(pkiDir: string, file: string): string {
  return join(pkiDir, ...file.split('/'));
}

function flagFor(profile: string): string {
  return profile === 'devcluster' ? '' : ` -p ${profile}`;
}

/** The CA and admin pair the profile's kubeconfig entries carry; KUBE_PKI_MISSING naming what is gone. */
export async function readProfileCredentials(pkiDir: string, profile: string): Promise<ProfileCredentials> {
  const files = [PKI_FILES.caCert, PKI_FILES.adminCert, PKI_FILES.adminKey];
  const read = await Promise.all(files.map((f) => readFile(pkiPath(pkiDir, f), 'utf8').then((t) => t, (e: NodeJS.ErrnoException) => e)));
  const missing = read.flatMap((r, i) => (typeof r === 'string' ? [] : [`${files[i]} (${r.code === 'ENOENT' ? 'missing' : r.message})`]));
  const [caPem, clientCertPem, clientKeyPem] = read;
  if (typeof caPem !== 'string' || typeof clientCertPem !== 'string' || typeof clientKeyPem !== 'string') {
    throw new DevclusterError('KUBE_PKI_MISSING', `profile ${profile} cannot write its kubeconfig entries: ${missing.join(', ')} in ${pkiDir}`, {
      advice: `The cluster trusts only the CA that was in that directory, and devcluster does not make a new one for a running cluster: \`devcluster delete${flagFor(profile)}\` and \`devcluster start${flagFor(profile)}\` make a new cluster with a new PKI.`,
      details: { pkiDir },
    });
  }
  return { caPem, clientCertPem, clientKeyPem };
}

export interface KubeconfigVerdict {
  status: 'Configured' | 'Misconfigured';
  /** What is wrong, in words (Misconfigured only). */
  problem?: string;
  /** The command that repairs it (Misconfigured only). */
  fix?: string;
}

/**
 * Whether kubectl, given `--context <profile>`, reaches the profile's
 * cluster: the context (the first of that name in the KUBECONFIG chain, as
 * kubectl picks it) names the profile's cluster and user, the cluster points
 * at `server` and carries the profile's CA, and the user's client
 * certificate was issued by that CA. current-context is not required
 * (start --keep-context leaves it alone).
 */
export async function checkProfileEntries(profile: string, server: string, caPem: string, location: KubeconfigLocation = userKubeconfig()): Promise<KubeconfigVerdict> {
  const names = kubeconfigEntryNames(profile);
  const fix = `devcluster update-context${flagFor(profile)}`;
  const bad = (problem: string, how = fix): KubeconfigVerdict => ({ status: 'Misconfigured', problem, fix: how });
  const kc = await loadKubeconfig(location.env, location.userHome, location.platform ?? process.platform);
  const broken = kc.files.find((f) => f.exists && f.problem !== undefined);
  if (broken !== undefined) return bad(`${broken.path} cannot be used (${broken.problem}); kubectl refuses every command while it is broken`, `repair or move aside ${broken.path}, then ${fix}`);
  const where = kc.files.map((f) => f.path).join(', ');
  const context = kc.context(names.context);
  if (context === undefined) return bad(`no context "${names.context}" in ${where}`);
  if (context.cluster !== names.cluster || context.user !== names.user) {
    return bad(`context "${names.context}" (${context.file}) points at cluster "${context.cluster ?? ''}" and user "${context.user ?? ''}", not "${names.cluster}" and "${names.user}"`);
  }
  const cluster = kc.cluster(names.cluster);
  if (cluster === undefined) return bad(`no cluster "${names.cluster}" in ${where}`);
  if (cluster.server === undefined || !sameServer(cluster.server, server)) {
    return bad(`cluster "${names.cluster}" (${cluster.file}) points at ${cluster.server ?? 'no server'}, but the API server is ${server}`);
  }
  let ca: X509Certificate;
  try {
    ca = new X509Certificate(caPem);
  } catch (e) {
    return bad(`the profile's CA certificate cannot be read: ${(e as Error).message}`, `devcluster delete${flagFor(profile)} and devcluster start${flagFor(profile)}`);
  }
  if (!ownsEntry('cluster', { 'certificate-authority-data': cluster.certificateAuthorityData }, ca)) {
    return bad(`cluster "${names.cluster}" (${cluster.file}) does not carry the profile's CA`);
  }
  const user = kc.user(names.user);
  if (user === undefined) return bad(`no user "${names.user}" in ${where}`);
  if (!ownsEntry('user', { 'client-certificate-data': user.clientCertificateData }, ca)) {
    return bad(`user "${names.user}" (${user.file}) has no client certificate issued by the profile's CA`);
  }
  return { status: 'Configured' };
}

export interface KubeconfigCleanup {
  /** "context lab (/home/me/.kube/config)". */
  removed: string[];
  /** Entries with the profile's names that devcluster did not write, and why they stay. */
  leftAlone: string[];
  /** Why nothing was removed, when nothing could be (no CA, a locked or broken file). */
  warning?: string;
}

function describe(e: KubeconfigEntryRef): string {
  return `${e.kind} ${e.name} (${e.file})`;
}

/**
 * Removes the profile's cluster, user and context from the user's
 * kubeconfig: exactly the entries that carry the profile's CA (pki/ca.crt).
 * Never throws: a profile must stay deletable when the kubeconfig is locked
 * or broken, so the problem is returned as a warning and nothing is removed.
 * `expectEntries`: the profile had Kubernetes (or may have had: a damaged
 * state), so a missing CA is worth a warning.
 */
export async function removeProfileEntries(pkiDir: string, profile: string, expectEntries: boolean, location: KubeconfigLocation = userKubeconfig()): Promise<KubeconfigCleanup> {
  const caPath = pkiPath(pkiDir, PKI_FILES.caCert);
  const names = kubeconfigEntryNames(profile);
  const byHand = `\`kubectl config delete-context ${names.context}\`, \`kubectl config delete-cluster ${names.cluster}\` and \`kubectl config delete-user ${names.user}\` remove them by hand once you know they are this profile's`;
  let caPem: string;
  try {
    caPem = await readFile(caPath, 'utf8');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' && !expectEntries) return { removed: [], leftAlone: [] };
    return { removed: [], leftAlone: [], warning: `the profile's CA ${caPath} is ${code === 'ENOENT' ? 'gone' : `unreadable (${(e as Error).message})`}, so no kubeconfig entry can be proved to be this profile's and none was removed; ${byHand}` };
  }
  try {
    const r = await removeClusterFromKubeconfig({ ...location, profile, caPem });
    return { removed: r.removed.map(describe), leftAlone: r.leftAlone.map((e) => `${describe(e)}: ${e.reason}`) };
  } catch (e) {
    return { removed: [], leftAlone: [], warning: `the kubeconfig entries were not removed: ${(e as Error).message}; ${byHand}` };
  }
}
