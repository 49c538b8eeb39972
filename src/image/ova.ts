import { open } from 'node:fs/promises';

/**
 * The members of an OVA (a tar archive: ustar, with pax or GNU long names):
 * where each one's bytes are, so its disks can be inspected in place.
 */
export interface TarMember {
  readonly name: string;
  /** tar typeflag: '0' file, '1' hard link, '2' symlink, '5' directory, ... */
  readonly type: string;
  readonly linkName: string;
  /** Byte offset of the member's data in the archive. */
  readonly offset: number;
  readonly size: number;
}

const BLOCK = 512;
/** An OVF descriptor or a long name is small; anything bigger is not what it claims. */
const MAX_TEXT = 4 * 1024 * 1024;

function field(block: Buffer, start: number, length: number): string {
  const raw = block.subarray(start, start + length);
  const end = raw.indexOf(0);
  return raw.subarray(0, end === -1 ? raw.length : end).toString('utf8');
}

function octal(block: Buffer, start: number, length: number): number {
  // Sizes of 8 GiB and more are stored base-256, flagged by the high bit.
  if ((block[start] ?? 0) & 0x80) {
    let n = 0;
    for (let i = start + 1; i < start + length; i += 1) n = n * 256 + (block[i] ?? 0);
    return n;
  }
  const text = field(block, start, length).trim();
  return text === '' ? 0 : parseInt(text, 8);
}

function paxRecords(text: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const m of text.matchAll(/^\d+ ([^=\n]+)=([^\n]*)$/gm)) out.set(m[1] as string, m[2] as string);
  return out;
}

export class TarFormatError extends Error {}

/** Reads the member headers of a tar file without reading the members. */
export async function tarMembers(path: string): Promise<TarMember[]> {
  const handle = await open(path, 'r');
  try {
    const { size: total } = await handle.stat();
    const members: TarMember[] = [];
    const header = Buffer.alloc(BLOCK);
    let position = 0;
    let longName: string | undefined;
    let pax = new Map<string, string>();
    const readText = async (at: number, size: number): Promise<string> => {
      if (size > MAX_TEXT) throw new TarFormatError(`a tar header record of ${size} bytes at offset ${at}`);
      const buf = Buffer.alloc(size);
      await handle.read(buf, 0, size, at);
      return buf.toString('utf8');
    };
    while (position + BLOCK <= total) {
      const { bytesRead } = await handle.read(header, 0, BLOCK, position);
      if (bytesRead < BLOCK) throw new TarFormatError(`truncated tar header at offset ${position}`);
      if (header.every((b) => b === 0)) break;
      if (field(header, 257, 5) !== 'ustar') throw new TarFormatError(`no ustar header at offset ${position}`);
      let sum = 0;
      for (let i = 0; i < BLOCK; i += 1) sum += i >= 148 && i < 156 ? 0x20 : (header[i] as number);
      if (sum !== octal(header, 148, 8)) throw new TarFormatError(`bad tar header checksum at offset ${position}`);
      const type = field(header, 156, 1) || '0';
      const size = pax.has('size') ? Number(pax.get('size')) : octal(header, 124, 12);
      const offset = position + BLOCK;
      if (!Number.isSafeInteger(size) || offset + size > total) throw new TarFormatError(`tar member at offset ${position} runs past the end of the file`);
      position = offset + Math.ceil(size / BLOCK) * BLOCK;
      if (type === 'L') {
        longName = (await readText(offset, size)).replace(/\0+$/, '');
        continue;
      }
      if (type === 'x') {
        pax = paxRecords(await readText(offset, size));
        continue;
      }
      if (type === 'g') continue;
      const prefix = field(header, 345, 155);
      const name = pax.get('path') ?? longName ?? (prefix === '' ? field(header, 0, 100) : `${prefix}/${field(header, 0, 100)}`);
      const linkName = pax.get('linkpath') ?? field(header, 157, 100);
      members.push({ name, type, linkName, offset, size });
      longName = undefined;
      pax = new Map();
    }
    return members;
  } finally {
    await handle.close();
  }
}

/** Reads one member's bytes as text (an OVF descriptor). */
export async function readMemberText(path: string, member: TarMember): Promise<string> {
  if (member.size > MAX_TEXT) throw new TarFormatError(`${member.name} is ${member.size} bytes, too big for a descriptor`);
  const handle = await open(path, 'r');
  try {
    const buf = Buffer.alloc(member.size);
    await handle.read(buf, 0, member.size, member.offset);
    return buf.toString('utf8');
  } finally {
    await handle.close();
  }
}

/** The first bytes of a member (its format signature). */
export async function readMemberHead(path: string, member: TarMember, length = 512): Promise<Buffer> {
  const handle = await open(path, 'r');
  try {
    const buf = Buffer.alloc(Math.min(length, member.size));
    await handle.read(buf, 0, buf.length, member.offset);
    return buf;
  } finally {
    await handle.close();
  }
}
