import { X509Certificate, createPrivateKey } from 'node:crypto';
import { chown, realpath, stat } from 'node:fs/promises';
import { dirname } from 'node:path';
import { Document, YAMLMap, YAMLSeq, isMap, isScalar, isSeq } from 'yaml';
import { validateProfileName } from '../profile/names.ts';
import { readTextFile, writeFileAtomic } from '../profile/atomic.ts';
import { DevclusterError, isDevclusterError } from '../ui/errors.ts';
import { kubeconfigPaths, parseKubeconfigText } from './kubeconfig-file.ts';
import type { KubeconfigSource } from './kubeconfig-file.ts';
import { ensureKubeconfigDir, withKubeconfigLocks } from './kubeconfig-lock.ts';
import type { KubeconfigLockOptions } from './kubeconfig-lock.ts';
import './errors.ts';

/**
 * devcluster's entries in the user's kubeconfig, written by kubectl's rules
 * (client-go clientcmd, checked against kubectl itself):
 * - a new entry goes to the file kubectl would create it in: with one
 *   KUBECONFIG entry, that file; with several, the first that exists, else
 *   the LAST one; without KUBECONFIG, ~/.kube/config;
 * - an entry that exists is changed in the file that defines it (the first
 *   file in KUBECONFIG order that has that name), and current-context is set
 *   in the file a new entry would go to, as `kubectl config use-context` does;
 * - every file kubectl would read is locked as kubectl locks it
 *   (kubeconfig-lock.ts), and a file it would refuse is refused here too,
 *   before anything is written.
 * Files are edited as YAML Documents, so comments, field order, fields
 * devcluster does not know and every other entry stay as they were.
 */

/**
 * Cluster, user and context all carry the profile's name: "devcluster" for
 * the default profile, "<profile>" for another (minikube's rule, and the name
 * `devcluster doctor` looks for).
 */
export interface KubeconfigEntryNames {
  cluster: string;
  user: string;
  context: string;
}

export function kubeconfigEntryNames(profile: string): KubeconfigEntryNames {
  const name = validateProfileName(profile);
  return { cluster: name, user: name, context: name };
}

export type KubeconfigEntryKind = 'cluster' | 'user' | 'context';

export interface KubeconfigEntryRef {
  kind: KubeconfigEntryKind;
  name: string;
  file: string;
}

export interface KubeconfigLocation {
  env: NodeJS.ProcessEnv;
  userHome: string;
  /** Chooses the KUBECONFIG delimiter; default: this machine's. */
  platform?: NodeJS.Platform;
  lock?: KubeconfigLockOptions;
}

export interface MergeClusterOptions extends KubeconfigLocation {
  profile: string;
  /** The API server URL the host reaches, https. */
  server: string;
  caPem: string;
  clientCertPem: string;
  clientKeyPem: string;
  /** Make the profile's context kubectl's current context. */
  setCurrent: boolean;
}

export interface MergeClusterResult {
  names: KubeconfigEntryNames;
  entries: Array<KubeconfigEntryRef & {
    /** replaced: an entry of that name that devcluster had not written (another CA or client certificate) was overwritten. */
    action: 'created' | 'updated' | 'replaced' | 'unchanged';
  }>;
  /** The file current-context was set in, when setCurrent. */
  currentContextFile?: string;
  /** Files whose content changed (none on a repeated merge). */
  written: string[];
}

export interface RemoveClusterOptions extends KubeconfigLocation {
  profile: string;
  /** The profile's CA: an entry is devcluster's when it carries this CA, or a client certificate this CA issued. */
  caPem: string;
}

export interface RemoveClusterResult {
  removed: KubeconfigEntryRef[];
  /** Entries with the profile's names that devcluster did not write, and why they were kept. */
  leftAlone: Array<KubeconfigEntryRef & { reason: string }>;
  /** Files whose current-context named the removed context and was unset. */
  currentContextUnset: string[];
  written: string[];
}

/** The file kubectl would create a new entry in (see the module comment). */
export async function kubeconfigMergeTarget(env: NodeJS.ProcessEnv, userHome: string, platform: NodeJS.Platform = process.platform): Promise<string> {
  const { source, paths } = kubeconfigPaths(env, userHome, platform);
  return defaultFile(source, paths, await existingPaths(paths));
}

function defaultFile(source: KubeconfigSource, paths: readonly string[], existing: ReadonlySet<string>): string {
  const last = paths[paths.length - 1];
  if (last === undefined) throw new Error('kubeconfigPaths returned no path');
  if (source === 'default' || paths.length === 1) return paths[0] ?? last;
  return paths.find((p) => existing.has(p)) ?? last;
}

/** "Exists" as client-go's os.Stat test: anything stat succeeds on. */
async function existingPaths(paths: readonly string[]): Promise<Set<string>> {
  const found = new Set<string>();
  for (const p of paths) {
    try {
      await stat(p);
      found.add(p);
    } catch {
      // missing (or unreachable): kubectl skips it too
    }
  }
  return found;
}

async function dirExists(path: string): Promise<boolean> {
  try {
    return (await stat(dirname(path))).isDirectory();
  } catch {
    return false;
  }
}

interface LoadedFile {
  path: string;
  exists: boolean;
  text: string;
  doc: Document;
  /** Changed in memory: only such files are written, so a file devcluster has nothing to change in keeps its bytes. */
  dirty: boolean;
}

const ENTRY_LISTS: Readonly<Record<KubeconfigEntryKind, { list: string; field: string }>> = {
  cluster: { list: 'clusters', field: 'cluster' },
  user: { list: 'users', field: 'user' },
  context: { list: 'contexts', field: 'context' },
};

/** Fields that would contradict the ones devcluster sets (kubectl rejects a CA file with insecure-skip-tls-verify, and a user with two ways to log in). */
const CONFLICTING_FIELDS: Readonly<Record<KubeconfigEntryKind, readonly string[]>> = {
  cluster: ['certificate-authority', 'insecure-skip-tls-verify'],
  user: ['client-certificate', 'client-key', 'token', 'tokenFile', 'username', 'password', 'auth-provider', 'exec'],
  context: [],
};

/**
 * Writes (or updates) the profile's cluster, user and context, with the
 * certificates embedded, and makes the context current when asked. Input is
 * checked before any file is touched; a repeated merge changes nothing.
 */
export async function mergeClusterIntoKubeconfig(options: MergeClusterOptions): Promise<MergeClusterResult> {
  const names = kubeconfigEntryNames(options.profile);
  const pki = checkEntryInput(options);
  const platform = options.platform ?? process.platform;
  const { source, paths } = kubeconfigPaths(options.env, options.userHome, platform);
  await ensureKubeconfigDir(defaultFile(source, paths, await existingPaths(paths)));
  return withKubeconfigLocks(await lockable(paths), options.lock ?? {}, async () => {
    const files = await loadChain(paths);
    const target = defaultFile(source, paths, new Set(files.filter((f) => f.exists).map((f) => f.path)));
    const targetFile = files.find((f) => f.path === target);
    if (targetFile === undefined) throw new Error(`${target} is not in the kubeconfig chain`);

    const wanted: Record<KubeconfigEntryKind, Record<string, string>> = {
      cluster: { server: options.server, 'certificate-authority-data': base64(options.caPem) },
      user: { 'client-certificate-data': base64(options.clientCertPem), 'client-key-data': base64(options.clientKeyPem) },
      context: { cluster: names.cluster, user: names.user },
    };
    const entries: MergeClusterResult['entries'] = [];
    for (const kind of ['cluster', 'user', 'context'] as const) {
      const name = names[kind];
      const home = files.find((f) => findEntry(f.doc, kind, name) !== undefined) ?? targetFile;
      const before = entryFields(findEntry(home.doc, kind, name), kind);
      const ownedBefore = before !== undefined && (kind === 'context' || ownsEntry(kind, before, pki.ca));
      upsertEntry(home.doc, kind, name, wanted[kind]);
      const after = entryFields(findEntry(home.doc, kind, name), kind);
      const action = before === undefined ? 'created' : JSON.stringify(before) === JSON.stringify(after) ? 'unchanged' : ownedBefore ? 'updated' : 'replaced';
      entries.push({ kind, name, file: home.path, action });
      if (action !== 'unchanged') home.dirty = true;
    }
    if (options.setCurrent && currentContext(targetFile.doc) !== names.context) {
      setScalar(rootMap(targetFile.doc), 'current-context', names.context);
      targetFile.dirty = true;
    }
    for (const f of files) if (f.dirty) ensureHeader(f.doc);

    const written = await writeChanged(files);
    return { names, entries, ...(options.setCurrent ? { currentContextFile: target } : {}), written };
  });
}

/**
 * Removes the profile's cluster, user and context from every kubeconfig file
 * kubectl reads, but only those devcluster wrote: a cluster carrying the
 * profile's CA, a user whose client certificate that CA issued, and a context
 * named after the profile that points at them. A user's own entry with the
 * same name is left alone and reported in leftAlone. current-context is
 * unset where it names the profile's context and no context of that name is
 * left in any file (a user's own context of that name keeps it). Files are
 * never deleted, even when left empty.
 */
export async function removeClusterFromKubeconfig(options: RemoveClusterOptions): Promise<RemoveClusterResult> {
  const names = kubeconfigEntryNames(options.profile);
  const ca = parseCertificate(options.caPem, 'the CA certificate');
  const { paths } = kubeconfigPaths(options.env, options.userHome, options.platform ?? process.platform);
  return withKubeconfigLocks(await lockable(paths), options.lock ?? {}, async () => {
    const files = (await loadChain(paths)).filter((f) => f.exists);
    const removed: KubeconfigEntryRef[] = [];
    const leftAlone: RemoveClusterResult['leftAlone'] = [];
    const ours = (kind: KubeconfigEntryKind) => files.some((f) => allEntries(f.doc, kind, names[kind]).some((e) => ownsEntry(kind, entryFields(e, kind) ?? {}, ca)));
    const ourCluster = ours('cluster');
    const ourUser = ours('user');
    const anyNamed = (kind: KubeconfigEntryKind) => files.some((f) => allEntries(f.doc, kind, names[kind]).length > 0);
    const orphanNames = !anyNamed('cluster') && !anyNamed('user');

    for (const f of files) {
      for (const kind of ['context', 'cluster', 'user'] as const) {
        const seq = entryList(f.doc, kind);
        if (seq === undefined) continue;
        for (const item of [...seq.items]) {
          if (!isMap(item) || item.get('name') !== names[kind]) continue;
          const fields = entryFields(item, kind) ?? {};
          const why = kind === 'context' ? contextNotOurs(fields, names, ourCluster || ourUser || orphanNames) : ownsEntry(kind, fields, ca) ? undefined : kind === 'cluster' ? 'its certificate-authority-data is not this profile\'s CA' : 'its client certificate was not issued by this profile\'s CA';
          if (why !== undefined) {
            leftAlone.push({ kind, name: names[kind], file: f.path, reason: why });
            continue;
          }
          seq.delete(seq.items.indexOf(item));
          f.dirty = true;
          removed.push({ kind, name: names[kind], file: f.path });
        }
      }
    }
    // kubectl resolves current-context by name, so it pointed at ours only if no context of that name is left.
    const contextGone = !anyNamed('context');
    const currentContextUnset: string[] = [];
    for (const f of files) {
      const root = f.doc.contents;
      if (contextGone && isMap(root) && currentContext(f.doc) === names.context) {
        root.delete('current-context');
        f.dirty = true;
        currentContextUnset.push(f.path);
      }
    }
    const written = await writeChanged(files);
    return { removed, leftAlone, currentContextUnset, written };
  });
}

function contextNotOurs(fields: Record<string, unknown>, names: KubeconfigEntryNames, ourEntriesSeen: boolean): string | undefined {
  if (fields['cluster'] !== names.cluster || fields['user'] !== names.user) {
    return `it points at cluster "${String(fields['cluster'] ?? '')}" and user "${String(fields['user'] ?? '')}", not devcluster's "${names.cluster}" and "${names.user}"`;
  }
  if (!ourEntriesSeen) return `the cluster and user it points at are not devcluster's`;
  return undefined;
}

/** The chain files kubectl would lock: those whose directory exists (kubectl would create the others' directories; devcluster creates none it does not write to). */
async function lockable(paths: readonly string[]): Promise<string[]> {
  const out: string[] = [];
  for (const p of paths) if (await dirExists(p)) out.push(p);
  return out;
}

async function loadChain(paths: readonly string[]): Promise<LoadedFile[]> {
  const files: LoadedFile[] = [];
  for (const path of paths) {
    let text: string | undefined;
    try {
      text = await readTextFile(path);
    } catch (e) {
      // A path through a file, like a missing one, is a file kubectl skips.
      if (!(isDevclusterError(e) && e.details['errno'] === 'ENOTDIR')) throw e;
    }
    if (text === undefined) {
      const doc = new Document();
      doc.contents = null;
      files.push({ path, exists: false, text: '', doc, dirty: false });
      continue;
    }
    const parsed = parseKubeconfigText(text);
    if (parsed.problem !== undefined) {
      throw new DevclusterError('KUBECONFIG_UNUSABLE', `${path} cannot be used: ${parsed.problem}`, {
        advice: `kubectl refuses this file too. Repair it, or move it aside (mv ${path} ${path}.broken), then run the command again; \`devcluster doctor\` lists every kubeconfig problem. No kubeconfig file was changed.`,
        details: { path },
      });
    }
    files.push({ path, exists: true, text, doc: parsed.doc, dirty: false });
  }
  return files;
}

/** Writes the files whose text changed, atomically, 0600 or stricter if the file already was, keeping a symlinked file a symlink and a root-run write owned by the file's owner. */
async function writeChanged(files: readonly LoadedFile[]): Promise<string[]> {
  const written: string[] = [];
  for (const f of files) {
    if (!f.dirty) continue;
    const text = render(f);
    let path = f.path;
    let mode = 0o600;
    let owner: { uid: number; gid: number } | undefined;
    if (f.exists) {
      path = await realpath(f.path);
      const info = await stat(path);
      mode = info.mode & 0o600;
      if (process.getuid?.() === 0 && info.uid !== 0) owner = { uid: info.uid, gid: info.gid };
    }
    try {
      await writeFileAtomic(path, text, { mode });
      if (owner !== undefined) await chown(path, owner.uid, owner.gid);
    } catch (e) {
      if (isDevclusterError(e) && e.id === 'HOST_PERMISSION_DENIED') {
        throw new DevclusterError(e.id, e.message, {
          advice: `devcluster writes its context into ${f.path} as kubectl would: make that file and its directory writable for your user, or point KUBECONFIG at a file you own.`,
          details: e.details,
          cause: e,
        });
      }
      throw e;
    }
    written.push(f.path);
  }
  return written;
}

/**
 * Written the way the file already writes YAML, where the Document does not
 * keep it: block sequences at the key's indent (as kubectl writes them) or
 * indented, flow maps with or without inner spaces, line ends.
 */
function render(f: LoadedFile): string {
  const indented = /^(?:clusters|contexts|users):[ \t]*(?:#.*)?\r?\n(?:[ \t]*(?:#.*)?\r?\n)*( +)- /m.test(f.text);
  const padded = /[{[] [^\s\]}]/.test(f.text) && !/[{[][^\s\]}]/.test(f.text);
  const text = f.doc.toString({ lineWidth: 0, indentSeq: indented, flowCollectionPadding: padded });
  return f.text.includes('\r\n') ? text.replace(/\r?\n/g, '\r\n') : text;
}

function currentContext(doc: Document): unknown {
  return isMap(doc.contents) ? doc.contents.get('current-context') : undefined;
}

function rootMap(doc: Document): YAMLMap {
  if (doc.contents === null) doc.contents = new YAMLMap();
  const root = doc.contents;
  if (!isMap(root)) throw new Error('kubeconfig root is not a mapping after validation');
  return root;
}

/** apiVersion and kind, as kubectl writes them (some clients refuse a kubeconfig without them). */
function ensureHeader(doc: Document): void {
  const root = rootMap(doc);
  if (!root.has('kind')) root.items.unshift(doc.createPair('kind', 'Config'));
  if (!root.has('apiVersion')) root.items.unshift(doc.createPair('apiVersion', 'v1'));
}

function entryList(doc: Document, kind: KubeconfigEntryKind): YAMLSeq | undefined {
  const root = doc.contents;
  if (!isMap(root)) return undefined;
  const seq = root.get(ENTRY_LISTS[kind].list, true);
  return isSeq(seq) ? seq : undefined;
}

function allEntries(doc: Document, kind: KubeconfigEntryKind, name: string): YAMLMap[] {
  return (entryList(doc, kind)?.items ?? []).filter((i): i is YAMLMap => isMap(i) && i.get('name') === name);
}

/** The entry kubectl reads: the first of that name. */
function findEntry(doc: Document, kind: KubeconfigEntryKind, name: string): YAMLMap | undefined {
  return allEntries(doc, kind, name)[0];
}

function entryFields(entry: YAMLMap | undefined, kind: KubeconfigEntryKind): Record<string, unknown> | undefined {
  if (entry === undefined) return undefined;
  const inner = entry.get(ENTRY_LISTS[kind].field, true);
  return isMap(inner) ? (inner.toJSON() as Record<string, unknown>) : {};
}

function upsertEntry(doc: Document, kind: KubeconfigEntryKind, name: string, fields: Record<string, string>): void {
  const { list, field } = ENTRY_LISTS[kind];
  const root = rootMap(doc);
  let seq = entryList(doc, kind);
  if (seq === undefined) {
    seq = new YAMLSeq();
    root.set(list, seq);
  }
  const entry = findEntry(doc, kind, name);
  if (entry === undefined) {
    // A new entry in an empty flow list ("users: []") would stay on one line.
    if (seq.items.length === 0) seq.flow = false;
    seq.add(doc.createNode({ name, [field]: fields }));
    return;
  }
  const found = entry.get(field, true);
  let map: YAMLMap;
  if (isMap(found)) map = found;
  else {
    map = new YAMLMap();
    entry.set(field, map);
  }
  for (const [k, v] of Object.entries(fields)) setScalar(map, k, v);
  for (const k of CONFLICTING_FIELDS[kind]) map.delete(k);
}

/** Sets a string, keeping the existing scalar node (and its quoting and comments) when there is one. */
function setScalar(map: YAMLMap, key: string, value: string): void {
  const node = map.get(key, true);
  if (isScalar(node)) node.value = value;
  else map.set(key, value);
}

function base64(pem: string): string {
  return Buffer.from(pem, 'utf8').toString('base64');
}

function decodeCertificate(data: unknown): X509Certificate | undefined {
  if (typeof data !== 'string') return undefined;
  try {
    return new X509Certificate(Buffer.from(data, 'base64'));
  } catch {
    return undefined;
  }
}

/** A cluster is devcluster's when it carries the profile's CA; a user when that CA issued its client certificate. */
export function ownsEntry(kind: KubeconfigEntryKind, fields: Record<string, unknown>, ca: X509Certificate): boolean {
  if (kind === 'cluster') return decodeCertificate(fields['certificate-authority-data'])?.raw.equals(ca.raw) ?? false;
  if (kind === 'user') {
    const cert = decodeCertificate(fields['client-certificate-data']);
    return cert !== undefined && cert.checkIssued(ca) && cert.verify(ca.publicKey);
  }
  return false;
}

function entryInvalid(message: string): DevclusterError {
  return new DevclusterError('KUBECONFIG_ENTRY_INVALID', message, {
    advice: 'The profile\'s PKI (pki/ in the profile\'s directory) or its recorded API server address is damaged: `devcluster delete` and `devcluster start` make new ones.',
  });
}

function parseCertificate(pem: string, what: string): X509Certificate {
  if (!pem.includes('-----BEGIN CERTIFICATE-----')) throw entryInvalid(`${what} is not a PEM certificate`);
  try {
    return new X509Certificate(pem);
  } catch (e) {
    throw entryInvalid(`${what} is not a valid X.509 certificate: ${(e as Error).message}`);
  }
}

function checkEntryInput(options: MergeClusterOptions): { ca: X509Certificate } {
  let url: URL;
  try {
    url = new URL(options.server);
  } catch {
    throw entryInvalid(`API server address ${JSON.stringify(options.server)} is not a URL`);
  }
  if (url.protocol !== 'https:' || url.hostname === '' || url.username !== '' || url.password !== '' || url.search !== '' || url.hash !== '') {
    throw entryInvalid(`API server address ${JSON.stringify(options.server)} is not an https://host[:port] URL`);
  }
  const ca = parseCertificate(options.caPem, 'the CA certificate');
  const client = parseCertificate(options.clientCertPem, 'the client certificate');
  if (!client.checkIssued(ca) || !client.verify(ca.publicKey)) throw entryInvalid(`the client certificate (${client.subject.replace(/\n/g, ', ')}) was not issued by the CA (${ca.subject.replace(/\n/g, ', ')})`);
  let key;
  try {
    key = createPrivateKey(options.clientKeyPem);
  } catch (e) {
    throw entryInvalid(`the client key is not a PEM private key: ${(e as Error).message}`);
  }
  if (!client.checkPrivateKey(key)) throw entryInvalid('the client key does not belong to the client certificate');
  return { ca };
}
