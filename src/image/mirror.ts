import { inputError } from '../ui/errors.ts';
import './errors.ts';

export const MIRROR_ENV = 'DEVCLUSTER_IMAGE_MIRROR';

/**
 * DEVCLUSTER_IMAGE_MIRROR rewrites the start of download URLs:
 *
 * - `URL` (e.g. `https://mirror.corp/devcluster/`): a download URL that starts
 *   with the catalog's downloadBase has that prefix replaced by URL; the rest of
 *   the path is kept, so the mirror copies the release tree below the base.
 *   A trailing "/" is added to URL when missing. URLs given with --image are
 *   not under the base and are left alone.
 * - `FROM=TO` (both http(s) URLs): any download URL, catalog or --image, that
 *   starts with FROM (compared as exact text) has FROM replaced by TO.
 * - unset or empty: no rewriting.
 *
 * The expected sha256 never changes, so a mirror can only serve the same bytes.
 */
export interface MirrorRule {
  readonly from: string;
  readonly to: string;
}

export function parseMirror(value: string | undefined, downloadBase: string): MirrorRule | undefined {
  const v = (value ?? '').trim();
  if (v === '') return undefined;
  const pair = /^(https?:\/\/\S+?)=(https?:\/\/\S+)$/.exec(v);
  if (pair !== null) return { from: pair[1] as string, to: pair[2] as string };
  if (/^https?:\/\/[^\s=]+$/.test(v)) return { from: downloadBase, to: v.endsWith('/') ? v : `${v}/` };
  throw inputError('IMAGE_MIRROR_INVALID', `${MIRROR_ENV}=${JSON.stringify(value)} is not valid; accepted: an http(s) URL that replaces ${downloadBase}, or FROM=TO with two http(s) URLs`, {
    advice: `For example ${MIRROR_ENV}=https://mirror.example.com/devcluster/`,
  });
}

export function applyMirror(url: string, rule: MirrorRule | undefined): string {
  if (rule === undefined || !url.startsWith(rule.from)) return url;
  return rule.to + url.slice(rule.from.length);
}
