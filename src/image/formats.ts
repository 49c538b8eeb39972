import { open } from 'node:fs/promises';

/** Disk formats a driver can boot from, and the extra files of a direct kernel boot. */
export const DISK_FORMATS = ['qcow2', 'vhdx', 'vmdk', 'ova', 'raw'] as const;
export type DiskFormat = (typeof DISK_FORMATS)[number];

export const BOOT_FILES = ['kernel', 'initrd'] as const;
export type BootFile = (typeof BOOT_FILES)[number];

export type ArtifactKind = DiskFormat | BootFile;
export const ARTIFACT_KINDS: readonly ArtifactKind[] = [...DISK_FORMATS, ...BOOT_FILES];

export function isDiskFormat(text: string): text is DiskFormat {
  return (DISK_FORMATS as readonly string[]).includes(text);
}

export function isArtifactKind(text: string): text is ArtifactKind {
  return (ARTIFACT_KINDS as readonly string[]).includes(text);
}

const EXTENSIONS: ReadonlyArray<[RegExp, DiskFormat]> = [
  [/\.qcow2$/i, 'qcow2'],
  [/\.vhdx$/i, 'vhdx'],
  [/\.vmdk$/i, 'vmdk'],
  [/\.ova$/i, 'ova'],
  [/\.(raw|img)$/i, 'raw'],
];

/** The format a file or URL name suggests, ignoring a query string. */
export function formatFromName(name: string): DiskFormat | undefined {
  const bare = name.replace(/[?#].*$/, '');
  return EXTENSIONS.find(([re]) => re.test(bare))?.[1];
}

/**
 * The format a file's first bytes prove, where the format has a signature:
 * qcow2 "QFI\xfb", VHDX "vhdxfile", VMDK sparse "KDMV" or a text descriptor,
 * OVA (a tar archive) "ustar" at offset 257. Raw has no signature.
 */
export function formatFromMagic(head: Uint8Array): DiskFormat | undefined {
  const ascii = (start: number, length: number) => Buffer.from(head.subarray(start, start + length)).toString('latin1');
  if (head[0] === 0x51 && head[1] === 0x46 && head[2] === 0x49 && head[3] === 0xfb) return 'qcow2';
  if (ascii(0, 8) === 'vhdxfile') return 'vhdx';
  if (ascii(0, 4) === 'KDMV' || ascii(0, 21) === '# Disk DescriptorFile') return 'vmdk';
  if (ascii(257, 5) === 'ustar') return 'ova';
  return undefined;
}

/**
 * What a local disk file is: its signature when it has one, else its
 * extension (only raw images have no signature), else undefined.
 */
export async function detectFormat(path: string): Promise<DiskFormat | undefined> {
  const handle = await open(path, 'r');
  try {
    const head = new Uint8Array(512);
    const { bytesRead } = await handle.read(head, 0, head.length, 0);
    const magic = formatFromMagic(head.subarray(0, bytesRead));
    if (magic !== undefined) return magic;
  } finally {
    await handle.close();
  }
  const byName = formatFromName(path);
  return byName === 'raw' ? 'raw' : undefined;
}
