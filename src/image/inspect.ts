import { open } from 'node:fs/promises';
import { resolve } from 'node:path';
import { run } from '../host/exec.ts';
import { findQemuProgram } from '../host/qemu-dirs.ts';
import { DevclusterError, isDevclusterError } from '../ui/errors.ts';
import './errors.ts';
import { describeReferences, fileReferences, ovfForeignReferences, vmdkDescriptorReferences } from './file-references.ts';
import type { FileReference } from './file-references.ts';
import { detectFormat, formatFromMagic } from './formats.ts';
import type { DiskFormat } from './formats.ts';
import { TarFormatError, readMemberHead, readMemberText, tarMembers } from './ova.ts';
import type { TarMember } from './ova.ts';

/**
 * The one check that an image names no other file, run before an image
 * enters the cache (download, import, build output: ImageCache.publish) and
 * again before a cached base goes to a VM (resolveImage). The header is read
 * by `qemu-img info --output=json -U -f <format>`: -U so a base that a running
 * VM holds open can still be read, -f so a raw disk is never probed as
 * another format. Without qemu-img the check cannot run, and the image is
 * refused rather than trusted.
 */
export interface InspectOptions {
  /** Whose image it is, for messages: the URL or path the user gave, or the catalog name. */
  readonly label?: string;
  /** The format the caller will use it as; a signature in the file wins. */
  readonly format?: DiskFormat;
  readonly signal?: AbortSignal;
}

const INFO_TIMEOUT_MS = 60_000;

const INSTALL_ADVICE: Readonly<Partial<Record<NodeJS.Platform, string>>> = {
  linux: 'Install qemu-img: `sudo apt-get install qemu-utils` (Debian/Ubuntu) or `sudo dnf install qemu-img` (Fedora).',
  darwin: 'Install qemu-img: `brew install qemu`.',
  win32: 'Install QEMU for Windows (qemu.org) into C:\\Program Files\\qemu, or put qemu-img.exe on PATH.',
};

function unavailable(label: string): DevclusterError {
  return new DevclusterError('IMAGE_CHECK_UNAVAILABLE', `qemu-img is needed to verify that ${label} references no other file, and it was not found; the image was not used`, {
    advice: INSTALL_ADVICE[process.platform] ?? 'Install qemu-img (part of QEMU) and put it on PATH.',
  });
}

function refused(label: string, refs: readonly FileReference[]): DevclusterError {
  return new DevclusterError('IMAGE_REFERENCES_FILE', `${label} was refused: it names another file, which a guest could read through its disk: ${describeReferences(refs)}; nothing was cached or booted`, {
    advice: 'Use a self-contained image. To fold a backing or data file you trust into one file: qemu-img convert -O qcow2 <image> <new.qcow2>, then use <new.qcow2>.',
    details: { image: label, references: refs.map((r) => ({ field: r.field, file: r.file ?? null })) },
  });
}

function unreadable(label: string, why: string, cause?: unknown): DevclusterError {
  return new DevclusterError('IMAGE_UNREADABLE', `${label} cannot be verified: ${why}`, {
    advice: 'The file is damaged or is not the disk format its signature or name claims. Download or build it again.',
    ...(cause === undefined ? {} : { cause }),
  });
}

/** `qemu-img info --output=json -U <args>`, qemu-img found on PATH or in QEMU's install folders. */
async function qemuImgInfo(args: readonly string[], label: string, signal?: AbortSignal): Promise<unknown> {
  const command = await findQemuProgram('qemu-img');
  if (command === undefined) throw unavailable(label);
  let stdout: string;
  try {
    stdout = (await run(command, ['info', '--output=json', '-U', ...args], {
      parse: true,
      timeoutMs: INFO_TIMEOUT_MS,
      ...(signal === undefined ? {} : { signal }),
    })).stdout;
  } catch (e) {
    if (isDevclusterError(e) && e.id === 'HOST_COMMAND_NOT_FOUND') throw unavailable(label);
    if (isDevclusterError(e) && e.id === 'HOST_COMMAND_FAILED') {
      const tail = typeof e.details['stderrTail'] === 'string' ? (e.details['stderrTail'] as string).trim().split('\n').at(-1) ?? '' : '';
      throw unreadable(label, `qemu-img cannot open it${tail === '' ? '' : ` (${tail.replace(/^qemu-img:\s*/, '')})`}`, e);
    }
    throw e;
  }
  try {
    return JSON.parse(stdout) as unknown;
  } catch (e) {
    throw unreadable(label, `qemu-img printed no JSON (${(e as Error).message})`, e);
  }
}

async function head(path: string, length = 64 * 1024): Promise<Buffer> {
  const handle = await open(path, 'r');
  try {
    const buf = Buffer.alloc(length);
    const { bytesRead } = await handle.read(buf, 0, length, 0);
    return buf.subarray(0, bytesRead);
  } finally {
    await handle.close();
  }
}

function isTextDescriptor(bytes: Uint8Array): boolean {
  return Buffer.from(bytes.subarray(0, 21)).toString('latin1') === '# Disk DescriptorFile';
}

/** A file on disk, read as `format` (the signature decides when there is one; no signature is raw). */
async function checkDisk(path: string, format: DiskFormat, label: string, signal?: AbortSignal): Promise<void> {
  if (format === 'vmdk' && isTextDescriptor(await head(path))) {
    const refs = vmdkDescriptorReferences((await head(path)).toString('utf8'));
    throw refused(label, refs.length > 0 ? refs : [{ field: 'VMDK text descriptor', file: undefined }]);
  }
  const info = await qemuImgInfo(['-f', format, path], label, signal);
  const reported = (info as { format?: unknown } | null)?.format;
  if (reported !== format) throw unreadable(label, `qemu-img reads it as ${String(reported)}, not ${format}`);
  const refs = fileReferences(info, path);
  if (refs.length > 0) throw refused(label, refs);
}

const MEMBER_TYPES: Readonly<Record<string, string>> = { 1: 'a hard link', 2: 'a symbolic link', 3: 'a character device', 4: 'a block device', 6: 'a FIFO' };

function unsafeMemberName(name: string): boolean {
  return name.startsWith('/') || /^[A-Za-z]:/.test(name) || name.split(/[\\/]/).includes('..');
}

/** An OVA: every member stays inside the archive, the OVF names only members, and every disk member is self-contained. */
async function checkOva(path: string, label: string, signal?: AbortSignal): Promise<void> {
  let members: TarMember[];
  try {
    members = await tarMembers(path);
  } catch (e) {
    if (e instanceof TarFormatError) throw unreadable(label, `it is not a readable OVA (tar) archive: ${e.message}`, e);
    throw e;
  }
  const refs: FileReference[] = [];
  for (const m of members) {
    const kind = MEMBER_TYPES[m.type];
    if (kind !== undefined) refs.push({ field: `OVA member ${JSON.stringify(m.name)} is ${kind}`, file: m.linkName === '' ? m.name : m.linkName });
    else if (unsafeMemberName(m.name)) refs.push({ field: 'OVA member path', file: m.name });
  }
  if (refs.length > 0) throw refused(label, refs);
  const files = members.filter((m) => m.type === '0' || m.type === '7');
  const names = new Set(files.map((m) => m.name));
  for (const m of files.filter((f) => /\.ovf$/i.test(f.name))) refs.push(...ovfForeignReferences(await readMemberText(path, m), names));
  if (refs.length > 0) throw refused(label, refs);
  const absolute = resolve(path);
  for (const m of files) {
    const memberHead = await readMemberHead(path, m, 64 * 1024);
    if (isTextDescriptor(memberHead)) {
      const found = vmdkDescriptorReferences(memberHead.toString('utf8'));
      throw refused(`${label} (member ${m.name})`, found.length > 0 ? found : [{ field: 'VMDK text descriptor', file: undefined }]);
    }
    const format = formatFromMagic(memberHead);
    if (format === undefined || format === 'raw') continue;
    if (format === 'ova') throw refused(label, [{ field: 'OVA member is itself an archive', file: m.name }]);
    // The member is read in place through a raw window onto the archive, so nothing is extracted.
    const window = `json:${JSON.stringify({ driver: format, file: { driver: 'raw', offset: m.offset, size: m.size, file: { driver: 'file', filename: absolute } } })}`;
    const info = await qemuImgInfo([window], `${label} (member ${m.name})`, signal);
    const found = fileReferences(info, absolute);
    if (found.length > 0) throw refused(`${label} (member ${m.name})`, found);
  }
}

/**
 * Refuses (IMAGE_REFERENCES_FILE) a disk image that names any file besides
 * itself; IMAGE_UNREADABLE when qemu-img cannot read it as its format;
 * IMAGE_CHECK_UNAVAILABLE when qemu-img is missing. Returns the format it was
 * read as.
 */
export async function assertSelfContained(path: string, options: InspectOptions = {}): Promise<DiskFormat> {
  const label = options.label ?? path;
  const format = (await detectFormat(path)) ?? options.format ?? 'raw';
  if (format === 'ova') await checkOva(path, label, options.signal);
  else await checkDisk(path, format, label, options.signal);
  return format;
}
