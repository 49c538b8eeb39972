/**
 * The hosted sparse VMDK format (VMware's "Virtual Disk Format 1.1"), as
 * far as the driver needs it: read a sparse extent's header and embedded
 * descriptor (capacity, CID, geometry), and write a child (delta) disk whose
 * every grain is unallocated, so the guest reads the parent until it writes.
 *
 * Why a hand-written child and not `vmrun clone ... linked`: a linked clone
 * needs a template VM with a snapshot (a VM devcluster would have to keep
 * and share between profiles, in the image cache) and Workstation Pro;
 * vmware-vdiskmanager has no "create child" operation. A delta is what
 * VMware itself writes for a snapshot: the same sparse layout with
 * `parentCID` and `parentFileNameHint` in its descriptor.
 *
 * Layout of the child: header (sector 0), descriptor (sectors 1-20), the
 * redundant grain directory and tables, the grain directory and tables,
 * padded to a whole grain. All tables are zero: no grain is allocated.
 */

import { randomBytes } from 'node:crypto';
import { open } from 'node:fs/promises';
import { basename } from 'node:path';

const SECTOR = 512;
const MAGIC = 0x564d444b; // "KDMV" read as a little-endian uint32
const GRAIN_SECTORS = 128; // 64 KiB, VMware's default
const GTES_PER_GT = 512;
const DESCRIPTOR_SECTORS = 20;
const FLAG_NEWLINE_TEST = 1 << 0;
const FLAG_REDUNDANT_GT = 1 << 1;

export interface SparseHeader {
  version: number;
  flags: number;
  /** Virtual size, in 512-byte sectors. */
  capacity: bigint;
  grainSize: bigint;
  descriptorOffset: bigint;
  descriptorSize: bigint;
  numGTEsPerGT: number;
  rgdOffset: bigint;
  gdOffset: bigint;
  overHead: bigint;
  compressAlgorithm: number;
}

export function parseSparseHeader(buf: Uint8Array): SparseHeader | undefined {
  if (buf.length < SECTOR) return undefined;
  const v = new DataView(buf.buffer, buf.byteOffset, SECTOR);
  if (v.getUint32(0, true) !== MAGIC) return undefined;
  return {
    version: v.getUint32(4, true),
    flags: v.getUint32(8, true),
    capacity: v.getBigUint64(12, true),
    grainSize: v.getBigUint64(20, true),
    descriptorOffset: v.getBigUint64(28, true),
    descriptorSize: v.getBigUint64(36, true),
    numGTEsPerGT: v.getUint32(44, true),
    rgdOffset: v.getBigUint64(48, true),
    gdOffset: v.getBigUint64(56, true),
    overHead: v.getBigUint64(64, true),
    compressAlgorithm: v.getUint16(77, true),
  };
}

export interface SparseDisk {
  header: SparseHeader;
  descriptor: DiskDescriptor;
}

export interface DiskDescriptor {
  /** The content ID a child's parentCID must name: 8 hex digits. */
  cid: string;
  parentCid: string | undefined;
  createType: string | undefined;
  parentFileNameHint: string | undefined;
  /** ddb.* entries, key as written. */
  ddb: Map<string, string>;
}

/** The `key=value` and `ddb.key = "value"` lines of a descriptor; extents and comments are skipped. */
export function parseDescriptor(text: string): DiskDescriptor {
  const fields = new Map<string, string>();
  const ddb = new Map<string, string>();
  for (const raw of text.split('\n')) {
    const line = raw.replace(/\0/g, '').trim();
    if (line === '' || line.startsWith('#')) continue;
    const m = /^([A-Za-z][\w.]*)\s*=\s*"?(.*?)"?$/.exec(line);
    if (m === null) continue;
    const [, key, value] = m as unknown as [string, string, string];
    if (key.startsWith('ddb.')) ddb.set(key, value);
    else fields.set(key.toLowerCase(), value);
  }
  const parent = fields.get('parentcid');
  return {
    cid: (fields.get('cid') ?? '').toLowerCase(),
    parentCid: parent === undefined || /^f{8}$/i.test(parent) ? undefined : parent.toLowerCase(),
    createType: fields.get('createtype'),
    parentFileNameHint: fields.get('parentfilenamehint'),
    ddb,
  };
}

/** The header and embedded descriptor of a sparse VMDK (monolithicSparse or streamOptimized); undefined when it is neither. */
export async function readSparseDisk(path: string): Promise<SparseDisk | undefined> {
  const handle = await open(path, 'r');
  try {
    const head = new Uint8Array(SECTOR);
    const { bytesRead } = await handle.read(head, 0, SECTOR, 0);
    const header = parseSparseHeader(head.subarray(0, bytesRead));
    if (header === undefined || header.descriptorOffset === 0n || header.descriptorSize === 0n || header.descriptorSize > 2048n) return undefined;
    const size = Number(header.descriptorSize) * SECTOR;
    const text = new Uint8Array(size);
    const read = await handle.read(text, 0, size, Number(header.descriptorOffset) * SECTOR);
    return { header, descriptor: parseDescriptor(Buffer.from(text.subarray(0, read.bytesRead)).toString('utf8')) };
  } finally {
    await handle.close();
  }
}

/** Characters a descriptor's quoted file name cannot hold. */
export function descriptorPathProblem(path: string): string | undefined {
  // eslint-disable-next-line no-control-regex
  return /["\u0000-\u001f\u007f]/.test(path) ? 'it holds a double quote or a control character, which a VMDK descriptor cannot quote' : undefined;
}

export interface DeltaDisk {
  /** The child's path; its descriptor names it by its base name. */
  path: string;
  parent: { path: string; disk: SparseDisk };
  virtualHwVersion: number;
}

export function deltaDescriptor(d: DeltaDisk, cid: string): string {
  const capacity = d.parent.disk.header.capacity;
  const pd = d.parent.disk.descriptor;
  const ddb: Array<[string, string]> = [];
  for (const key of ['ddb.adapterType', 'ddb.geometry.cylinders', 'ddb.geometry.heads', 'ddb.geometry.sectors']) {
    const value = pd.ddb.get(key);
    if (value !== undefined) ddb.push([key, value]);
  }
  ddb.push(['ddb.longContentID', randomBytes(12).toString('hex') + cid], ['ddb.virtualHWVersion', String(d.virtualHwVersion)]);
  return [
    '# Disk DescriptorFile',
    'version=1',
    'encoding="UTF-8"',
    `CID=${cid}`,
    `parentCID=${pd.cid}`,
    'isNativeSnapshot="no"',
    'createType="monolithicSparse"',
    `parentFileNameHint="${d.parent.path}"`,
    '',
    '# Extent description',
    `RW ${capacity} SPARSE "${basename(d.path)}"`,
    '',
    '# The Disk Data Base',
    '#DDB',
    '',
    ...ddb.map(([k, v]) => `${k} = "${v}"`),
    '',
  ].join('\n');
}

/** The complete bytes of an empty child of `d.parent` (a few MiB for a large disk: its grain tables). */
export function deltaDiskBytes(d: DeltaDisk, cid: string = randomBytes(4).toString('hex')): Uint8Array {
  const capacity = d.parent.disk.header.capacity;
  const descriptor = Buffer.from(deltaDescriptor(d, cid), 'utf8');
  if (descriptor.length > DESCRIPTOR_SECTORS * SECTOR) throw new RangeError('the delta descriptor does not fit its 20 sectors (the parent path is too long)');
  const grains = (capacity + BigInt(GRAIN_SECTORS) - 1n) / BigInt(GRAIN_SECTORS);
  const numGTs = Number((grains + BigInt(GTES_PER_GT) - 1n) / BigInt(GTES_PER_GT));
  const gdSectors = Math.ceil((numGTs * 4) / SECTOR);
  const gtSectors = numGTs * ((GTES_PER_GT * 4) / SECTOR);
  const rgdOffset = 1 + DESCRIPTOR_SECTORS;
  const rgtStart = rgdOffset + gdSectors;
  const gdOffset = rgtStart + gtSectors;
  const gtStart = gdOffset + gdSectors;
  const overHead = Math.ceil((gtStart + gtSectors) / GRAIN_SECTORS) * GRAIN_SECTORS;

  const bytes = new Uint8Array(overHead * SECTOR);
  const v = new DataView(bytes.buffer);
  v.setUint32(0, MAGIC, true);
  v.setUint32(4, 1, true);
  v.setUint32(8, FLAG_NEWLINE_TEST | FLAG_REDUNDANT_GT, true);
  v.setBigUint64(12, capacity, true);
  v.setBigUint64(20, BigInt(GRAIN_SECTORS), true);
  v.setBigUint64(28, 1n, true);
  v.setBigUint64(36, BigInt(DESCRIPTOR_SECTORS), true);
  v.setUint32(44, GTES_PER_GT, true);
  v.setBigUint64(48, BigInt(rgdOffset), true);
  v.setBigUint64(56, BigInt(gdOffset), true);
  v.setBigUint64(64, BigInt(overHead), true);
  v.setUint8(72, 0);
  // The newline-detection characters: a file that went through a text-mode transfer is recognised as damaged.
  bytes.set([0x0a, 0x20, 0x0d, 0x0a], 73);
  bytes.set(descriptor, SECTOR);
  for (let i = 0; i < numGTs; i++) {
    v.setUint32(rgdOffset * SECTOR + i * 4, rgtStart + i * 4, true);
    v.setUint32(gdOffset * SECTOR + i * 4, gtStart + i * 4, true);
  }
  return bytes;
}
