import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { applyMirror, parseMirror } from '../../src/image/mirror.ts';
import { noProxyMatches, proxyFor } from '../../src/image/proxy.ts';
import { formatFromMagic, formatFromName } from '../../src/image/formats.ts';
import { RateMeter, describeProgress, eta, formatBytes, progressPrinter } from '../../src/image/progress.ts';
import type { DownloadProgress } from '../../src/image/progress.ts';
import { formatAgo, imageListItems, imageListTable } from '../../src/image/listing.ts';
import { referencedDigests } from '../../src/image/references.ts';
import { parseManifest } from '../../src/image/built.ts';
import { checkBuildHost } from '../../src/image/build.ts';
import { classifyImage, imageStateRecord } from '../../src/image/resolve.ts';
import { safeFileName, withCompanions } from '../../src/image/cache.ts';
import type { CacheIndex } from '../../src/image/cache.ts';
import { DevclusterError } from '../../src/ui/errors.ts';

const BASE = 'https://github.com/devcluster/devcluster/releases/download/';
const A = 'a'.repeat(64);
const B = 'b'.repeat(64);
const C = 'c'.repeat(64);

function isError(id: string) {
  return (e: unknown) => e instanceof DevclusterError && e.id === id;
}

describe('DEVCLUSTER_IMAGE_MIRROR', () => {
  test('a bare URL replaces the catalog download base and keeps the rest of the path', () => {
    const rule = parseMirror('https://mirror.corp/devcluster', BASE);
    assert.equal(applyMirror(`${BASE}photon-5-5.0/photon-5.qcow2`, rule), 'https://mirror.corp/devcluster/photon-5-5.0/photon-5.qcow2');
    assert.equal(applyMirror('https://example.com/my.qcow2', rule), 'https://example.com/my.qcow2', 'URLs outside the base are left alone');
  });

  test('FROM=TO rewrites any URL with that prefix, even one with = in its query', () => {
    const rule = parseMirror('https://example.com/images/=http://127.0.0.1:8080/cache/', BASE);
    assert.deepEqual(rule, { from: 'https://example.com/images/', to: 'http://127.0.0.1:8080/cache/' });
    assert.equal(applyMirror('https://example.com/images/x.qcow2?sig=a=b', rule), 'http://127.0.0.1:8080/cache/x.qcow2?sig=a=b');
    assert.equal(applyMirror(`${BASE}x`, rule), `${BASE}x`);
  });

  test('unset or empty means no rewriting; anything else that is not a URL is refused', () => {
    assert.equal(parseMirror(undefined, BASE), undefined);
    assert.equal(parseMirror('  ', BASE), undefined);
    assert.throws(() => parseMirror('mirror.corp', BASE), isError('IMAGE_MIRROR_INVALID'));
    assert.throws(() => parseMirror('ftp://mirror.corp/', BASE), isError('IMAGE_MIRROR_INVALID'));
  });
});

describe('proxy selection', () => {
  const https = new URL('https://github.com/x');
  const http = new URL('http://deb.debian.org/debian');

  test('the scheme picks the variable; lower case wins; ALL_PROXY is the fallback', () => {
    assert.equal(proxyFor(https, { HTTPS_PROXY: 'http://p:3128' })?.proxy.host, 'p:3128');
    assert.equal(proxyFor(https, { HTTP_PROXY: 'http://p:3128' }), undefined);
    assert.equal(proxyFor(http, { HTTP_PROXY: 'http://p:3128' })?.variable, 'HTTP_PROXY');
    assert.equal(proxyFor(http, { http_proxy: 'http://low:1', HTTP_PROXY: 'http://up:2' })?.proxy.hostname, 'low');
    assert.equal(proxyFor(https, { ALL_PROXY: 'http://all:9' })?.variable, 'ALL_PROXY');
    assert.equal(proxyFor(https, { HTTPS_PROXY: '' }), undefined);
  });

  test('a proxy without a scheme is http; socks is refused with the variable named', () => {
    assert.equal(proxyFor(https, { HTTPS_PROXY: 'proxy.corp:8080' })?.proxy.protocol, 'http:');
    assert.throws(() => proxyFor(https, { HTTPS_PROXY: 'socks5://p:1080' }), (e: unknown) => isError('CONFIG_INVALID_VALUE')(e) && /HTTPS_PROXY/.test((e as Error).message));
  });

  test('NO_PROXY: hosts, domains, ports, CIDR ranges and *', () => {
    const u = (s: string) => new URL(s);
    assert.equal(noProxyMatches(u('https://github.com/'), 'github.com'), true);
    assert.equal(noProxyMatches(u('https://api.github.com/'), 'github.com'), true, 'a domain covers its subdomains');
    assert.equal(noProxyMatches(u('https://notgithub.com/'), 'github.com'), false);
    assert.equal(noProxyMatches(u('https://api.github.com/'), '.github.com'), true);
    assert.equal(noProxyMatches(u('https://api.github.com/'), '*.github.com'), true);
    assert.equal(noProxyMatches(u('http://127.0.0.1:8080/'), '127.0.0.1:8080'), true);
    assert.equal(noProxyMatches(u('http://127.0.0.1:8081/'), '127.0.0.1:8080'), false);
    assert.equal(noProxyMatches(u('http://10.1.2.3/'), '192.168.0.0/16, 10.0.0.0/8'), true);
    assert.equal(noProxyMatches(u('http://11.1.2.3/'), '10.0.0.0/8'), false);
    assert.equal(noProxyMatches(u('http://[::1]:80/'), '::1'), true);
    assert.equal(noProxyMatches(u('http://anything/'), '*'), true);
    assert.equal(noProxyMatches(u('http://127.0.0.1/'), 'localhost'), false, 'loopback is not bypassed unless listed');
    assert.equal(proxyFor(u('http://127.0.0.1/'), { HTTP_PROXY: 'http://p:1', no_proxy: '127.0.0.1' }), undefined);
  });
});

describe('disk formats', () => {
  test('signatures decide; raw is known only by its name', () => {
    assert.equal(formatFromMagic(Buffer.from([0x51, 0x46, 0x49, 0xfb, 0, 0, 0, 3])), 'qcow2');
    assert.equal(formatFromMagic(Buffer.from('vhdxfile\0\0\0\0')), 'vhdx');
    assert.equal(formatFromMagic(Buffer.from('KDMV\x01\0\0\0', 'latin1')), 'vmdk');
    assert.equal(formatFromMagic(Buffer.from('# Disk DescriptorFile\nversion=1\n')), 'vmdk');
    const tar = Buffer.alloc(512);
    tar.write('ustar', 257, 'latin1');
    assert.equal(formatFromMagic(tar), 'ova');
    assert.equal(formatFromMagic(Buffer.alloc(512)), undefined);
    assert.equal(formatFromName('https://x/y/disk.IMG?sig=1'), 'raw');
    assert.equal(formatFromName('photon.vhdx'), 'vhdx');
    assert.equal(formatFromName('photon.iso'), undefined);
  });
});

describe('progress', () => {
  const p = (bytes: number, total: number | undefined, done = false): DownloadProgress => ({ bytes, total, rate: 1024 * 1024, eta: eta(bytes, total, 1024 * 1024), resumedFrom: 0, done });

  test('not a terminal: one line per 10% and no duplicate final line', () => {
    const lines: string[] = [];
    const print = progressPrinter({ write: (s) => lines.push(s) > 0, isTTY: false }, 'photon-5');
    for (let b = 0; b <= 1000; b += 25) print(p(b, 1000));
    print(p(1000, 1000, true));
    assert.equal(lines.length, 11, lines.join(''));
    assert.match(lines[0] ?? '', /photon-5\s+0%/);
    assert.match(lines[10] ?? '', /100%/);
    assert.ok(lines.every((l) => l.endsWith('\n') && !l.includes('\r')));
  });

  test('unknown size, not a terminal: a line per 100 MiB and a final one', () => {
    const lines: string[] = [];
    const print = progressPrinter({ write: (s) => lines.push(s) > 0 }, 'x');
    for (let b = 0; b <= 250 * 1024 * 1024; b += 10 * 1024 * 1024) print(p(b, undefined));
    print(p(250 * 1024 * 1024, undefined, true));
    assert.equal(lines.length, 4);
  });

  test('a terminal: one line redrawn in place, a newline at the end', () => {
    const out: string[] = [];
    const print = progressPrinter({ write: (s) => out.push(s) > 0, isTTY: true }, 'x');
    print(p(100, 1000));
    print(p(500, 1000));
    print(p(1000, 1000, true));
    assert.ok(out.every((s) => s.startsWith('\r\u001b[K')));
    assert.equal(out.join('').split('\n').length, 2);
  });

  test('the text: percent, sizes, rate and ETA', () => {
    assert.equal(describeProgress('img', p(512 * 1024 * 1024, 1024 * 1024 * 1024)), 'img   50%  512 MiB / 1.0 GiB  1.0 MiB/s  ETA 8:32');
    assert.equal(formatBytes(999), '999 B');
    assert.equal(formatBytes(1536), '1.5 KiB');
  });

  test('the rate is over a sliding window, so a stall brings it down', () => {
    const meter = new RateMeter(1000);
    meter.sample(0, 0);
    assert.equal(meter.sample(1000, 500), 2000);
    meter.sample(2000, 1000);
    assert.equal(Math.round(meter.sample(2000, 2500)), 0, 'no bytes for a whole window is a rate of zero');
    assert.equal(eta(0, undefined, 10), undefined);
    assert.equal(eta(50, 100, 10), 5);
  });
});

function usersOf(table: Record<string, { names?: string[]; profiles?: string[] }>) {
  return { users: (sha: string) => ({ names: table[sha]?.names ?? [], profiles: table[sha]?.profiles ?? [], unknown: [] }) };
}

describe('listing and references', () => {
  test('references: every sha256 under image, nothing elsewhere, garbage ignored', () => {
    assert.deepEqual([...referencedDigests({ image: { sha256: A, kernel: { sha256: B.toUpperCase() } }, other: { sha256: C } })].sort(), [A, B]);
    assert.deepEqual([...referencedDigests({ image: 'photon-5' })], []);
    assert.deepEqual([...referencedDigests(null)], []);
    assert.deepEqual([...referencedDigests({ image: { sha256: 'short' } })], []);
  });

  test('companions: the kernel and initrd stay with a referenced disk', () => {
    const index: CacheIndex = {
      schemaVersion: 1, entries: {}, sources: {},
      images: { 'debian-12': { version: '1', origin: 'build', formats: { qcow2: A, kernel: B, initrd: C }, importedAt: '' } },
    };
    assert.deepEqual([...withCompanions(new Set([A]), index)].sort(), [A, B, C]);
    assert.deepEqual([...withCompanions(new Set(['d'.repeat(64)]), index)], ['d'.repeat(64)]);
  });

  test('list rows: named first by name and format order, with users and a relative time', () => {
    const now = Date.parse('2025-06-10T12:00:00Z');
    const items = imageListItems([
      { sha256: B, file: 'k', size: 10, addedAt: undefined, lastUsedAt: '2025-06-10T11:58:00Z', name: 'debian-12', version: '12', kind: 'kernel' },
      { sha256: A, file: 'd', size: 3 * 1024 * 1024, addedAt: undefined, lastUsedAt: '2025-06-07T12:00:00Z', name: 'debian-12', version: '12', kind: 'qcow2' },
      { sha256: C, file: 'custom.raw', size: undefined, addedAt: undefined, lastUsedAt: undefined },
    ], usersOf({ [A]: { names: ['debian-12'], profiles: ['dev'] }, [B]: { names: ['debian-12'] } }), {
      'debian-12': { version: '12', origin: 'build', formats: { qcow2: A, kernel: B }, importedAt: '' },
    });
    assert.deepEqual(items.map((i) => i.name), ['custom.raw', 'debian-12', 'debian-12']);
    assert.deepEqual(imageListTable(items, now), [
      ['custom.raw', '', '', '?', 'never', C.slice(0, 12), ''],
      ['debian-12', '12', 'qcow2', '3.0 MiB', '3 days ago', A.slice(0, 12), 'dev'],
      ['debian-12', '12', 'kernel', '10 B', '2 minutes ago', B.slice(0, 12), ''],
    ]);
    assert.equal(formatAgo('2025-01-01T00:00:00Z', now), '2025-01-01');
    assert.equal(formatAgo('garbage', now), 'unknown');
  });

  test('list rows: a digest two names share is listed under each, with each name\'s version and format', () => {
    const items = imageListItems(
      [{ sha256: A, file: 'disk.qcow2', size: 5, addedAt: undefined, lastUsedAt: undefined, name: 'team-a', version: '1', kind: 'qcow2' }],
      usersOf({ [A]: { names: ['team-a', 'team-b'], profiles: ['dev'] } }),
      {
        'team-a': { version: '1', origin: 'build', formats: { qcow2: A }, importedAt: '' },
        'team-b': { version: '2', origin: 'build', formats: { qcow2: A }, importedAt: '' },
      },
    );
    assert.deepEqual(items.map((i) => [i.name, i.version, i.format, i.sha256, i.usedBy]), [
      ['team-a', '1', 'qcow2', A, ['dev']],
      ['team-b', '2', 'qcow2', A, ['dev']],
    ]);
  });
});

describe('inputs', () => {
  test('the image setting is a URL, an absolute path or a name', () => {
    assert.deepEqual(classifyImage('https://x/y.qcow2'), { kind: 'url', url: 'https://x/y.qcow2' });
    assert.deepEqual(classifyImage('/srv/disk.qcow2'), { kind: 'path', path: '/srv/disk.qcow2' });
    assert.deepEqual(classifyImage('photon-5'), { kind: 'name', name: 'photon-5' });
  });

  test('the state record carries every digest the image boots with', () => {
    const file = (sha: string) => ({ path: `/c/${sha}`, sha256: sha, size: 1 });
    const record = imageStateRecord({ name: 'debian-12', version: '12', origin: 'build', format: 'qcow2', disk: file(A), kernel: file(B), initrd: file(C) });
    assert.deepEqual(record, { name: 'debian-12', version: '12', origin: 'build', format: 'qcow2', sha256: A, kernel: { sha256: B }, initrd: { sha256: C } });
    assert.deepEqual([...referencedDigests({ image: record })].sort(), [A, B, C]);
  });

  test('cached file names are one safe path component', () => {
    assert.equal(safeFileName('../../etc/passwd', 'x'), 'passwd');
    assert.equal(safeFileName('photon 5.qcow2?x=1', 'x'), 'photon_5.qcow2');
    assert.equal(safeFileName('...', 'fallback'), 'fallback');
    assert.equal(safeFileName('stamp.json', 'fallback'), 'fallback');
  });

  test('manifests: the build script\'s shape is accepted, escapes and half pairs are not', () => {
    const good = {
      name: 'debian-12', version: '12.8-20250101',
      formats: { qcow2: { file: 'disk.qcow2', sha256: A, size: 10, virtualSize: 99 }, kernel: { file: 'vmlinuz', sha256: B, size: 5 }, initrd: { file: 'initrd.img', sha256: C, size: 6 } },
      kernelCmdline: 'root=LABEL=devcluster-root', packages: { runc: '1.1', bogus: 3 }, builtAt: '2025-01-01T00:00:00Z', suite: 'bookworm',
    };
    const m = parseManifest(good, 'm.json');
    assert.equal(m.formats.qcow2?.size, 10);
    assert.deepEqual(m.packages, { runc: '1.1' });
    const broken: Array<Record<string, unknown>> = [
      { ...good, formats: { qcow2: { file: '../disk.qcow2', sha256: A, size: 1 } } },
      { ...good, formats: { qcow2: { file: '/abs/disk.qcow2', sha256: A, size: 1 } } },
      { ...good, formats: { kernel: good.formats.kernel, initrd: good.formats.initrd } },
      { ...good, formats: { qcow2: good.formats.qcow2, kernel: good.formats.kernel } },
      { ...good, name: 'Debian 12' },
      { ...good, formats: { qcow2: { ...good.formats.qcow2, sha256: 'x' } } },
    ];
    for (const b of broken) assert.throws(() => parseManifest(b, 'm.json'), isError('IMAGE_MANIFEST_INVALID'), JSON.stringify(b.formats));
  });

  test('build host rules', () => {
    const linuxRoot = { platform: 'linux' as const, arch: 'x64', uid: 0, offline: false };
    assert.equal(checkBuildHost('debian', linuxRoot), undefined);
    assert.equal(checkBuildHost('debian', { ...linuxRoot, uid: 1000 })?.id, 'HOST_NEEDS_ROOT');
    assert.equal(checkBuildHost('debian', { ...linuxRoot, platform: 'win32' })?.id, 'IMAGE_BUILD_UNAVAILABLE');
    assert.equal(checkBuildHost('debian', { ...linuxRoot, arch: 'arm64' })?.id, 'IMAGE_BUILD_UNAVAILABLE');
    assert.equal(checkBuildHost('photon', { ...linuxRoot, offline: true })?.id, 'IMAGE_BUILD_UNAVAILABLE');
    assert.equal(checkBuildHost('photon', { ...linuxRoot, uid: 1000, platform: 'darwin' }), undefined, 'photon needs Docker and the internet, checked by probing');
  });
});
