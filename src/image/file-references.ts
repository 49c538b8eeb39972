import { dirname, resolve } from 'node:path';

/**
 * Which other files a disk image's header names. A base image that names a
 * host file (a qcow2 backing file or external data file, VMDK extents, a
 * parent hint) lets a guest read that file through its disk: Lima's
 * CVE-2023-32684 and its later qcow2 data-file fix. These functions only
 * interpret text; src/image/inspect.ts runs qemu-img and refuses.
 */
export interface FileReference {
  /** Where it was found: a JSON path in `qemu-img info` output, or the descriptor line. */
  readonly field: string;
  /** The file named, or undefined when the header says there is one without naming it. */
  readonly file: string | undefined;
}

/** Keys whose string value is a file name in qemu-img's JSON. */
function namesAFile(key: string): boolean {
  return key === 'filename' || key === 'file' || key === 'data-file' || key.endsWith('-filename') || key.endsWith('-file');
}

function filenamesInJsonPseudoPath(value: string): string[] | undefined {
  let parsed: unknown;
  try {
    parsed = JSON.parse(value.slice('json:'.length)) as unknown;
  } catch {
    return undefined;
  }
  const found: string[] = [];
  const walk = (v: unknown): void => {
    if (typeof v !== 'object' || v === null) return;
    for (const [k, inner] of Object.entries(v)) {
      if (typeof inner === 'string' && namesAFile(k)) found.push(inner);
      else walk(inner);
    }
  };
  walk(parsed);
  return found;
}

/**
 * True when `value` names the image itself: the path qemu-img was given, the
 * same path relative to the image's folder, or a `json:` pseudo-path (a
 * member read at an offset inside an OVA) whose only file is the image.
 */
export function isSelf(value: string, image: string): boolean {
  if (value === image) return true;
  if (value.startsWith('json:')) {
    const inner = filenamesInJsonPseudoPath(value);
    return inner !== undefined && inner.length > 0 && inner.every((f) => isSelf(f, image));
  }
  return resolve(dirname(resolve(image)), value) === resolve(image);
}

/**
 * Every file `qemu-img info --output=json` reports other than the image:
 * `backing-filename`, `full-backing-filename`, the qcow2 `data-file`, VMDK
 * `extents[].filename`, the `children` of newer QEMU, and any other field
 * named like a file. The walk is generic on purpose: a format or QEMU release
 * that adds another way to name a file is refused, not overlooked. A backing
 * entry without a name (`backing-filename-format` alone) still counts.
 */
export function fileReferences(info: unknown, image: string): FileReference[] {
  const found: FileReference[] = [];
  const walk = (value: unknown, path: string, depth: number): void => {
    if (depth > 16 || typeof value !== 'object' || value === null) return;
    const entries: Array<[string, unknown]> = Array.isArray(value)
      ? value.map((v, i) => [`[${i}]`, v])
      : Object.entries(value);
    for (const [key, inner] of entries) {
      const field = Array.isArray(value) ? `${path}${key}` : path === '' ? key : `${path}.${key}`;
      if (typeof inner === 'string' && namesAFile(key)) {
        if (!isSelf(inner, image)) found.push({ field, file: inner });
      } else if (/backing/i.test(key) && inner !== null && inner !== false && inner !== '' && typeof inner !== 'object') {
        found.push({ field, file: undefined });
      } else {
        walk(inner, field, depth + 1);
      }
    }
  };
  walk(info, '', 0);
  // A backing format says less than the backing file's name beside it.
  return found.some((r) => r.file !== undefined) ? found.filter((r) => r.file !== undefined) : found;
}

/**
 * The files a text-descriptor VMDK names: its extent lines
 * (`RW 2048 FLAT "disk-flat.vmdk" 0`) and a parentFileNameHint. A text
 * descriptor always lives beside other files, so it is refused even when
 * this finds none; the names make the message useful.
 */
export function vmdkDescriptorReferences(text: string): FileReference[] {
  const found: FileReference[] = [];
  for (const m of text.matchAll(/^[ \t]*(?:RW|RDONLY|NOACCESS)[ \t]+\d+[ \t]+\w+(?:[ \t]+"([^"]*)")?/gm)) {
    found.push({ field: 'VMDK extent', file: m[1] });
  }
  for (const m of text.matchAll(/^[ \t]*parentFileNameHint[ \t]*=[ \t]*"([^"]*)"/gm)) {
    found.push({ field: 'parentFileNameHint', file: m[1] });
  }
  return found;
}

/**
 * The `href` of every File in an OVF descriptor that is not a plain member of
 * the archive: a path (absolute, with a folder, or with ..) or a URL would
 * make the importing hypervisor open a host file or fetch a disk.
 */
export function ovfForeignReferences(ovf: string, members: ReadonlySet<string>): FileReference[] {
  const found: FileReference[] = [];
  for (const m of ovf.matchAll(/<(?:[\w-]+:)?File\b[^>]*?\s(?:[\w-]+:)?href\s*=\s*("([^"]*)"|'([^']*)')/g)) {
    const href = decodeXml(m[2] ?? m[3] ?? '');
    const plain = href !== '' && !/[\\/:]/.test(href) && href !== '..' && href !== '.';
    if (!plain || !members.has(href)) found.push({ field: 'OVF File href', file: href });
  }
  return found;
}

function decodeXml(text: string): string {
  return text.replace(/&(lt|gt|quot|apos|amp|#x[0-9a-f]+|#\d+);/gi, (all, name: string) => {
    const lower = name.toLowerCase();
    if (lower === 'lt') return '<';
    if (lower === 'gt') return '>';
    if (lower === 'quot') return '"';
    if (lower === 'apos') return "'";
    if (lower === 'amp') return '&';
    const code = lower.startsWith('#x') ? parseInt(lower.slice(2), 16) : parseInt(lower.slice(1), 10);
    return Number.isFinite(code) ? String.fromCodePoint(code) : all;
  });
}

/** `"/srv/base.raw" (backing-filename, full-backing-filename), "data.raw" (format-specific.data.data-file)` */
export function describeReferences(refs: readonly FileReference[]): string {
  const byFile = new Map<string | undefined, string[]>();
  for (const r of refs) byFile.set(r.file, [...(byFile.get(r.file) ?? []), r.field]);
  return [...byFile].map(([file, fields]) => (file === undefined ? fields.join(', ') : `${JSON.stringify(file)} (${fields.join(', ')})`)).join(', ');
}
