import { join } from 'node:path';
import { parseDocument } from 'yaml';
import type { Document } from 'yaml';

/**
 * What kubeconfig readers and writers share: which files kubectl reads, and
 * one kubeconfig's text parsed into a YAML Document (so a writer can keep
 * comments and fields it does not know) with the checks kubectl's loader
 * makes before it accepts the file.
 */

export type KubeconfigSource = 'KUBECONFIG' | 'default';

/**
 * The files kubectl reads, in precedence order: KUBECONFIG split on the
 * platform's path delimiter (";" on Windows, ":" elsewhere), empty entries
 * and repeats dropped; without it, ~/.kube/config.
 */
export function kubeconfigPaths(env: NodeJS.ProcessEnv, userHome: string, platform: NodeJS.Platform): { source: KubeconfigSource; paths: string[] } {
  const raw = env['KUBECONFIG'];
  if (raw !== undefined && raw.trim() !== '') {
    const sep = platform === 'win32' ? ';' : ':';
    const paths = [...new Set(raw.split(sep).map((p) => p.trim()).filter((p) => p !== ''))];
    return { source: 'KUBECONFIG', paths };
  }
  return { source: 'default', paths: [join(userHome, '.kube', 'config')] };
}

export type ParsedKubeconfigText = { doc: Document.Parsed; problem?: undefined } | { doc?: undefined; problem: string };

/**
 * Parses one kubeconfig's text; never throws. A problem says why kubectl
 * would refuse the file (YAML syntax, not a mapping, a list that is not a
 * list). An empty file is a valid, empty kubeconfig.
 */
export function parseKubeconfigText(text: string): ParsedKubeconfigText {
  const doc = parseDocument(text, { uniqueKeys: false });
  if (doc.errors.length > 0) {
    // The first line of a pretty error ends with "at line L, column C:".
    return { problem: `not valid YAML: ${doc.errors[0]?.message.split('\n')[0]?.replace(/:$/, '') ?? 'parse error'}` };
  }
  const value = doc.toJS() as unknown;
  if (value === null || value === undefined) return { doc };
  if (typeof value !== 'object' || Array.isArray(value)) return { problem: 'not a kubeconfig: the top level is not a mapping' };
  const v = value as Record<string, unknown>;
  for (const key of ['contexts', 'clusters', 'users'] as const) {
    if (v[key] !== undefined && v[key] !== null && !Array.isArray(v[key])) return { problem: `not a kubeconfig: "${key}" is not a list` };
  }
  return { doc };
}
