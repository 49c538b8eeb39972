import { readFile, stat } from 'node:fs/promises';
import { kubeconfigPaths, parseKubeconfigText } from '../kube/kubeconfig-file.ts';

export { kubeconfigPaths };

/**
 * Reads kubeconfig files the way kubectl does: KUBECONFIG is a list (":" on
 * Unix, ";" on Windows) whose missing files are ignored, and for every named
 * entry the first file that defines it wins, as does the first
 * current-context.
 */
export interface KubeconfigFile {
  path: string;
  exists: boolean;
  /** Why it cannot be used: YAML syntax, not a mapping, unreadable. */
  problem?: string;
  mode?: number;
  uid?: number;
  currentContext?: string;
  contexts: Array<{ name: string; cluster?: string; user?: string }>;
  clusters: Array<{ name: string; server?: string; certificateAuthorityData?: string }>;
  users: Array<{ name: string; clientCertificateData?: string }>;
}

export interface Kubeconfig {
  /** From KUBECONFIG, or the default path. */
  source: 'KUBECONFIG' | 'default';
  files: KubeconfigFile[];
  currentContext?: string;
  /** The file the current-context came from. */
  currentContextFile?: string;
  context(name: string): { name: string; cluster?: string; user?: string; file: string } | undefined;
  cluster(name: string): { name: string; server?: string; certificateAuthorityData?: string; file: string } | undefined;
  user(name: string): { name: string; clientCertificateData?: string; file: string } | undefined;
}

function named(list: unknown): Array<Record<string, unknown> & { name: string }> {
  if (!Array.isArray(list)) return [];
  return list.filter((e): e is Record<string, unknown> & { name: string } => typeof e === 'object' && e !== null && typeof (e as { name?: unknown }).name === 'string');
}

function str(v: unknown): string | undefined {
  return typeof v === 'string' && v !== '' ? v : undefined;
}

/** Parses one kubeconfig's text; never throws. */
export function parseKubeconfig(path: string, text: string): KubeconfigFile {
  const base: KubeconfigFile = { path, exists: true, contexts: [], clusters: [], users: [] };
  const parsed = parseKubeconfigText(text);
  if (parsed.problem !== undefined) return { ...base, problem: parsed.problem };
  const value = parsed.doc.toJS() as unknown;
  if (value === null || value === undefined) return base; // an empty file is valid and empty
  const v = value as Record<string, unknown>;
  const currentContext = str(v['current-context']);
  return {
    ...base,
    ...(currentContext === undefined ? {} : { currentContext }),
    contexts: named(v['contexts']).map((c) => {
      const ctx = (c['context'] ?? {}) as Record<string, unknown>;
      const cluster = str(ctx['cluster']);
      const user = str(ctx['user']);
      return { name: c.name, ...(cluster === undefined ? {} : { cluster }), ...(user === undefined ? {} : { user }) };
    }),
    clusters: named(v['clusters']).map((c) => {
      const fields = (c['cluster'] ?? {}) as Record<string, unknown>;
      const server = str(fields['server']);
      const ca = str(fields['certificate-authority-data']);
      return { name: c.name, ...(server === undefined ? {} : { server }), ...(ca === undefined ? {} : { certificateAuthorityData: ca }) };
    }),
    users: named(v['users']).map((u) => {
      const cert = str(((u['user'] ?? {}) as Record<string, unknown>)['client-certificate-data']);
      return { name: u.name, ...(cert === undefined ? {} : { clientCertificateData: cert }) };
    }),
  };
}

export async function loadKubeconfig(env: NodeJS.ProcessEnv, userHome: string, platform: NodeJS.Platform): Promise<Kubeconfig> {
  const { source, paths } = kubeconfigPaths(env, userHome, platform);
  const files: KubeconfigFile[] = [];
  for (const path of paths) {
    let text: string;
    let info;
    try {
      info = await stat(path);
      text = await readFile(path, 'utf8');
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code === 'ENOENT' || code === 'ENOTDIR') files.push({ path, exists: false, contexts: [], clusters: [], users: [] });
      else files.push({ path, exists: true, problem: `cannot be read: ${(e as Error).message}`, contexts: [], clusters: [], users: [], ...(info === undefined ? {} : { mode: info.mode & 0o777, uid: info.uid }) });
      continue;
    }
    files.push({ ...parseKubeconfig(path, text), mode: info.mode & 0o777, uid: info.uid });
  }
  return mergeKubeconfig(source, files);
}

export function mergeKubeconfig(source: 'KUBECONFIG' | 'default', files: KubeconfigFile[]): Kubeconfig {
  const usable = files.filter((f) => f.exists && f.problem === undefined);
  const withCurrent = usable.find((f) => f.currentContext !== undefined);
  return {
    source,
    files,
    ...(withCurrent?.currentContext === undefined ? {} : { currentContext: withCurrent.currentContext, currentContextFile: withCurrent.path }),
    context(name) {
      for (const f of usable) {
        const c = f.contexts.find((x) => x.name === name);
        if (c !== undefined) return { ...c, file: f.path };
      }
      return undefined;
    },
    cluster(name) {
      for (const f of usable) {
        const c = f.clusters.find((x) => x.name === name);
        if (c !== undefined) return { ...c, file: f.path };
      }
      return undefined;
    },
    user(name) {
      for (const f of usable) {
        const u = f.users.find((x) => x.name === name);
        if (u !== undefined) return { ...u, file: f.path };
      }
      return undefined;
    },
  };
}

/** Compares API server URLs by scheme, host and port (a trailing slash or default port is not a difference). */
export function sameServer(a: string, b: string): boolean {
  try {
    const x = new URL(a);
    const y = new URL(b);
    const port = (u: URL) => u.port || (u.protocol === 'https:' ? '443' : '80');
    return x.protocol === y.protocol && x.hostname.toLowerCase() === y.hostname.toLowerCase() && port(x) === port(y);
  } catch {
    return a === b;
  }
}
