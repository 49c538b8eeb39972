import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { parseDocument } from 'yaml';
import { renderMetaData, renderNetworkConfig, renderUserData } from '../../src/seed/render.ts';
import { validateSeedSpec } from '../../src/seed/spec.ts';
import type { SeedSpec } from '../../src/seed/spec.ts';
import { DevclusterError } from '../../src/ui/errors.ts';
import { ECDSA_PUBLIC, ENCRYPTED_PRIVATE, ENCRYPTED_PUBLIC, HOST_PRIVATE, HOST_PUBLIC, OTHER_PUBLIC } from '../helpers/seed-keys.ts';

function spec(overrides: Partial<SeedSpec> = {}): SeedSpec {
  return {
    instanceId: 'iid-devcluster-0001',
    hostname: 'devcluster',
    authorizedKeys: [OTHER_PUBLIC],
    hostKey: { privateKey: HOST_PRIVATE, publicKey: HOST_PUBLIC },
    network: { mode: 'dhcp', mac: '52:54:00:AB:cd:0e' },
    readinessMarker: '/var/lib/devcluster/ready',
    ...overrides,
  };
}

/** Parses the way cloud-init does (PyYAML is YAML 1.1), failing on any error or warning. */
function load(text: string): Record<string, unknown> {
  const doc = parseDocument(text, { version: '1.1' });
  assert.deepEqual(doc.errors, []);
  assert.deepEqual(doc.warnings, []);
  return doc.toJS() as Record<string, unknown>;
}

function rejects(fn: () => unknown, field: string): DevclusterError {
  let caught: unknown;
  try {
    fn();
  } catch (e) {
    caught = e;
  }
  assert.ok(caught instanceof DevclusterError, `expected a DevclusterError for ${field}, got ${String(caught)}`);
  assert.equal(caught.id, 'SEED_INVALID_SPEC');
  assert.equal(caught.exitCode, 2);
  assert.equal(caught.details.field, field);
  assert.ok(caught.advice !== undefined && caught.advice.length > 0);
  return caught;
}

describe('renderUserData', () => {
  test('starts with the #cloud-config header and sets user, ssh and hostname', () => {
    const text = renderUserData(spec());
    assert.ok(text.startsWith('#cloud-config\n'));
    const doc = load(text);
    assert.equal(doc.hostname, 'devcluster');
    assert.equal(doc.fqdn, 'devcluster');
    assert.equal(doc.preserve_hostname, false);
    assert.deepEqual(doc.users, [
      {
        name: 'devcluster',
        shell: '/bin/bash',
        sudo: 'ALL=(ALL) NOPASSWD:ALL',
        lock_passwd: true,
        ssh_authorized_keys: [OTHER_PUBLIC],
      },
    ]);
    assert.equal(doc.ssh_pwauth, false);
    assert.equal(doc.disable_root, true);
    assert.equal(doc.ssh_deletekeys, false);
    // An empty ssh_genkeytypes fails cloud-init's schema; with ssh_keys it would be ignored anyway.
    assert.equal(doc.ssh_genkeytypes, undefined);
    assert.deepEqual(doc.ssh_keys, { ed25519_private: HOST_PRIVATE, ed25519_public: HOST_PUBLIC });
    assert.equal(doc.write_files, undefined);
  });

  test('uses the given user name', () => {
    const doc = load(renderUserData(spec({ user: 'dev_user-1' })));
    assert.equal((doc.users as Array<{ name: string }>)[0]?.name, 'dev_user-1');
  });

  test('writes the readiness marker last, after the extra commands, in a script that stops on failure', () => {
    const extra = [
      ['systemctl', 'enable', '--now', 'containerd'],
      ['modprobe', 'br_netfilter'],
    ];
    const doc = load(renderUserData(spec({ extraRunCommands: extra, readinessMarker: '/run/dc/state/ready' })));
    assert.deepEqual(doc.runcmd, ['set -e', ...extra, ['mkdir', '-p', '/run/dc/state'], ['touch', '/run/dc/state/ready']]);
  });

  test('puts proxy settings in /etc/environment in both spellings', () => {
    const proxy = { http: 'http://proxy.corp:3128', https: 'http://user:p%40ss@proxy.corp:3129', noProxy: 'localhost,127.0.0.1,.svc,10.96.0.0/12' };
    const doc = load(renderUserData(spec({ proxy })));
    assert.deepEqual(doc.write_files, [
      {
        path: '/etc/environment',
        append: true,
        content: [
          '',
          'http_proxy=http://proxy.corp:3128',
          'HTTP_PROXY=http://proxy.corp:3128',
          'https_proxy=http://user:p%40ss@proxy.corp:3129',
          'HTTPS_PROXY=http://user:p%40ss@proxy.corp:3129',
          'no_proxy=localhost,127.0.0.1,.svc,10.96.0.0/12',
          'NO_PROXY=localhost,127.0.0.1,.svc,10.96.0.0/12',
          '',
        ].join('\n'),
      },
    ]);
  });

  test('writes only the proxy variables given', () => {
    const doc = load(renderUserData(spec({ proxy: { https: 'https://p.example:443' } })));
    const files = doc.write_files as Array<{ content: string }>;
    assert.equal(files[0]?.content, '\nhttps_proxy=https://p.example:443\nHTTPS_PROXY=https://p.example:443\n');
  });

  test('normalizes CRLF private keys and keeps exactly one final newline', () => {
    const crlf = HOST_PRIVATE.trimEnd().replace(/\n/g, '\r\n');
    const doc = load(renderUserData(spec({ hostKey: { privateKey: crlf, publicKey: HOST_PUBLIC } })));
    assert.equal((doc.ssh_keys as Record<string, string>).ed25519_private, HOST_PRIVATE);
  });

  test('hostile command arguments round-trip exactly', () => {
    const hostile = [
      'it\'s "quoted"',
      'line one\nline two\n',
      '# not a comment',
      'key: value',
      '- item',
      '&anchor',
      '*alias',
      '!!python/object:os.system',
      '%YAML 1.1',
      '---',
      '...',
      '{a: 1}',
      '[1, 2]',
      '| literal',
      '> folded',
      '  leading and trailing  ',
      '\ttab',
      'carriage\rreturn',
      '',
      'null',
      '~',
      'yes',
      'No',
      'on',
      '0644',
      '0x1F',
      '1_000',
      '.inf',
      '190:20:30',
      '2001-12-14',
      '<<',
      '=',
      '`backticks` $(subshell) ${VAR}',
      'unicode ✓ é \u00a0 😀 中文',
      'controls \x01 \x1b \x08',
      '\\backslash\\',
    ];
    const text = renderUserData(spec({ extraRunCommands: [['echo', ...hostile], hostile] }));
    // PyYAML reads a bare << as a merge key and a bare = as a "value" tag: both must be quoted.
    assert.ok(text.includes('- "<<"\n') && text.includes('- "="\n'));
    const doc = load(text);
    const runcmd = doc.runcmd as unknown[];
    assert.deepEqual(runcmd[1], ['echo', ...hostile]);
    assert.deepEqual(runcmd[2], hostile);
  });

  test('hostile authorized key comments round-trip exactly', () => {
    const key = `${OTHER_PUBLIC.split(' ').slice(0, 2).join(' ')} me@laptop # "quoted": 'x' &y *z !w`;
    const doc = load(renderUserData(spec({ authorizedKeys: [key, ECDSA_PUBLIC] })));
    assert.deepEqual((doc.users as Array<{ ssh_authorized_keys: string[] }>)[0]?.ssh_authorized_keys, [key, ECDSA_PUBLIC]);
  });

  test('values that YAML 1.1 would read as numbers or booleans stay strings', () => {
    const doc = load(renderUserData(spec({ hostname: 'no', user: 'y' })));
    assert.equal(doc.hostname, 'no');
    assert.equal((doc.users as Array<{ name: unknown }>)[0]?.name, 'y');
  });
});

describe('renderMetaData', () => {
  test('has the instance id and local hostname', () => {
    assert.deepEqual(load(renderMetaData(spec())), { 'instance-id': 'iid-devcluster-0001', 'local-hostname': 'devcluster' });
  });

  test('numeric-looking values stay strings', () => {
    assert.deepEqual(load(renderMetaData(spec({ instanceId: '0755', hostname: '123' }))), { 'instance-id': '0755', 'local-hostname': '123' });
    assert.deepEqual(load(renderMetaData(spec({ instanceId: '1e3', hostname: 'off' }))), { 'instance-id': '1e3', 'local-hostname': 'off' });
  });
});

describe('renderNetworkConfig', () => {
  test('dhcp: version 2, matched by lowercase MAC', () => {
    assert.deepEqual(load(renderNetworkConfig(spec())), {
      version: 2,
      ethernets: { eth0: { match: { macaddress: '52:54:00:ab:cd:0e' }, dhcp4: true, 'dhcp-identifier': 'mac' } },
    });
  });

  test('a MAC made only of digits stays a string (YAML 1.1 would read it as a base-60 number)', () => {
    const text = renderNetworkConfig(spec({ network: { mode: 'dhcp', mac: '00:15:22:33:44:55' } }));
    const doc = load(text) as { ethernets: { eth0: { match: { macaddress: unknown } } } };
    assert.equal(doc.ethernets.eth0.match.macaddress, '00:15:22:33:44:55');
  });

  test('static IPv4: address, default route and name servers', () => {
    const network = { mode: 'static' as const, mac: '00:15:5d:01:02:03', address: '192.168.211.10/24', gateway: '192.168.211.1', dns: ['192.168.211.1', '1.1.1.1'] };
    assert.deepEqual(load(renderNetworkConfig(spec({ network }))), {
      version: 2,
      ethernets: {
        eth0: {
          match: { macaddress: '00:15:5d:01:02:03' },
          dhcp4: false,
          addresses: ['192.168.211.10/24'],
          routes: [{ to: '0.0.0.0/0', via: '192.168.211.1' }],
          nameservers: { addresses: ['192.168.211.1', '1.1.1.1'] },
        },
      },
    });
  });

  test('static IPv6: default route is ::/0', () => {
    const network = { mode: 'static' as const, mac: '52:54:00:00:00:01', address: 'fd00:dc::10/64', gateway: 'fd00:dc::1', dns: ['fd00:dc::1'] };
    const doc = load(renderNetworkConfig(spec({ network }))) as { ethernets: { eth0: Record<string, unknown> } };
    assert.deepEqual(doc.ethernets.eth0.addresses, ['fd00:dc::10/64']);
    assert.deepEqual(doc.ethernets.eth0.routes, [{ to: '::/0', via: 'fd00:dc::1' }]);
  });
});

describe('validateSeedSpec', () => {
  test('fills the default user and keeps a valid spec', () => {
    const v = validateSeedSpec(spec());
    assert.equal(v.user, 'devcluster');
    assert.deepEqual(v.extraRunCommands, []);
    assert.deepEqual(v.proxy, {});
    assert.deepEqual(v.network, { mode: 'dhcp', mac: '52:54:00:ab:cd:0e' });
  });

  test('rejects hostnames that are not RFC 1123 labels', () => {
    for (const hostname of ['', 'Dev', 'dev_1', '-dev', 'dev-', 'a'.repeat(64), 'dev.local', 'dev"x', "dev'x", 'dev\nx', 'dev#x', 'dev: x', '{dev}', '*dev', 'dév']) {
      rejects(() => renderMetaData(spec({ hostname })), 'hostname');
    }
    assert.equal(load(renderMetaData(spec({ hostname: 'a'.repeat(63) })))['local-hostname'], 'a'.repeat(63), 'the longest label is accepted');
  });

  test('rejects bad user names', () => {
    for (const user of ['root', 'nobody', 'Dev', '1dev', 'dev user', 'dev\n', 'a'.repeat(33), '']) {
      rejects(() => renderUserData(spec({ user })), 'user');
    }
  });

  test('rejects bad instance ids', () => {
    for (const instanceId of ['', '../etc', 'a/b', 'iid x', 'iid\n', '-iid']) {
      rejects(() => renderMetaData(spec({ instanceId })), 'instanceId');
    }
  });

  test('rejects bad MAC addresses', () => {
    for (const mac of ['', '52:54:00:ab:cd', '52-54-00-ab-cd-ef', '5254.00ab.cdef', '525400abcdef', '52:54:00:ab:cd:eg', '01:00:5e:00:00:01', '00:00:00:00:00:00', '52:54:00:ab:cd:ef\n']) {
      rejects(() => renderNetworkConfig(spec({ network: { mode: 'dhcp', mac } })), 'network.mac');
    }
  });

  test('rejects bad static addresses, gateways and DNS servers', () => {
    const base = { mode: 'static' as const, mac: '52:54:00:00:00:01', address: '192.168.211.10/24', gateway: '192.168.211.1', dns: ['192.168.211.1'] };
    const cases: Array<[Record<string, unknown>, string]> = [
      [{ address: '192.168.211.10' }, 'network.address'],
      [{ address: '192.168.211.10/33' }, 'network.address'],
      [{ address: '192.168.211.10/0' }, 'network.address'],
      [{ address: '192.168.211.10/024' }, 'network.address'],
      [{ address: '192.168.211.256/24' }, 'network.address'],
      [{ address: '192.168.211.0/24' }, 'network.address'],
      [{ address: '192.168.211.255/24' }, 'network.address'],
      [{ address: 'fe80::1%eth0/64', gateway: 'fe80::2' }, 'network.address'],
      [{ address: '192.168.211.10/24\n' }, 'network.address'],
      [{ gateway: '10.0.0.1' }, 'network.gateway'],
      [{ gateway: '192.168.211.10' }, 'network.gateway'],
      [{ gateway: 'fd00::1' }, 'network.gateway'],
      [{ gateway: 'router' }, 'network.gateway'],
      [{ dns: [] }, 'network.dns'],
      [{ dns: ['8.8.8.8', 'dns.example'] }, 'network.dns[1]'],
      [{ dns: ['1.1.1.1 # x'] }, 'network.dns[0]'],
    ];
    for (const [change, field] of cases) {
      rejects(() => renderNetworkConfig(spec({ network: { ...base, ...change } as SeedSpec['network'] })), field);
    }
    rejects(() => renderNetworkConfig(spec({ network: { mode: 'bridge', mac: '52:54:00:00:00:01' } as unknown as SeedSpec['network'] })), 'network.mode');
  });

  test('rejects proxy values that /etc/environment readers would misread', () => {
    for (const http of ['proxy:3128', 'ftp://proxy:21', 'http://pro xy:3128', 'http://proxy:3128\nEVIL=1', 'http://proxy:3128#frag', 'http://"proxy":3128', "http://proxy:3128'", 'http://proxy:$PORT', 'http://proxy:3128\\', 'http://']) {
      rejects(() => renderUserData(spec({ proxy: { http } })), 'proxy.http');
    }
    for (const noProxy of ['localhost, 127.0.0.1', 'localhost\n127.0.0.1', 'a,,b', '', '#x', 'a"b']) {
      rejects(() => renderUserData(spec({ proxy: { noProxy } })), 'proxy.noProxy');
    }
  });

  test('does not repeat a proxy password in the message', () => {
    const e = rejects(() => renderUserData(spec({ proxy: { https: 'http://alice:s3cret@proxy:31 28' } })), 'proxy.https');
    assert.ok(!e.message.includes('s3cret'), e.message);
  });

  test('rejects readiness markers that are not absolute guest file paths', () => {
    for (const readinessMarker of ['ready', '/', '/var/../ready', '/var/./ready', '/var/lib dir/ready', '/var/lib/ready\n', '/var//ready', '/var/lib/ready/', "/var/lib/'x'"]) {
      rejects(() => renderUserData(spec({ readinessMarker })), 'readinessMarker');
    }
  });

  test('rejects malformed extra commands', () => {
    rejects(() => renderUserData(spec({ extraRunCommands: [[]] })), 'extraRunCommands[0]');
    rejects(() => renderUserData(spec({ extraRunCommands: [['']] })), 'extraRunCommands[0]');
    rejects(() => renderUserData(spec({ extraRunCommands: [['echo', 'a\0b']] })), 'extraRunCommands[0][1]');
    rejects(() => renderUserData(spec({ extraRunCommands: [['echo', 3 as unknown as string]] })), 'extraRunCommands[0][1]');
    rejects(() => renderUserData(spec({ extraRunCommands: ['echo hi' as unknown as string[]] })), 'extraRunCommands[0]');
  });

  test('rejects characters PyYAML would refuse or fold into a line break', () => {
    for (const bad of ['\x7f', '\x85', '\x9b', '\u2028', '\u2029', '\ufeff', '\uffff', '\ud800']) {
      const e = rejects(() => renderUserData(spec({ extraRunCommands: [['echo', `a${bad}b`]] })), 'extraRunCommands[0][1]');
      assert.match(e.message, /U\+[0-9A-F]{4}/);
      rejects(() => renderUserData(spec({ authorizedKeys: [`${OTHER_PUBLIC} x${bad}`] })), 'authorizedKeys[0]');
    }
  });

  test('rejects authorized keys that are not single public key lines', () => {
    rejects(() => renderUserData(spec({ authorizedKeys: [] })), 'authorizedKeys');
    const cases = [
      `${OTHER_PUBLIC}\n${ECDSA_PUBLIC}`,
      'ssh-dss AAAA',
      'from="10.0.0.1" ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIB3W+6vjd2vQf2m7Y6HsZxthf1e/GtPvvcgn1MjBC2K7',
      'ssh-ed25519 not-base64!',
      // ecdsa blob labelled as ed25519
      `ssh-ed25519 ${ECDSA_PUBLIC.split(' ')[1]}`,
      'ssh-ed25519 AAAA',
    ];
    for (const key of cases) rejects(() => renderUserData(spec({ authorizedKeys: [key] })), 'authorizedKeys[0]');
  });

  test('rejects host keys that sshd could not use or that do not match, without echoing them', () => {
    const mismatched = rejects(() => renderUserData(spec({ hostKey: { privateKey: HOST_PRIVATE, publicKey: OTHER_PUBLIC } })), 'hostKey.privateKey');
    for (const line of HOST_PRIVATE.split('\n').slice(1, -2)) assert.ok(!mismatched.message.includes(line));
    rejects(() => renderUserData(spec({ hostKey: { privateKey: ENCRYPTED_PRIVATE, publicKey: ENCRYPTED_PUBLIC } })), 'hostKey.privateKey');
    rejects(() => renderUserData(spec({ hostKey: { privateKey: HOST_PRIVATE, publicKey: ECDSA_PUBLIC } })), 'hostKey.publicKey');
    rejects(() => renderUserData(spec({ hostKey: { privateKey: 'not a key', publicKey: HOST_PUBLIC } })), 'hostKey.privateKey');
    const truncated = HOST_PRIVATE.split('\n');
    truncated.splice(3, 2);
    rejects(() => renderUserData(spec({ hostKey: { privateKey: truncated.join('\n'), publicKey: HOST_PUBLIC } })), 'hostKey.privateKey');
  });
});
