import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { buildIso, layoutIso, MAX_ISO_EXTENT_BYTES, MAX_ISO_FILE_BYTES, primaryNames, SECTOR_SIZE } from '../../src/seed/iso9660.ts';
import type { IsoFile } from '../../src/seed/iso9660.ts';
import { DevclusterError } from '../../src/ui/errors.ts';

const enc = new TextEncoder();
const dec = new TextDecoder();

function files(): IsoFile[] {
  return [
    { name: 'user-data', data: enc.encode('#cloud-config\nhostname: a\n'), mode: 0o400 },
    { name: 'meta-data', data: enc.encode('instance-id: i-1\n') },
    { name: 'network-config', data: enc.encode('version: 2\n') },
  ];
}

const le32 = (b: Uint8Array, off: number): number => new DataView(b.buffer, b.byteOffset).getUint32(off, true);
const be32 = (b: Uint8Array, off: number): number => new DataView(b.buffer, b.byteOffset).getUint32(off, false);
const le16 = (b: Uint8Array, off: number): number => new DataView(b.buffer, b.byteOffset).getUint16(off, true);
const be16 = (b: Uint8Array, off: number): number => new DataView(b.buffer, b.byteOffset).getUint16(off, false);
const text = (b: Uint8Array, off: number, len: number): string => dec.decode(b.subarray(off, off + len));

/** A both-endian 32-bit field: asserts the two halves agree and returns the value. */
function both32(b: Uint8Array, off: number): number {
  assert.equal(le32(b, off), be32(b, off + 4), `both-endian field at ${off} disagrees`);
  return le32(b, off);
}

interface Rec {
  id: Uint8Array;
  extent: number;
  size: number;
  flags: number;
  su: Uint8Array;
  offset: number;
}

/** Reads a directory's records the way ECMA-119 readers do (a zero length byte ends a sector). */
function readDir(iso: Uint8Array, extent: number, size: number): Rec[] {
  const out: Rec[] = [];
  for (let s = 0; s < size / SECTOR_SIZE; s++) {
    let off = (extent + s) * SECTOR_SIZE;
    const end = off + SECTOR_SIZE;
    while (off < end && iso[off] !== 0) {
      const len = iso[off] as number;
      assert.ok(off + len <= end, 'a directory record crosses a sector boundary');
      assert.equal(len % 2, 0, 'directory records have even length');
      const idLen = iso[off + 32] as number;
      const suStart = off + 33 + idLen + (idLen % 2 === 0 ? 1 : 0);
      out.push({
        id: iso.subarray(off + 33, off + 33 + idLen),
        extent: both32(iso, off + 2),
        size: both32(iso, off + 10),
        flags: iso[off + 25] as number,
        su: iso.subarray(suStart, off + len),
        offset: off,
      });
      off += len;
    }
  }
  return out;
}

/** SUSP entries of a System Use field, as [signature, entry bytes]. */
function susp(su: Uint8Array): Array<[string, Uint8Array]> {
  const out: Array<[string, Uint8Array]> = [];
  let off = 0;
  while (off + 4 <= su.length) {
    const len = su[off + 2] as number;
    out.push([text(su, off, 2), su.subarray(off, off + len)]);
    off += len;
  }
  return out;
}

function ucs2(b: Uint8Array): string {
  let s = '';
  for (let i = 0; i + 1 < b.length; i += 2) s += String.fromCharCode(((b[i] as number) << 8) | (b[i + 1] as number));
  return s;
}

function isoError(fn: () => unknown): DevclusterError {
  try {
    fn();
  } catch (e) {
    assert.ok(e instanceof DevclusterError);
    assert.equal(e.id, 'SEED_ISO_INVALID_INPUT');
    assert.ok(e.advice !== undefined);
    return e;
  }
  assert.fail('expected SEED_ISO_INVALID_INPUT');
}

describe('buildIso structure', () => {
  const iso = buildIso({ volumeId: 'cidata', files: files() });
  const pvd = iso.subarray(16 * SECTOR_SIZE, 17 * SECTOR_SIZE);
  const svd = iso.subarray(17 * SECTOR_SIZE, 18 * SECTOR_SIZE);

  test('has an empty system area and the descriptor sequence PVD, Joliet SVD, terminator', () => {
    assert.equal(iso.length % SECTOR_SIZE, 0);
    assert.ok(iso.subarray(0, 16 * SECTOR_SIZE).every((b) => b === 0));
    assert.deepEqual([pvd[0], text(pvd, 1, 5), pvd[6]], [1, 'CD001', 1]);
    assert.deepEqual([svd[0], text(svd, 1, 5), svd[6], text(svd, 88, 3)], [2, 'CD001', 1, '%/E']);
    const term = iso.subarray(18 * SECTOR_SIZE, 19 * SECTOR_SIZE);
    assert.deepEqual([term[0], text(term, 1, 5), term[6]], [255, 'CD001', 1]);
  });

  test('labels both descriptors with the volume id and records the volume size', () => {
    assert.equal(text(pvd, 40, 32), 'cidata'.padEnd(32, ' '));
    assert.equal(ucs2(svd.subarray(40, 72)), 'cidata'.padEnd(16, ' '));
    assert.equal(both32(pvd, 80), iso.length / SECTOR_SIZE);
    assert.equal(both32(svd, 80), iso.length / SECTOR_SIZE);
    for (const d of [pvd, svd]) {
      assert.equal(le16(d, 128), SECTOR_SIZE);
      assert.equal(be16(d, 130), SECTOR_SIZE);
      assert.equal(le16(d, 120), 1);
      assert.equal(d[881], 1);
    }
    assert.equal(text(pvd, 813, 16), '1970010100000000');
  });

  test('path tables point at each tree\'s root directory, in both byte orders', () => {
    for (const d of [pvd, svd]) {
      const rootExtent = both32(d, 156 + 2);
      assert.equal(both32(d, 132), 10);
      const l = le32(d, 140);
      const m = be32(d, 148);
      assert.equal(iso[l * SECTOR_SIZE], 1);
      assert.equal(le32(iso, l * SECTOR_SIZE + 2), rootExtent);
      assert.equal(le16(iso, l * SECTOR_SIZE + 6), 1);
      assert.equal(be32(iso, m * SECTOR_SIZE + 2), rootExtent);
      assert.equal(be16(iso, m * SECTOR_SIZE + 6), 1);
    }
  });

  test('primary tree: sorted 8.3 names, Rock Ridge NM with the real names, data where the records say', () => {
    const root = readDir(iso, both32(pvd, 158), both32(pvd, 166));
    assert.deepEqual(
      root.map((r) => (r.id.length === 1 && (r.id[0] as number) < 2 ? r.id[0] : dec.decode(r.id))),
      [0, 1, 'META_DAT.;1', 'NETWORK_.;1', 'USER_DAT.;1'],
    );
    const byName = new Map(
      root.slice(2).map((r) => {
        const nm = susp(r.su).find(([sig]) => sig === 'NM');
        assert.ok(nm);
        return [text(nm[1], 5, nm[1].length - 5), r] as const;
      }),
    );
    for (const f of files()) {
      const r = byName.get(f.name);
      assert.ok(r, f.name);
      assert.deepEqual(iso.subarray(r.extent * SECTOR_SIZE, r.extent * SECTOR_SIZE + r.size), f.data);
      const px = susp(r.su).find(([sig]) => sig === 'PX');
      assert.ok(px);
      assert.equal(both32(px[1], 4), 0o100000 | (f.mode ?? 0o444));
    }
  });

  test('root "." starts with SP and continues to an ER entry naming RRIP_1991A', () => {
    const root = readDir(iso, both32(pvd, 158), both32(pvd, 166));
    const entries = susp((root[0] as Rec).su);
    assert.equal(entries[0]?.[0], 'SP');
    assert.deepEqual([...(entries[0]?.[1] ?? [])].slice(4, 6), [0xbe, 0xef]);
    const ce = entries.find(([sig]) => sig === 'CE');
    assert.ok(ce);
    const er = iso.subarray(both32(ce[1], 4) * SECTOR_SIZE + both32(ce[1], 12)).subarray(0, both32(ce[1], 20));
    assert.equal(text(er, 0, 2), 'ER');
    assert.equal(er[2], er.length);
    assert.equal(text(er, 8, er[4] as number), 'RRIP_1991A');
  });

  test('Joliet tree: UCS-2 real names pointing at the same data', () => {
    const primary = readDir(iso, both32(pvd, 158), both32(pvd, 166)).slice(2);
    const joliet = readDir(iso, both32(svd, 158), both32(svd, 166)).slice(2);
    assert.deepEqual(
      joliet.map((r) => ucs2(r.id)),
      ['meta-data', 'network-config', 'user-data'],
    );
    assert.deepEqual(
      joliet.map((r) => [r.extent, r.size]).sort(),
      primary.map((r) => [r.extent, r.size]).sort(),
    );
  });
});

describe('buildIso output', () => {
  test('is deterministic and takes its timestamps from the date option', () => {
    const a = buildIso({ volumeId: 'cidata', files: files() });
    const b = buildIso({ volumeId: 'cidata', files: files() });
    assert.deepEqual(a, b);
    const dated = buildIso({ volumeId: 'cidata', files: files(), date: new Date(Date.UTC(2026, 4, 17, 8, 9, 10)) });
    assert.notDeepEqual(a, dated);
    assert.equal(text(dated, 16 * SECTOR_SIZE + 813, 16), '2026051708091000');
  });

  test('places a file over several sectors and keeps empty files', () => {
    const big = new Uint8Array(3 * SECTOR_SIZE + 5).map((_, i) => i % 251);
    const iso = buildIso({ volumeId: 'CIDATA', files: [{ name: 'big.bin', data: big }, { name: 'empty', data: new Uint8Array(0) }] });
    const pvd = iso.subarray(16 * SECTOR_SIZE);
    const root = readDir(iso, both32(pvd, 158), both32(pvd, 166)).slice(2);
    const bigRec = root.find((r) => dec.decode(r.id) === 'BIG.BIN;1');
    assert.ok(bigRec);
    assert.deepEqual(iso.subarray(bigRec.extent * SECTOR_SIZE, bigRec.extent * SECTOR_SIZE + big.length), big);
    const emptyRec = root.find((r) => dec.decode(r.id) === 'EMPTY.;1');
    assert.equal(emptyRec?.size, 0);
  });

  test('spreads a large directory over several sectors', () => {
    const many = Array.from({ length: 40 }, (_, i) => ({ name: `${'f'.repeat(60)}-${String(i).padStart(2, '0')}`, data: enc.encode(String(i)) }));
    const iso = buildIso({ volumeId: 'cidata', files: many });
    const svd = iso.subarray(17 * SECTOR_SIZE);
    assert.ok(both32(svd, 166) > SECTOR_SIZE);
    const joliet = readDir(iso, both32(svd, 158), both32(svd, 166)).slice(2);
    assert.deepEqual(joliet.map((r) => ucs2(r.id)), many.map((f) => f.name));
  });
});

describe('primaryNames', () => {
  test('maps names to unique ISO level-1 8.3 names', () => {
    assert.deepEqual(primaryNames(['user-data', 'meta-data', 'network-config']), ['USER_DAT.;1', 'META_DAT.;1', 'NETWORK_.;1']);
    assert.deepEqual(primaryNames(['a.tar.gz', 'vendor-data', 'README']), ['A_TAR.GZ;1', 'VENDOR_D.;1', 'README.;1']);
    const clash = primaryNames(['network-config', 'network-configs', 'networkx', 'network_']);
    assert.equal(new Set(clash).size, clash.length);
    for (const n of clash) assert.match(n, /^[A-Z0-9_]{1,8}\.[A-Z0-9_]{0,3};1$/);
    const many = primaryNames(Array.from({ length: 120 }, (_, i) => `same-name-${i}`));
    assert.equal(new Set(many).size, 120);
    for (const n of many) assert.match(n, /^[A-Z0-9_]{1,8}\.;1$/);
  });
});

describe('buildIso rejects what it cannot write', () => {
  test('bad file names', () => {
    for (const name of ['', '.hidden', '-x', 'a/b', 'a b', 'ü', 'x.', 'a'.repeat(65), 'a\nb', 'a;1']) {
      const e = isoError(() => buildIso({ volumeId: 'cidata', files: [{ name, data: new Uint8Array(1) }] }));
      assert.ok(e.message.includes(JSON.stringify(name)));
    }
  });

  test('names that differ only in case', () => {
    isoError(() => buildIso({ volumeId: 'cidata', files: [{ name: 'a', data: new Uint8Array(0) }, { name: 'A', data: new Uint8Array(0) }] }));
  });

  test('bad volume labels, dates, modes and sizes', () => {
    for (const volumeId of ['', 'c'.repeat(17), 'ci data', 'cidätä']) isoError(() => buildIso({ volumeId, files: [] }));
    for (const date of [new Date(Number.NaN), new Date(Date.UTC(1899, 11, 31)), new Date(Date.UTC(2156, 0, 1))]) {
      isoError(() => buildIso({ volumeId: 'cidata', files: [], date }));
    }
    isoError(() => buildIso({ volumeId: 'cidata', files: [{ name: 'x', data: new Uint8Array(0), mode: 0o10000 }] }));
    isoError(() => buildIso({ volumeId: 'cidata', files: [{ name: 'x', data: 'text' as unknown as Uint8Array }] }));
    class Huge extends Uint8Array {
      override get length(): number {
        return MAX_ISO_FILE_BYTES + 1;
      }
    }
    isoError(() => buildIso({ volumeId: 'cidata', files: [{ name: 'x', data: new Huge(0) }] }));
  });
});

describe('layoutIso', () => {
  test('the head and the offsets are buildIso\'s image without the file data', () => {
    const given = files();
    const iso = buildIso({ volumeId: 'cidata', files: given });
    const layout = layoutIso({ volumeId: 'cidata', entries: given.map((f) => ({ name: f.name, size: f.data.length, ...(f.mode === undefined ? {} : { mode: f.mode }) })) });
    assert.equal(layout.size, iso.length);
    assert.deepEqual(layout.head, iso.subarray(0, layout.head.length));
    given.forEach((f, i) => {
      const at = layout.offsets[i] as number;
      assert.equal(at % SECTOR_SIZE, 0);
      assert.ok(at >= layout.head.length);
      assert.deepEqual(iso.subarray(at, at + f.data.length), f.data);
    });
  });

  test('places files larger than the in-memory limit, each on its own sectors, in the order given', () => {
    const sizes = [MAX_ISO_FILE_BYTES * 3 + 1, 0, 5];
    const layout = layoutIso({ volumeId: 'devcluster-kube', entries: sizes.map((size, i) => ({ name: `f${i}`, size })) });
    const [a, b, c] = layout.offsets as [number, number, number];
    assert.equal(b, a + Math.ceil(sizes[0] as number / SECTOR_SIZE) * SECTOR_SIZE);
    assert.equal(c, b, 'an empty file takes no sector');
    assert.equal(layout.size, c + SECTOR_SIZE);
  });

  test('refuses sizes an extent cannot record', () => {
    for (const size of [-1, 1.5, MAX_ISO_EXTENT_BYTES + 1, Number.NaN]) {
      const e = isoError(() => layoutIso({ volumeId: 'cidata', entries: [{ name: 'x', size }] }));
      assert.ok(e.message.includes('"x"'), e.message);
    }
  });
});
