/**
 * A small ISO9660 image writer for flat (root-only) volumes such as the
 * cloud-init NoCloud seed. Windows hosts have no mkisofs, so devcluster writes
 * the image itself instead of depending on an external tool.
 *
 * The image carries three views of the same files, because each guest OS reads
 * a different one:
 *   - the ECMA-119 primary tree, with level-1 8.3 names (USER_DAT.;1), which
 *     every reader understands;
 *   - Rock Ridge (SUSP + RRIP 1.10) entries on the primary tree, giving Linux
 *     the real lowercase names with dashes, and POSIX modes;
 *   - a Joliet supplementary tree (UCS-2 names) for Windows, macOS and BSDs.
 *
 * Layout (2048-byte sectors):
 *   0-15   system area (zero)
 *   16     primary volume descriptor
 *   17     Joliet supplementary volume descriptor
 *   18     volume descriptor set terminator
 *   19-22  path tables: primary L, primary M, Joliet L, Joliet M
 *   23..   primary root directory, Joliet root directory,
 *          one Rock Ridge continuation sector (holds the ER entry),
 *          then each file's data, each starting on a sector boundary.
 *
 * Output is a pure function of the input: timestamps come from `date`
 * (default: the Unix epoch), and nothing depends on the clock or the host.
 */
import { errorDef, inputError, registerErrors } from '../ui/errors.ts';

registerErrors({
  SEED_ISO_INVALID_INPUT: errorDef(
    'program',
    10,
    'The ISO9660 writer was given a volume label, file name, file size or date it cannot write (a bug in the caller).',
  ),
});

export interface IsoFile {
  /** Name at the root of the image: 1-64 of A-Z a-z 0-9 . _ - (no leading dot or dash). */
  name: string;
  data: Uint8Array;
  /** POSIX permission bits published through Rock Ridge; default 0o444. */
  mode?: number;
}

export interface IsoOptions {
  /** Volume label, e.g. `cidata`: 1-16 of A-Z a-z 0-9 _ -. */
  volumeId: string;
  files: readonly IsoFile[];
  /** Timestamp recorded for the volume and every file; default the Unix epoch. */
  date?: Date;
}

export const SECTOR_SIZE = 2048;
/** Seeds are a few KiB; this bound keeps a mistake from allocating gigabytes. */
export const MAX_ISO_FILE_BYTES = 64 * 1024 * 1024;
export const DEFAULT_ISO_DATE = new Date(Date.UTC(1970, 0, 1, 0, 0, 0));

const SYSTEM_AREA_SECTORS = 16;
const PVD_SECTOR = SYSTEM_AREA_SECTORS;
const JOLIET_SVD_SECTOR = 17;
const TERMINATOR_SECTOR = 18;
const PRIMARY_L_PATH_SECTOR = 19;
const PRIMARY_M_PATH_SECTOR = 20;
const JOLIET_L_PATH_SECTOR = 21;
const JOLIET_M_PATH_SECTOR = 22;
const FIRST_DIRECTORY_SECTOR = 23;

/** The root's path table entry: 8 bytes + 1-byte identifier + 1 pad byte. */
const ROOT_PATH_TABLE_SIZE = 10;
const DIRECTORY_RECORD_FIXED = 33;
const MAX_NAME_LENGTH = 64; // Joliet's limit in UCS-2 characters
const MAX_VOLUME_ID_LENGTH = 16; // Joliet volume id: 32 bytes of UCS-2

const FILE_NAME = /^[A-Za-z0-9_][A-Za-z0-9._-]*$/;
const VOLUME_ID = /^[A-Za-z0-9_-]+$/;

const FLAG_DIRECTORY = 0x02;
const S_IFDIR = 0o040000;
const S_IFREG = 0o100000;
const DIRECTORY_MODE = 0o555;
const DEFAULT_FILE_MODE = 0o444;

// RRIP 1.10 identification, as the Rock Ridge specification defines it for the ER entry.
const RRIP_ID = 'RRIP_1991A';
const RRIP_DESCRIPTOR = 'THE ROCK RIDGE INTERCHANGE PROTOCOL PROVIDES SUPPORT FOR POSIX FILE SYSTEM SEMANTICS';
const RRIP_SOURCE =
  'PLEASE CONTACT DISC PUBLISHER FOR SPECIFICATION SOURCE.  SEE PUBLISHER IDENTIFIER IN PRIMARY VOLUME DESCRIPTOR FOR CONTACT INFORMATION.';
// RR entry flags: which RRIP entries the record carries.
const RR_PX = 0x01;
const RR_NM = 0x08;
const RR_TF = 0x80;

const APPLICATION_ID = 'DEVCLUSTER';

function invalid(message: string, advice: string): never {
  throw inputError('SEED_ISO_INVALID_INPUT', message, { advice });
}

// ---------------------------------------------------------------- encoding

function both16(buf: Uint8Array, off: number, value: number): void {
  const v = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  v.setUint16(off, value, true);
  v.setUint16(off + 2, value, false);
}

function both32(buf: Uint8Array, off: number, value: number): void {
  const v = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  v.setUint32(off, value, true);
  v.setUint32(off + 4, value, false);
}

function ascii(text: string): Uint8Array {
  return Uint8Array.from(text, (c) => c.charCodeAt(0));
}

function ucs2(text: string): Uint8Array {
  const out = new Uint8Array(text.length * 2);
  for (let i = 0; i < text.length; i++) {
    const unit = text.charCodeAt(i);
    out[2 * i] = unit >> 8;
    out[2 * i + 1] = unit & 0xff;
  }
  return out;
}

/** An a-/d-character field: ASCII, padded with spaces. */
function putAsciiField(buf: Uint8Array, off: number, length: number, text: string): void {
  buf.fill(0x20, off, off + length);
  buf.set(ascii(text.slice(0, length)), off);
}

/** A Joliet field: UCS-2 big-endian padded with UCS-2 spaces; an odd last byte stays 0. */
function putUcs2Field(buf: Uint8Array, off: number, length: number, text: string): void {
  const chars = Math.floor(length / 2);
  const padded = text.slice(0, chars).padEnd(chars, ' ');
  buf.set(ucs2(padded), off);
  if (length % 2 === 1) buf[off + length - 1] = 0;
}

function concat(parts: readonly Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let off = 0;
  for (const p of parts) {
    out.set(p, off);
    off += p.length;
  }
  return out;
}

/** The 7-byte date of directory records and Rock Ridge TF entries (UTC, offset 0). */
function recordDate(date: Date): Uint8Array {
  return Uint8Array.from([
    date.getUTCFullYear() - 1900,
    date.getUTCMonth() + 1,
    date.getUTCDate(),
    date.getUTCHours(),
    date.getUTCMinutes(),
    date.getUTCSeconds(),
    0,
  ]);
}

/** The 17-byte date of volume descriptors: "YYYYMMDDHHMMSScc" + offset byte. */
function descriptorDate(date: Date): Uint8Array {
  const two = (n: number): string => String(n).padStart(2, '0');
  const text =
    String(date.getUTCFullYear()).padStart(4, '0') +
    two(date.getUTCMonth() + 1) +
    two(date.getUTCDate()) +
    two(date.getUTCHours()) +
    two(date.getUTCMinutes()) +
    two(date.getUTCSeconds()) +
    two(Math.floor(date.getUTCMilliseconds() / 10));
  return concat([ascii(text), Uint8Array.of(0)]);
}

/** "Not specified" per ECMA-119 8.4.26.1: sixteen '0' digits and a zero offset. */
const UNSPECIFIED_DATE = concat([ascii('0'.repeat(16)), Uint8Array.of(0)]);

// ---------------------------------------------------------------- SUSP / Rock Ridge entries

function suspEntry(signature: string, body: Uint8Array): Uint8Array {
  const entry = new Uint8Array(4 + body.length);
  entry.set(ascii(signature), 0);
  entry[2] = entry.length;
  entry[3] = 1; // entry version
  entry.set(body, 4);
  return entry;
}

/** SP: marks the volume as using SUSP; must open the root's "." record. */
function spEntry(): Uint8Array {
  return suspEntry('SP', Uint8Array.of(0xbe, 0xef, 0));
}

/** CE: where the rest of this record's System Use entries continue. */
function ceEntry(sector: number, offset: number, length: number): Uint8Array {
  const body = new Uint8Array(24);
  both32(body, 0, sector);
  both32(body, 8, offset);
  both32(body, 16, length);
  return suspEntry('CE', body);
}

/** ER: names the extension (RRIP 1.10) the volume uses. */
function erEntry(): Uint8Array {
  const id = ascii(RRIP_ID);
  const descriptor = ascii(RRIP_DESCRIPTOR);
  const source = ascii(RRIP_SOURCE);
  const head = Uint8Array.of(id.length, descriptor.length, source.length, 1);
  return suspEntry('ER', concat([head, id, descriptor, source]));
}

function rrEntry(flags: number): Uint8Array {
  return suspEntry('RR', Uint8Array.of(flags));
}

/** PX (RRIP 1.10 form, without the serial number): mode, links, uid, gid. */
function pxEntry(mode: number, links: number): Uint8Array {
  const body = new Uint8Array(32);
  both32(body, 0, mode);
  both32(body, 8, links);
  both32(body, 16, 0);
  both32(body, 24, 0);
  return suspEntry('PX', body);
}

function nmEntry(name: string): Uint8Array {
  return suspEntry('NM', concat([Uint8Array.of(0), ascii(name)]));
}

/** TF with modification, access and attribute-change times. */
function tfEntry(date: Date): Uint8Array {
  const stamp = recordDate(date);
  return suspEntry('TF', concat([Uint8Array.of(0x02 | 0x04 | 0x08), stamp, stamp, stamp]));
}

// ---------------------------------------------------------------- directory records

interface RecordSpec {
  /** File identifier bytes: 0x00 for ".", 0x01 for "..", else the encoded name. */
  identifier: Uint8Array;
  isDirectory: boolean;
  systemUse: Uint8Array;
  /** Resolved once the layout is known. */
  extent: () => number;
  size: () => number;
}

function recordLength(spec: Pick<RecordSpec, 'identifier' | 'systemUse'>): number {
  const idPad = spec.identifier.length % 2 === 0 ? 1 : 0;
  const length = DIRECTORY_RECORD_FIXED + spec.identifier.length + idPad + spec.systemUse.length;
  // Records start on even offsets; a trailing pad byte after the System Use field keeps them there.
  return length + (length % 2);
}

function encodeRecord(spec: RecordSpec, date: Date): Uint8Array {
  const length = recordLength(spec);
  if (length > 255) throw new Error(`directory record of ${length} bytes is too long`);
  const rec = new Uint8Array(length);
  rec[0] = length;
  rec[1] = 0; // extended attribute record length
  both32(rec, 2, spec.extent());
  both32(rec, 10, spec.size());
  rec.set(recordDate(date), 18);
  rec[25] = spec.isDirectory ? FLAG_DIRECTORY : 0;
  rec[26] = 0; // file unit size (not interleaved)
  rec[27] = 0; // interleave gap
  both16(rec, 28, 1); // volume sequence number
  rec[32] = spec.identifier.length;
  rec.set(spec.identifier, 33);
  const suOffset = 33 + spec.identifier.length + (spec.identifier.length % 2 === 0 ? 1 : 0);
  rec.set(spec.systemUse, suOffset);
  return rec;
}

/** How many sectors a directory needs: records never straddle a sector boundary. */
function directorySectors(records: readonly Pick<RecordSpec, 'identifier' | 'systemUse'>[]): number {
  let sectors = 1;
  let used = 0;
  for (const r of records) {
    const length = recordLength(r);
    if (used + length > SECTOR_SIZE) {
      sectors++;
      used = 0;
    }
    used += length;
  }
  return sectors;
}

function writeDirectory(image: Uint8Array, firstSector: number, records: readonly RecordSpec[], date: Date): void {
  let sector = firstSector;
  let used = 0;
  for (const r of records) {
    const encoded = encodeRecord(r, date);
    if (used + encoded.length > SECTOR_SIZE) {
      sector++;
      used = 0;
    }
    image.set(encoded, sector * SECTOR_SIZE + used);
    used += encoded.length;
  }
}

// ---------------------------------------------------------------- names

/**
 * ISO level-1 names: up to 8 d-characters, a dot, up to 3 d-characters and
 * the version ";1". Names that collide after shortening get a numeric tail.
 */
export function primaryNames(names: readonly string[]): string[] {
  const taken = new Set<string>();
  return names.map((name) => {
    const upper = name.toUpperCase();
    const dot = upper.lastIndexOf('.');
    const clean = (s: string): string => s.replace(/[^A-Z0-9_]/g, '_');
    let base = clean(dot === -1 ? upper : upper.slice(0, dot)).slice(0, 8);
    const ext = dot === -1 ? '' : clean(upper.slice(dot + 1)).slice(0, 3);
    if (base === '') base = '_';
    let candidate = `${base}.${ext}`;
    for (let n = 1; taken.has(candidate); n++) {
      const tail = String(n);
      candidate = `${base.slice(0, 8 - tail.length)}${tail}.${ext}`;
    }
    taken.add(candidate);
    return `${candidate};1`;
  });
}

/** ECMA-119 9.3 order: by name, then extension, each compared as if padded with spaces. */
function comparePrimary(a: string, b: string): number {
  const split = (s: string): [string, string] => {
    const bare = s.replace(/;\d+$/, '');
    const dot = bare.indexOf('.');
    return dot === -1 ? [bare, ''] : [bare.slice(0, dot), bare.slice(dot + 1)];
  };
  const [an, ae] = split(a);
  const [bn, be] = split(b);
  const cmp = (x: string, y: string): number => {
    const width = Math.max(x.length, y.length);
    const px = x.padEnd(width, ' ');
    const py = y.padEnd(width, ' ');
    return px < py ? -1 : px > py ? 1 : 0;
  };
  return cmp(an, bn) || cmp(ae, be);
}

function compareCodeUnits(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

// ---------------------------------------------------------------- validation

interface ValidateInput {
  volumeId: string;
  /** Files with their bytes (buildIso) or only their sizes (layoutIso). */
  entries: ReadonlyArray<{ name: string; mode?: number } & ({ data: Uint8Array } | { size: number })>;
  maxSize: number;
  date?: Date;
}

function validate(options: ValidateInput): Date {
  const { volumeId, entries: files } = options;
  if (typeof volumeId !== 'string' || volumeId.length === 0 || volumeId.length > MAX_VOLUME_ID_LENGTH || !VOLUME_ID.test(volumeId)) {
    invalid(
      `ISO volume label ${JSON.stringify(volumeId)} is not valid`,
      `A volume label is 1 to ${MAX_VOLUME_ID_LENGTH} characters: letters, digits, "_" and "-" (cloud-init looks for "cidata").`,
    );
  }
  if (!Array.isArray(files)) invalid('ISO files must be a list', 'Pass files: [{ name, data }].');
  const seen = new Map<string, string>();
  for (const file of files) {
    const { name } = file;
    if (
      typeof name !== 'string' ||
      name.length === 0 ||
      name.length > MAX_NAME_LENGTH ||
      !FILE_NAME.test(name) ||
      name.endsWith('.')
    ) {
      invalid(
        `ISO file name ${JSON.stringify(name)} is not valid`,
        `A file name is 1 to ${MAX_NAME_LENGTH} characters: letters, digits, ".", "_" and "-", starting with a letter, digit or "_" and not ending with "."; files live at the root, so "/" is not allowed.`,
      );
    }
    // Joliet readers (Windows, macOS) compare names case-insensitively.
    const folded = name.toLowerCase();
    const earlier = seen.get(folded);
    if (earlier !== undefined) {
      invalid(
        `ISO file names ${JSON.stringify(earlier)} and ${JSON.stringify(name)} are the same name`,
        'Each file needs a distinct name, ignoring case.',
      );
    }
    seen.set(folded, name);
    let size: number;
    if ('data' in file) {
      if (!(file.data instanceof Uint8Array)) invalid(`ISO file ${JSON.stringify(name)} has no byte content`, 'Pass file contents as a Uint8Array (or Buffer).');
      size = file.data.length;
    } else {
      if (!Number.isSafeInteger(file.size) || file.size < 0) invalid(`ISO file ${JSON.stringify(name)} has size ${String(file.size)}`, 'A size is a whole number of bytes, 0 or more.');
      size = file.size;
    }
    if (size > options.maxSize) {
      invalid(
        `ISO file ${JSON.stringify(name)} is ${size} bytes, more than the ${options.maxSize} this writer accepts`,
        options.maxSize === MAX_ISO_FILE_BYTES
          ? 'Seed files are small configuration files; ship large content in the guest image instead.'
          : 'An ISO9660 file is one extent, whose length is a 32-bit field.',
      );
    }
    if (file.mode !== undefined && (!Number.isInteger(file.mode) || file.mode < 0 || file.mode > 0o7777)) {
      invalid(`ISO file ${JSON.stringify(name)} has mode ${String(file.mode)}`, 'A mode is permission bits between 0 and 0o7777.');
    }
  }
  const date = options.date ?? DEFAULT_ISO_DATE;
  if (!(date instanceof Date) || Number.isNaN(date.getTime()) || date.getUTCFullYear() < 1900 || date.getUTCFullYear() > 2155) {
    invalid(`ISO date ${String(date)} cannot be recorded`, 'ISO9660 records years 1900 to 2155.');
  }
  return date;
}

// ---------------------------------------------------------------- volume descriptors

interface DescriptorFields {
  type: 1 | 2;
  volumeId: string;
  volumeSectors: number;
  lPathSector: number;
  mPathSector: number;
  rootRecord: Uint8Array;
  date: Date;
  joliet: boolean;
}

function volumeDescriptor(f: DescriptorFields): Uint8Array {
  const d = new Uint8Array(SECTOR_SIZE);
  const text = f.joliet ? putUcs2Field : putAsciiField;
  d[0] = f.type;
  d.set(ascii('CD001'), 1);
  d[6] = 1; // descriptor version
  d[7] = 0; // SVD volume flags: escape sequences are all ISO 2375-registered
  text(d, 8, 32, ''); // system identifier
  text(d, 40, 32, f.volumeId);
  both32(d, 80, f.volumeSectors);
  // UCS-2 level 3, the Joliet escape sequence "%/E".
  if (f.joliet) d.set(ascii('%/E'), 88);
  both16(d, 120, 1); // volume set size
  both16(d, 124, 1); // volume sequence number
  both16(d, 128, SECTOR_SIZE);
  both32(d, 132, ROOT_PATH_TABLE_SIZE);
  new DataView(d.buffer).setUint32(140, f.lPathSector, true);
  new DataView(d.buffer).setUint32(148, f.mPathSector, false);
  d.set(f.rootRecord, 156);
  text(d, 190, 128, ''); // volume set identifier
  text(d, 318, 128, ''); // publisher
  text(d, 446, 128, ''); // data preparer
  text(d, 574, 128, APPLICATION_ID);
  text(d, 702, 37, ''); // copyright file
  text(d, 739, 37, ''); // abstract file
  text(d, 776, 37, ''); // bibliographic file
  const stamp = descriptorDate(f.date);
  d.set(stamp, 813); // creation
  d.set(stamp, 830); // modification
  d.set(UNSPECIFIED_DATE, 847); // expiration
  d.set(stamp, 864); // effective
  d[881] = 1; // file structure version
  return d;
}

function terminator(): Uint8Array {
  const d = new Uint8Array(SECTOR_SIZE);
  d[0] = 255;
  d.set(ascii('CD001'), 1);
  d[6] = 1;
  return d;
}

/** The one-entry path table of a root-only tree, little- or big-endian. */
function rootPathTable(rootSector: number, littleEndian: boolean): Uint8Array {
  const t = new Uint8Array(ROOT_PATH_TABLE_SIZE);
  const v = new DataView(t.buffer);
  t[0] = 1; // identifier length
  t[1] = 0; // extended attribute record length
  v.setUint32(2, rootSector, littleEndian);
  v.setUint16(6, 1, littleEndian); // parent directory number: the root is its own parent
  t[8] = 0; // root identifier
  return t;
}

// ---------------------------------------------------------------- the image

/** A file of a volume laid out before its bytes are read (see layoutIso). */
export interface IsoEntry {
  name: string;
  size: number;
  mode?: number;
}

export interface IsoLayoutOptions {
  volumeId: string;
  entries: readonly IsoEntry[];
  date?: Date;
}

export interface IsoLayout {
  /** Every byte before the first file's data: descriptors, path tables, directories. */
  head: Uint8Array;
  /** Byte offset of each entry's data in the image, in the order given. */
  offsets: number[];
  /** The image's length: a whole number of sectors. */
  size: number;
}

/** One extent holds a file: its length is a 32-bit field. */
export const MAX_ISO_EXTENT_BYTES = 0xffffffff;

/**
 * Places the files of a volume and encodes everything but their data, so a
 * caller can stream large files after the head instead of holding the image
 * in memory. Each file's data starts at its offset and is zero-padded to a
 * sector boundary.
 */
export function layoutIso(options: IsoLayoutOptions): IsoLayout {
  const date = validate({ volumeId: options.volumeId, entries: options.entries, maxSize: MAX_ISO_EXTENT_BYTES, ...(options.date === undefined ? {} : { date: options.date }) });
  const files = options.entries.map((f, index) => ({ ...f, index }));
  const realNames = files.map((f) => f.name);
  const sortedForNames = [...realNames].sort(compareCodeUnits);
  const shortNames = new Map<string, string>();
  primaryNames(sortedForNames).forEach((short, i) => shortNames.set(sortedForNames[i] as string, short));

  // Data sectors are assigned once the directories are sized; records read them lazily.
  const dataSector: number[] = new Array<number>(files.length).fill(0);
  let primaryRootSector = 0;
  let primaryRootSectors = 0;
  let jolietRootSector = 0;
  let jolietRootSectors = 0;
  const er = erEntry();

  const primaryRoot = (): number => primaryRootSector;
  const primaryRootSize = (): number => primaryRootSectors * SECTOR_SIZE;
  const jolietRoot = (): number => jolietRootSector;
  const jolietRootSize = (): number => jolietRootSectors * SECTOR_SIZE;
  const rootDotSystemUse = (continuationSector: number): Uint8Array =>
    concat([spEntry(), rrEntry(RR_PX | RR_TF), pxEntry(S_IFDIR | DIRECTORY_MODE, 2), tfEntry(date), ceEntry(continuationSector, 0, er.length)]);

  // The CE entry's sector is filled in once the layout is known; its size does not depend on it.
  const rootDot: RecordSpec = { identifier: Uint8Array.of(0), isDirectory: true, systemUse: rootDotSystemUse(0), extent: primaryRoot, size: primaryRootSize };
  const primaryRecords: RecordSpec[] = [
    rootDot,
    {
      identifier: Uint8Array.of(1),
      isDirectory: true,
      systemUse: concat([rrEntry(RR_PX | RR_TF), pxEntry(S_IFDIR | DIRECTORY_MODE, 2), tfEntry(date)]),
      extent: primaryRoot,
      size: primaryRootSize,
    },
    ...files
      .map((f) => ({ f, short: shortNames.get(f.name) as string }))
      .sort((a, b) => comparePrimary(a.short, b.short))
      .map(({ f, short }) => ({
        identifier: ascii(short),
        isDirectory: false,
        systemUse: concat([rrEntry(RR_PX | RR_NM | RR_TF), nmEntry(f.name), pxEntry(S_IFREG | (f.mode ?? DEFAULT_FILE_MODE), 1), tfEntry(date)]),
        extent: () => dataSector[f.index] as number,
        size: () => f.size,
      })),
  ];

  const jolietDot: RecordSpec = { identifier: Uint8Array.of(0), isDirectory: true, systemUse: new Uint8Array(0), extent: jolietRoot, size: jolietRootSize };
  const jolietRecords: RecordSpec[] = [
    jolietDot,
    { identifier: Uint8Array.of(1), isDirectory: true, systemUse: new Uint8Array(0), extent: jolietRoot, size: jolietRootSize },
    ...[...files]
      .sort((a, b) => compareCodeUnits(a.name, b.name))
      .map((f) => ({
        identifier: ucs2(f.name),
        isDirectory: false,
        systemUse: new Uint8Array(0),
        extent: () => dataSector[f.index] as number,
        size: () => f.size,
      })),
  ];

  primaryRootSector = FIRST_DIRECTORY_SECTOR;
  primaryRootSectors = directorySectors(primaryRecords);
  jolietRootSector = primaryRootSector + primaryRootSectors;
  jolietRootSectors = directorySectors(jolietRecords);
  const continuationSector = jolietRootSector + jolietRootSectors;
  let next = continuationSector + 1;
  for (const f of files) {
    // An empty file still gets a valid in-volume address, it just occupies no sector.
    dataSector[f.index] = next;
    next += Math.ceil(f.size / SECTOR_SIZE);
  }
  const volumeSectors = next;
  if (volumeSectors > 0xffffffff) invalid(`the ISO image would be ${volumeSectors} sectors`, 'A volume holds at most 2^32 - 1 sectors of 2048 bytes.');

  rootDot.systemUse = rootDotSystemUse(continuationSector);

  const headSectors = continuationSector + 1;
  const image = new Uint8Array(headSectors * SECTOR_SIZE);
  // Sectors 0-15 (the system area) stay zero.
  image.set(
    volumeDescriptor({
      type: 1,
      volumeId: options.volumeId,
      volumeSectors,
      lPathSector: PRIMARY_L_PATH_SECTOR,
      mPathSector: PRIMARY_M_PATH_SECTOR,
      // The descriptor's copy of the root record carries no System Use field.
      rootRecord: encodeRecord({ ...rootDot, systemUse: new Uint8Array(0) }, date),
      date,
      joliet: false,
    }),
    PVD_SECTOR * SECTOR_SIZE,
  );
  image.set(
    volumeDescriptor({
      type: 2,
      volumeId: options.volumeId,
      volumeSectors,
      lPathSector: JOLIET_L_PATH_SECTOR,
      mPathSector: JOLIET_M_PATH_SECTOR,
      rootRecord: encodeRecord(jolietDot, date),
      date,
      joliet: true,
    }),
    JOLIET_SVD_SECTOR * SECTOR_SIZE,
  );
  image.set(terminator(), TERMINATOR_SECTOR * SECTOR_SIZE);
  image.set(rootPathTable(primaryRootSector, true), PRIMARY_L_PATH_SECTOR * SECTOR_SIZE);
  image.set(rootPathTable(primaryRootSector, false), PRIMARY_M_PATH_SECTOR * SECTOR_SIZE);
  image.set(rootPathTable(jolietRootSector, true), JOLIET_L_PATH_SECTOR * SECTOR_SIZE);
  image.set(rootPathTable(jolietRootSector, false), JOLIET_M_PATH_SECTOR * SECTOR_SIZE);
  writeDirectory(image, primaryRootSector, primaryRecords, date);
  writeDirectory(image, jolietRootSector, jolietRecords, date);
  image.set(er, continuationSector * SECTOR_SIZE);
  return { head: image, offsets: files.map((f) => (dataSector[f.index] as number) * SECTOR_SIZE), size: volumeSectors * SECTOR_SIZE };
}

/** The whole image in memory, for small volumes such as the seed. */
export function buildIso(options: IsoOptions): Uint8Array {
  validate({ volumeId: options.volumeId, entries: options.files, maxSize: MAX_ISO_FILE_BYTES, ...(options.date === undefined ? {} : { date: options.date }) });
  const layout = layoutIso({
    volumeId: options.volumeId,
    entries: options.files.map((f) => ({ name: f.name, size: f.data.length, ...(f.mode === undefined ? {} : { mode: f.mode }) })),
    ...(options.date === undefined ? {} : { date: options.date }),
  });
  const image = new Uint8Array(layout.size);
  image.set(layout.head, 0);
  options.files.forEach((f, i) => image.set(f.data, layout.offsets[i] as number));
  return image;
}
