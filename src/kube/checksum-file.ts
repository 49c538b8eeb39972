/**
 * The sha256 a published checksum file gives for one artifact. Projects
 * publish two forms:
 * - the bare digest (dl.k8s.io's kubeadm.sha256, cri-tools' .sha256);
 * - sha256sum's output, "<digest>  <name>" or "<digest> *<name>" (binary
 *   mode), one line per file: containerd's .sha256sum and the CNI plugins'
 *   .sha256 (one line), runc's runc.sha256sum (every architecture's binary
 *   and the source tarball).
 * A line naming another file is never taken for this one.
 */
export type ChecksumLookup = { readonly ok: true; readonly sha256: string } | { readonly ok: false; readonly problem: string };

const DIGEST = /^[0-9a-fA-F]{64}$/;

export function checksumFor(text: string, fileName: string): ChecksumLookup {
  const lines = text.replace(/^\uFEFF/, '').split(/\r?\n/).map((l) => l.trim()).filter((l) => l !== '');
  if (lines.length === 0) return { ok: false, problem: 'the checksum file is empty' };
  if (lines.length === 1 && DIGEST.test(lines[0] as string)) return { ok: true, sha256: (lines[0] as string).toLowerCase() };
  const found = new Set<string>();
  const listed: string[] = [];
  for (const line of lines) {
    const m = /^([0-9a-fA-F]{64}) [ *](.+)$/.exec(line);
    if (m === null) {
      return { ok: false, problem: `the checksum file has a line that is neither a sha256 digest nor "<digest>  <file>": ${JSON.stringify(line.slice(0, 80))}` };
    }
    // sha256sum prints the path it was given; releases are hashed in their own directory, but a ./ or dir/ prefix is harmless.
    const name = (m[2] as string).replace(/^\.\//, '');
    listed.push(name);
    if (name === fileName || name.endsWith(`/${fileName}`)) found.add((m[1] as string).toLowerCase());
  }
  if (found.size === 1) return { ok: true, sha256: [...found][0] as string };
  if (found.size > 1) return { ok: false, problem: `the checksum file lists ${fileName} with ${found.size} different digests` };
  return { ok: false, problem: `the checksum file does not list ${fileName} (it lists ${listed.slice(0, 6).join(', ')}${listed.length > 6 ? ', …' : ''})` };
}
