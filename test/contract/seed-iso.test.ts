/**
 * Seed ISOs read back by the real tools: isoinfo (genisoimage), xorriso
 * (libisofs), blkid (libblkid, what udev uses to create
 * /dev/disk/by-label/cidata) and ssh-keygen for the injected host key.
 * Every view is checked: the plain ISO9660 tree, Joliet and Rock Ridge.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { chmod, mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildIso } from '../../src/seed/iso9660.ts';
import { buildSeedIso, renderMetaData, renderNetworkConfig, renderUserData, writeSeedIso } from '../../src/seed/seed.ts';
import type { SeedSpec } from '../../src/seed/seed.ts';
import { HOST_PRIVATE, HOST_PUBLIC, OTHER_PUBLIC } from '../helpers/seed-keys.ts';

const spec: SeedSpec = {
  instanceId: 'iid-devcluster-contract',
  hostname: 'devcluster',
  authorizedKeys: [OTHER_PUBLIC],
  hostKey: { privateKey: HOST_PRIVATE, publicKey: HOST_PUBLIC },
  network: { mode: 'static', mac: '52:54:00:12:34:56', address: '192.168.211.10/24', gateway: '192.168.211.1', dns: ['192.168.211.1'] },
  readinessMarker: '/var/lib/devcluster/ready',
  extraRunCommands: [['sh', '-c', 'echo "quoted # not a comment" > /tmp/x']],
  proxy: { http: 'http://proxy.example:3128', noProxy: 'localhost,127.0.0.1' },
};

const expected: Record<string, Buffer> = {
  'user-data': Buffer.from(renderUserData(spec)),
  'meta-data': Buffer.from(renderMetaData(spec)),
  'network-config': Buffer.from(renderNetworkConfig(spec)),
};

function tool(command: string, args: string[]): Buffer {
  return execFileSync(command, args, { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, LANG: 'C', LC_ALL: 'C' }, maxBuffer: 64 * 1024 * 1024 });
}

function toolText(command: string, args: string[]): string {
  return tool(command, args).toString('utf8');
}

/** Runs xorriso and fails on a non-zero exit or any problem it reports on stderr. */
function xorriso(args: string[]): string {
  const r = spawnSync('xorriso', args, { encoding: 'utf8', env: { ...process.env, LANG: 'C', LC_ALL: 'C' } });
  assert.equal(r.status, 0, r.stderr);
  assert.doesNotMatch(r.stderr, /: (WARNING|SORRY|FAILURE|FATAL|MISHAP|ABORT) :/, r.stderr);
  return r.stdout;
}

/** Names from `isoinfo -l` style listings (last field of each file line). */
function listedNames(listing: string): string[] {
  return listing
    .split('\n')
    .filter((l) => /^[-d][-rwx]{9}/.test(l))
    .map((l) => l.replace(/\s+$/, '').split(/\]\s+/)[1] as string)
    .filter((n) => n !== '.' && n !== '..')
    .sort();
}

async function makeWritable(dir: string): Promise<void> {
  // Rock Ridge modes come back read-only on extraction; make the tree removable.
  await chmod(dir, 0o700).catch(() => undefined);
  for (const entry of await readdir(dir, { withFileTypes: true }).catch(() => [])) {
    const p = join(dir, entry.name);
    if (entry.isDirectory()) await makeWritable(p);
    else await chmod(p, 0o600);
  }
}

let dir = '';
let isoPath = '';

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'devcluster-seed-'));
  isoPath = join(dir, 'seed.iso');
  await writeSeedIso(isoPath, spec);
});

after(async () => {
  await makeWritable(dir);
  await rm(dir, { recursive: true, force: true });
});

describe('seed ISO read by isoinfo', () => {
  test('isoinfo -d: volume id cidata, Joliet level 3 and Rock Ridge present', () => {
    const info = toolText('isoinfo', ['-d', '-i', isoPath]);
    assert.match(info, /^Volume id: cidata$/m);
    assert.match(info, /^Logical block size is: 2048$/m);
    assert.match(info, /^Joliet with UCS level 3 found$/m);
    assert.match(info, /^Rock Ridge signatures version 1 found$/m);
    const size = Number(/^Volume size is: (\d+)$/m.exec(info)?.[1]);
    assert.equal(size * 2048, buildSeedIso(spec).length);
  });

  test('isoinfo -l lists 8.3 names; -J and -R list the real names', () => {
    assert.deepEqual(listedNames(toolText('isoinfo', ['-l', '-i', isoPath])), ['META_DAT.;1', 'NETWORK_.;1', 'USER_DAT.;1']);
    assert.deepEqual(listedNames(toolText('isoinfo', ['-J', '-l', '-i', isoPath])), ['meta-data', 'network-config', 'user-data']);
    const rr = toolText('isoinfo', ['-R', '-l', '-i', isoPath]);
    assert.deepEqual(listedNames(rr), ['meta-data', 'network-config', 'user-data']);
    // user-data carries the host private key, so only root may read it once mounted.
    assert.match(rr, /^-r--------\s+1\s+0\s+0\s+\d+ .*\buser-data\s*$/m);
    assert.match(rr, /^-r--r--r--\s+1\s+0\s+0\s+\d+ .*\bmeta-data\s*$/m);
  });

  test('isoinfo -x extracts exactly the rendered bytes from every tree', () => {
    const primary: Record<string, string> = { 'user-data': '/USER_DAT.;1', 'meta-data': '/META_DAT.;1', 'network-config': '/NETWORK_.;1' };
    for (const [name, bytes] of Object.entries(expected)) {
      assert.deepEqual(tool('isoinfo', ['-R', '-x', `/${name}`, '-i', isoPath]), bytes, `-R ${name}`);
      assert.deepEqual(tool('isoinfo', ['-J', '-x', `/${name}`, '-i', isoPath]), bytes, `-J ${name}`);
      assert.deepEqual(tool('isoinfo', ['-x', primary[name] as string, '-i', isoPath]), bytes, `ISO9660 ${name}`);
    }
  });
});

describe('seed ISO read by xorriso', () => {
  test('finds the real names through Rock Ridge and Joliet, and the 8.3 names in the plain tree', () => {
    const names = (out: string): string[] => out.trim().split('\n').sort();
    assert.deepEqual(names(xorriso(['-indev', isoPath, '-find', '/', '-type', 'f'])), ["'/meta-data'", "'/network-config'", "'/user-data'"]);
    assert.deepEqual(names(xorriso(['-read_fs', 'norock', '-indev', isoPath, '-find', '/', '-type', 'f'])), ["'/meta-data'", "'/network-config'", "'/user-data'"]);
    assert.deepEqual(names(xorriso(['-read_fs', 'ecma119', '-indev', isoPath, '-find', '/', '-type', 'f'])), ["'/META_DAT'", "'/NETWORK_'", "'/USER_DAT'"]);
    assert.match(xorriso(['-indev', isoPath, '-pvd_info']), /^Volume Id\s*: cidata$/m);
  });

  test('extracts the same names and contents', async () => {
    const out = join(dir, 'extracted');
    xorriso(['-osirrox', 'on', '-indev', isoPath, '-extract', '/', out]);
    await makeWritable(out);
    assert.deepEqual((await readdir(out)).sort(), ['meta-data', 'network-config', 'user-data']);
    for (const [name, bytes] of Object.entries(expected)) assert.deepEqual(await readFile(join(out, name)), bytes, name);
  });
});

describe('seed ISO for the guest', () => {
  test('blkid sees an iso9660 file system labelled cidata', () => {
    const out = toolText('blkid', ['-p', '-o', 'export', isoPath]);
    assert.match(out, /^TYPE=iso9660$/m);
    assert.match(out, /^LABEL=cidata$/m);
  });

  test('the host private key cloud-init will install is accepted by ssh-keygen and matches the pinned public key', async () => {
    const userData = tool('isoinfo', ['-R', '-x', '/user-data', '-i', isoPath]).toString('utf8');
    const { parse } = await import('yaml');
    const doc = parse(userData, { version: '1.1' }) as { ssh_keys: { ed25519_private: string; ed25519_public: string } };
    const keyFile = join(dir, 'ssh_host_ed25519_key');
    await writeFile(keyFile, doc.ssh_keys.ed25519_private, { mode: 0o600 });
    const derived = toolText('ssh-keygen', ['-y', '-f', keyFile]).trim().split(' ').slice(0, 2).join(' ');
    assert.equal(derived, HOST_PUBLIC.split(' ').slice(0, 2).join(' '));
    assert.equal(doc.ssh_keys.ed25519_public, HOST_PUBLIC);
  });

  test('writeSeedIso writes mode 0600 and the same bytes as buildSeedIso', async () => {
    const st = await stat(isoPath);
    if (process.platform !== 'win32') assert.equal(st.mode & 0o777, 0o600);
    assert.deepEqual(await readFile(isoPath), Buffer.from(buildSeedIso(spec)));
  });

  test('two builds are byte-for-byte equal', async () => {
    const second = join(dir, 'seed-2.iso');
    await writeSeedIso(second, spec);
    assert.deepEqual(await readFile(second), await readFile(isoPath));
    assert.deepEqual(buildSeedIso(spec), buildSeedIso(structuredClone(spec)));
  });
});

describe('larger images read by the real tools', () => {
  test('a 1 MiB file and an empty file come back intact', async () => {
    const big = Buffer.alloc(1024 * 1024);
    for (let i = 0; i < big.length; i++) big[i] = (i * 7 + (i >> 11)) & 0xff;
    const small = Buffer.from('tail\n');
    const path = join(dir, 'big.iso');
    await writeFile(path, buildIso({ volumeId: 'cidata', files: [{ name: 'big-file.bin', data: big }, { name: 'empty', data: new Uint8Array(0) }, { name: 'user-data', data: small }] }));
    assert.deepEqual(tool('isoinfo', ['-R', '-x', '/big-file.bin', '-i', path]), big);
    assert.deepEqual(tool('isoinfo', ['-J', '-x', '/big-file.bin', '-i', path]), big);
    assert.deepEqual(tool('isoinfo', ['-R', '-x', '/user-data', '-i', path]), small);
    const out = join(dir, 'big-extracted');
    xorriso(['-osirrox', 'on', '-indev', path, '-extract', '/', out]);
    await makeWritable(out);
    assert.deepEqual(await readFile(join(out, 'big-file.bin')), big);
    assert.deepEqual(await readFile(join(out, 'empty')), Buffer.alloc(0));
    assert.deepEqual(await readFile(join(out, 'user-data')), small);
  });

  test('a directory spanning several sectors lists every name in every tree', async () => {
    const files = Array.from({ length: 60 }, (_, i) => ({ name: `${'long-name-'.repeat(5)}${String(i).padStart(3, '0')}`, data: Buffer.from(`file ${i}\n`) }));
    const path = join(dir, 'many.iso');
    await writeFile(path, buildIso({ volumeId: 'cidata', files }));
    const names = files.map((f) => f.name).sort();
    assert.deepEqual(listedNames(toolText('isoinfo', ['-R', '-l', '-i', path])), names);
    assert.deepEqual(listedNames(toolText('isoinfo', ['-J', '-l', '-i', path])), names);
    assert.equal(listedNames(toolText('isoinfo', ['-l', '-i', path])).length, 60);
    const found = xorriso(['-indev', path, '-find', '/', '-type', 'f']).trim().split('\n').sort();
    assert.deepEqual(found, names.map((n) => `'/${n}'`));
    assert.deepEqual(tool('isoinfo', ['-R', '-x', `/${files[59]?.name}`, '-i', path]), files[59]?.data);
  });
});
