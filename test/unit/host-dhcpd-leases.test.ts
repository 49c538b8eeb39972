import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  DHCPD_LEASES_PATH, findDhcpdLease, formatMac, parseDhcpdLeases, parseMac, readDhcpdLease, sameMac,
} from '../../src/host/dhcpd-leases.ts';
import type { DhcpdLease } from '../../src/host/dhcpd-leases.ts';
import { REPO } from '../helpers/cli.ts';

const FIXTURES = join(REPO, 'test', 'fixtures', 'dhcpd-leases');
const fixture = (name: string): string => readFileSync(join(FIXTURES, name), 'utf8');

/** A lease in comparable plain form (Uint8Array printed as the padded MAC). */
const plain = (l: DhcpdLease | undefined) => (l === undefined ? undefined : { name: l.name, ip: l.ipAddress, mac: formatMac(l.mac), expiresAt: l.expiresAt });

async function withTempDir(run: (dir: string) => Promise<void>): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'dhcpd-leases-'));
  try {
    await run(dir);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

describe('parseMac', () => {
  test('accepts 1 or 2 hex digits per octet, either case, and returns the bytes', () => {
    assert.deepEqual([...(parseMac('8e:1:99:9c:54:b1') ?? [])], [0x8e, 0x01, 0x99, 0x9c, 0x54, 0xb1]);
    assert.deepEqual([...(parseMac('8E:01:99:9C:54:B1') ?? [])], [0x8e, 0x01, 0x99, 0x9c, 0x54, 0xb1]);
    assert.deepEqual([...(parseMac('0:0:0:0:0:0') ?? [])], [0, 0, 0, 0, 0, 0]);
    assert.deepEqual([...(parseMac('ff:ff:ff:ff:ff:ff') ?? [])], [255, 255, 255, 255, 255, 255]);
  });

  test('rejects anything but exactly 6 octets of 1-2 hex digits', () => {
    for (const bad of [
      '8e:01:99:9c:54', // 5 octets
      '8e:01:99:9c:54:b1:07', // 7 octets
      '8e:001:99:9c:54:b1', // 3-digit octet
      '8e:0g:99:9c:54:b1', // non-hex
      'zz:zz:zz:zz:zz:zz',
      '8e::99:9c:54:b1', // empty octet
      '8e-01-99-9c-54-b1', // not colon-separated
      '8e:01:99:9c:54:b1:', // trailing colon
      '+e:1:99:9c:54:b1', // parseInt would accept a sign
      '',
    ]) {
      assert.equal(parseMac(bad), undefined, bad);
    }
  });

  test('sameMac compares bytes and formatMac pads and lowercases', () => {
    const unpadded = parseMac('8e:1:99:9c:54:b1');
    const padded = parseMac('8E:01:99:9C:54:B1');
    const other = parseMac('8e:10:99:9c:54:b1');
    assert.ok(unpadded !== undefined && padded !== undefined && other !== undefined);
    assert.equal(sameMac(unpadded, padded), true);
    assert.equal(sameMac(unpadded, other), false);
    assert.equal(sameMac(unpadded, unpadded.subarray(0, 5)), false);
    assert.equal(formatMac(unpadded), '8e:01:99:9c:54:b1');
  });
});

describe('parseDhcpdLeases on the fixtures', () => {
  test('typical.leases: every VM, in file order, unnamed entry kept with no name', () => {
    assert.deepEqual(parseDhcpdLeases(fixture('typical.leases')).map(plain), [
      { name: 'devcluster', ip: '192.168.64.9', mac: 'ca:07:5e:00:b2:01', expiresAt: 0x66f2a3c0 },
      { name: 'lab-runner', ip: '192.168.64.8', mac: '9a:41:d0:2c:7e:13', expiresAt: 0x66f29f10 },
      { name: 'fedora-scratch', ip: '192.168.64.6', mac: 'f2:18:09:c3:aa:60', expiresAt: 0x66f1e4a8 },
      { name: undefined, ip: '192.168.64.4', mac: 'b6:e0:33:05:71:8d', expiresAt: 0x66f0c277 },
    ]);
  });

  test('typical.leases: a zero-padded query finds the entry bootpd wrote unpadded', () => {
    const text = fixture('typical.leases');
    // The test only proves byte comparison if the strings really differ.
    assert.ok(text.includes('hw_address=1,ca:7:5e:0:b2:1') && !text.includes('ca:07:5e:00:b2:01'));
    const leases = parseDhcpdLeases(text);
    assert.equal(findDhcpdLease(leases, 'ca:07:5e:00:b2:01')?.ipAddress, '192.168.64.9');
    assert.equal(findDhcpdLease(leases, 'F2:18:09:C3:AA:60')?.ipAddress, '192.168.64.6');
    assert.equal(findDhcpdLease(leases, '9a:41:d0:2c:7e:13')?.name, 'lab-runner');
  });

  test('typical.leases: a MAC that is not in the file has no lease', () => {
    const leases = parseDhcpdLeases(fixture('typical.leases'));
    assert.equal(findDhcpdLease(leases, 'ca:07:5e:00:b2:02'), undefined);
    assert.equal(findDhcpdLease(leases, '52:54:00:12:34:56'), undefined);
  });

  test('comment-header.leases: comment header, blank lines and an unknown key are accepted', () => {
    const text = fixture('comment-header.leases');
    assert.ok(text.startsWith('#') && text.includes('\n\n\n') && text.includes('future_key='));
    const leases = parseDhcpdLeases(text);
    assert.deepEqual(leases.map(plain), [
      { name: 'kube-lab', ip: '192.168.64.12', mac: '2e:5b:00:07:c1:d4', expiresAt: 0x670a11f0 },
      { name: 'devcluster-hk', ip: '192.168.64.11', mac: 'be:04:92:f0:06:3a', expiresAt: 0x670a0d30 },
    ]);
    assert.equal(findDhcpdLease(leases, 'be:04:92:f0:06:3a')?.ipAddress, '192.168.64.11');
  });

  test('crlf.leases: CRLF line ends leave no carriage return in the values', () => {
    const text = fixture('crlf.leases');
    assert.equal(text.split('\r\n').length, 15, 'the fixture must keep its CRLF line ends');
    assert.deepEqual(parseDhcpdLeases(text).map(plain), [
      { name: 'crlf-guest', ip: '192.168.64.21', mac: '7e:c2:01:9b:40:e5', expiresAt: 0x6711a0b4 },
      { name: 'other-guest', ip: '192.168.64.20', mac: '46:d9:73:0e:28:5f', expiresAt: 0x67119c04 },
    ]);
  });

  test('the LF fixtures have no carriage returns (so crlf.leases is the only CRLF case)', () => {
    for (const name of ['typical.leases', 'comment-header.leases', 'duid-first.leases', 'duplicate-mac.leases', 'malformed.leases']) {
      assert.equal(fixture(name).includes('\r'), false, name);
    }
  });

  test('duid-first.leases: the DUID entry is skipped and the Ethernet entry after it is found', () => {
    const text = fixture('duid-first.leases');
    assert.ok(text.indexOf('hw_address=ff,') < text.indexOf('hw_address=1,'));
    const leases = parseDhcpdLeases(text);
    assert.deepEqual(leases.map(plain), [{ name: 'devcluster', ip: '192.168.64.32', mac: 'd2:6f:a0:0b:93:17', expiresAt: 0x6720b6c8 }]);
    assert.equal(findDhcpdLease(leases, 'd2:6f:a0:0b:93:17')?.ipAddress, '192.168.64.32');
    // The DUID's first six octets are not a MAC of that entry.
    assert.equal(findDhcpdLease(leases, '3c:00:d1:02:00:01'), undefined);
  });

  test('duplicate-mac.leases: the newest lease wins, whatever its position', () => {
    const leases = parseDhcpdLeases(fixture('duplicate-mac.leases'));
    assert.equal(leases.length, 3);
    const newest = { name: 'devcluster', ip: '192.168.64.42', mac: '5a:e1:07:3c:9d:02', expiresAt: 0x67344c80 };
    assert.deepEqual(plain(findDhcpdLease(leases, '5a:e1:07:3c:9d:02')), newest);
    assert.deepEqual(plain(findDhcpdLease([...leases].reverse(), '5a:e1:7:3c:9d:2')), newest);
    // The upper-case, zero-padded entry in the file is the same MAC: it wins once the newest is gone.
    assert.equal(findDhcpdLease(leases.filter((l) => l.ipAddress !== '192.168.64.42'), '5a:e1:07:3c:9d:02')?.ipAddress, '192.168.64.41');
  });

  test('empty.leases: no leases', () => {
    const text = fixture('empty.leases');
    assert.equal(text, '');
    assert.deepEqual(parseDhcpdLeases(text), []);
  });

  test('malformed.leases: bad entries are skipped without losing the good ones', () => {
    const leases = parseDhcpdLeases(fixture('malformed.leases'));
    assert.deepEqual(leases.map(plain), [
      { name: 'good-ip', ip: '192.168.64.50', mac: '86:3d:c9:10:f4:7b', expiresAt: 0x6740a000 },
      { name: undefined, ip: '192.168.64.55', mac: '12:34:56:78:9a:bf', expiresAt: 0x6740a000 },
    ]);
    // bad-ip has the same MAC and a newer lease: only skipping it gives good-ip's address.
    assert.equal(findDhcpdLease(leases, '86:3d:c9:10:f4:7b')?.ipAddress, '192.168.64.50');
  });
});

describe('parseDhcpdLeases on odd text', () => {
  const entry = (ip: string, lease = '0x1') => `{\nname=x\nip_address=${ip}\nhw_address=1,2:0:0:0:0:1\nlease=${lease}\n}\n`;

  test('only dotted IPv4 addresses are accepted', () => {
    assert.equal(parseDhcpdLeases(entry('192.168.64.5')).length, 1);
    for (const bad of ['192.168.64', '192.168.064.5', '192.168.64.5.1', 'fe80::1', '', '192.168.64.256']) {
      assert.deepEqual(parseDhcpdLeases(entry(bad)), [], bad);
    }
  });

  test('only hex lease times are accepted', () => {
    assert.equal(parseDhcpdLeases(entry('192.168.64.5', '0X1F'))[0]?.expiresAt, 31);
    for (const bad of ['1700000000', '0x', '0xg1', '', '0x1234567890abc']) {
      assert.deepEqual(parseDhcpdLeases(entry('192.168.64.5', bad)), [], bad);
    }
  });

  test('text that is not a lease file gives no leases and does not throw', () => {
    for (const text of ['foo', '}\n}\n{', '{{\n}}', '=\n=\n', '\0\0\0', '{\n=1\n}', 'ip_address=1.2.3.4\nhw_address=1,1:2:3:4:5:6\nlease=0x1']) {
      assert.deepEqual(parseDhcpdLeases(text), [], JSON.stringify(text));
    }
  });
});

describe('findDhcpdLease', () => {
  test('an invalid MAC query is a caller bug and throws instead of waiting for a lease that cannot come', () => {
    const leases = parseDhcpdLeases(fixture('typical.leases'));
    for (const bad of ['ca:07:5e:00:b2', 'ca:007:5e:00:b2:01', 'ca:07:5e:00:b2:0x']) {
      assert.throws(() => findDhcpdLease(leases, bad), RangeError, bad);
    }
  });

  test('with a time, leases expired by then are not candidates: their address may belong to another machine now', () => {
    const leases = parseDhcpdLeases(fixture('duplicate-mac.leases'));
    const newest = 0x67344c80;
    assert.equal(findDhcpdLease(leases, '5a:e1:07:3c:9d:02', { now: newest - 1 })?.ipAddress, '192.168.64.42');
    assert.equal(findDhcpdLease(leases, '5a:e1:07:3c:9d:02', { now: newest }), undefined, 'expired at that second');
    const older = leases.filter((l) => l.ipAddress !== '192.168.64.42');
    const olderExpiry = Math.max(...older.map((l) => l.expiresAt));
    assert.equal(findDhcpdLease(leases, '5a:e1:07:3c:9d:02', { now: olderExpiry - 1 })?.ipAddress, '192.168.64.42', 'the newest still wins among live ones');
  });
});

describe('readDhcpdLease', () => {
  test('reads bootpd\'s file by default', () => {
    assert.equal(DHCPD_LEASES_PATH, '/var/db/dhcpd_leases');
  });

  test('the lease for a MAC from a file', async () => {
    await withTempDir(async (dir) => {
      const path = join(dir, 'dhcpd_leases');
      await writeFile(path, await readFile(join(FIXTURES, 'duplicate-mac.leases')));
      assert.equal((await readDhcpdLease('5a:e1:07:3c:9d:02', path))?.ipAddress, '192.168.64.42');
      assert.equal(await readDhcpdLease('5a:e1:07:3c:9d:03', path), undefined);
      assert.equal(await readDhcpdLease('5a:e1:07:3c:9d:02', path, { now: 0x67344c80 }), undefined);
    });
  });

  test('a missing file is "no lease yet"', async () => {
    await withTempDir(async (dir) => {
      assert.equal(await readDhcpdLease('5a:e1:07:3c:9d:02', join(dir, 'dhcpd_leases')), undefined);
    });
  });

  test('an empty file is no lease', async () => {
    assert.equal(await readDhcpdLease('ca:07:5e:00:b2:01', join(FIXTURES, 'empty.leases')), undefined);
  });

  test('other read errors propagate', async () => {
    await withTempDir(async (dir) => {
      const path = join(dir, 'dhcpd_leases');
      await mkdir(path);
      await assert.rejects(readDhcpdLease('5a:e1:07:3c:9d:02', path), (e: NodeJS.ErrnoException) => e.code === 'EISDIR');
    });
  });

  test('an invalid MAC throws even when there is no file yet', async () => {
    await withTempDir(async (dir) => {
      await assert.rejects(readDhcpdLease('5a:e1:07:3c:9d', join(dir, 'dhcpd_leases')), RangeError);
    });
  });
});
