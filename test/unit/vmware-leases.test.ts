import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { mkdir, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { formatMac } from '../../src/host/dhcpd-leases.ts';
import { findIscLease, parseIscLeases, readIscLease } from '../../src/host/isc-leases.ts';
import { findVmnetLease } from '../../drivers/vmware/network.ts';
import { REPO, tempDir } from '../helpers/cli.ts';

/**
 * vmnet8's DHCP leases in both formats VMware hosts have: ISC dhcpd.leases
 * (vmnet-dhcpd on Windows, Linux and most Fusion versions) and macOS
 * bootpd's (Fusion 12.0/12.1), on fixtures written from the documented
 * formats (test/fixtures/vmware/README.md).
 */

const FIXTURES = join(REPO, 'test', 'fixtures', 'vmware');
const fx = (name: string) => readFileSync(join(FIXTURES, name), 'utf8');
const at = (iso: string) => Date.parse(iso);
const dirs: string[] = [];
after(async () => {
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});
async function scratch(prefix: string): Promise<string> {
  const d = await tempDir(prefix);
  dirs.push(d);
  return d;
}

describe('parseIscLeases', () => {
  test('Windows file with CRLF: every lease, MACs as bytes, times in UTC', () => {
    const text = fx('vmnetdhcp-windows.leases');
    assert.ok(text.includes('\r\n'), 'the fixture has CRLF line ends');
    const leases = parseIscLeases(text);
    assert.deepEqual(leases.map((l) => [l.ipAddress, formatMac(l.mac), l.hostname]), [
      ['192.168.79.128', '00:50:56:2a:0b:0c', 'old-boot'],
      ['192.168.79.131', '00:50:56:2a:0b:0c', 'node'],
      ['192.168.79.135', '00:0c:29:aa:bb:cc', 'WIN-DESKTOP'],
    ]);
    assert.equal(leases[1]?.starts, at('2026-11-26T10:00:00Z'));
    assert.equal(leases[1]?.ends, at('2026-11-26T10:30:00Z'));
  });

  test('Linux file: tabs, glued brace, shared lines, unknown statements, ends never, free, no MAC, truncated', () => {
    const leases = parseIscLeases(fx('dhcpd-linux.leases'));
    assert.deepEqual(leases.map((l) => l.ipAddress), ['172.16.41.129', '172.16.41.140', '172.16.41.150', '172.16.41.151'], 'no lease without a MAC, none cut short');
    assert.equal(leases[1]?.starts, at('2026-11-26T10:20:00Z'));
    assert.equal(leases[2]?.ends, Infinity);
    assert.equal(leases[3]?.released, true);
    assert.equal(leases[0]?.released, false);
  });

  test('one-line leases, braces inside strings and nested blocks', () => {
    const leases = parseIscLeases('lease 10.0.0.5 { hardware ethernet 0:50:56:1:2:3; client-hostname "a { b } ; c"; on expiry { set x = 1; } ends 2 2026/01/06 00:00:00; }');
    assert.equal(leases.length, 1);
    assert.equal(formatMac(leases[0]?.mac as Uint8Array), '00:50:56:01:02:03');
    assert.equal(leases[0]?.hostname, 'a { b } ; c');
    assert.equal(leases[0]?.ends, at('2026-01-06T00:00:00Z'));
    assert.deepEqual(parseIscLeases(''), []);
    assert.deepEqual(parseIscLeases('lease 300.1.1.1 { hardware ethernet 00:50:56:00:00:01; }'), [], 'not an IPv4 address');
  });
});

describe('findIscLease', () => {
  const win = parseIscLeases(fx('vmnetdhcp-windows.leases'));
  const linux = parseIscLeases(fx('dhcpd-linux.leases'));

  test('the MAC matches in any case and the lease that ends last wins', () => {
    assert.equal(findIscLease(win, '00:50:56:2A:0B:0C', at('2026-11-26T10:10:00Z'))?.ipAddress, '192.168.79.131');
    assert.equal(findIscLease(linux, '0:50:56:3f:ff:1', at('2026-11-26T10:25:00Z'))?.ipAddress, '172.16.41.140');
  });

  test('expired, released and not-yet-started leases are not held', () => {
    assert.equal(findIscLease(win, '00:50:56:2a:0b:0c', at('2026-11-26T11:00:00Z')), undefined, 'all ended');
    assert.equal(findIscLease(win, '00:50:56:2a:0b:0c', at('2026-11-23T08:10:00Z'))?.ipAddress, '192.168.79.128', 'only the old one had started');
    assert.equal(findIscLease(linux, '00:50:56:00:00:08', at('2026-11-26T10:15:00Z')), undefined, 'binding state free');
    assert.equal(findIscLease(linux, '00:50:56:00:00:07', at('2099-01-01T00:00:00Z'))?.ipAddress, '172.16.41.150', 'ends never');
    assert.equal(findIscLease(linux, '00:50:56:00:00:09', at('2026-11-26T10:30:00Z')), undefined, 'the truncated lease is not trusted');
  });

  test('a MAC that is not one is a bug, not "no lease"', () => {
    assert.throws(() => findIscLease(win, '00:50:56:2a:0b', 0), RangeError);
  });

  test('readIscLease: a missing file is no lease', async () => {
    const dir = await scratch('isc-leases-');
    assert.equal(await readIscLease(join(dir, 'none.leases'), '00:50:56:00:00:01', 0), undefined);
    await writeFile(join(dir, 'x.leases'), fx('vmnetdhcp-windows.leases'));
    assert.equal((await readIscLease(join(dir, 'x.leases'), '00:0c:29:aa:bb:cc', at('2026-11-26T10:10:00Z')))?.ipAddress, '192.168.79.135');
  });
});

describe('findVmnetLease over both formats', () => {
  test('the first file that holds a current lease answers; bootpd octets without leading zeros match', async () => {
    const dir = await scratch('vmnet-leases-');
    const isc = join(dir, 'vmnet-dhcpd-vmnet8.leases');
    const bootpd = join(dir, 'dhcpd_leases');
    await writeFile(isc, fx('dhcpd-linux.leases'));
    await writeFile(bootpd, fx('bootpd-fusion.leases'));
    const files = [{ path: isc, format: 'isc' as const }, { path: bootpd, format: 'bootpd' as const }];
    const now = at('2026-11-26T10:25:00Z');
    // Fusion 12.0/12.1: bootpd wrote the lease; lease=0x6a2a1f00 is 2026-06-11, so "now" is before it.
    const early = at('2026-06-01T00:00:00Z');
    assert.deepEqual(await findVmnetLease(files, '00:50:56:3F:FF:01', now), { ip: '172.16.41.140', file: isc });
    assert.deepEqual(await findVmnetLease(files, '00:50:56:3f:ff:01', early), { ip: '172.16.41.133', file: bootpd }, 'ISC leases not started yet; bootpd holds one');
    assert.equal(await findVmnetLease(files, '00:50:56:3f:ff:02', now), undefined);
    assert.equal(await findVmnetLease([{ path: join(dir, 'absent'), format: 'isc' }], '00:50:56:3f:ff:01', now), undefined);
  });

  test('an unreadable file is reported and passed over', async () => {
    const dir = await scratch('vmnet-leases-');
    const notAFile = join(dir, 'is-a-dir');
    await mkdir(notAFile);
    const bootpd = join(dir, 'dhcpd_leases');
    await writeFile(bootpd, fx('bootpd-fusion.leases'));
    const seen: string[] = [];
    const hit = await findVmnetLease([{ path: notAFile, format: 'isc' }, { path: bootpd, format: 'bootpd' }], '00:50:56:3f:ff:01', at('2026-06-01T00:00:00Z'), (f, why) => seen.push(`${f} ${why}`));
    assert.equal(hit?.ip, '172.16.41.133');
    assert.deepEqual(seen, [`${notAFile} EISDIR`]);
  });
});
