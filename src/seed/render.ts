/**
 * Renders the three NoCloud documents from a SeedSpec. Every document is built
 * as data and serialized by the `yaml` package, never by pasting values into
 * text, so no value can change the document's structure.
 *
 * cloud-init parses with PyYAML, which implements YAML 1.1: there plain `no`,
 * `on`, `0644`, `=`, `<<` and `00:11:22:33:44:55` (base 60) are not strings.
 * So every string value is written double-quoted, which PyYAML always reads
 * as a string. The private key and the /etc/environment lines (both checked to
 * be plain printable lines) are written as literal blocks, to stay readable.
 */
import { Document, isScalar } from 'yaml';
import { markerDirectory, validateSeedSpec } from './spec.ts';
import type { SeedSpec, ValidSeedSpec } from './spec.ts';

/** The interface key in network-config; the MAC match decides which NIC it applies to. */
export const SEED_INTERFACE_ID = 'eth0';

function toYaml(value: unknown, literalBlocks: ReadonlyArray<readonly (string | number)[]> = []): string {
  const doc = new Document(value, {
    version: '1.1',
    // The yaml package would write the string "<<" as a bare merge key; without
    // the merge tag it is an ordinary string, and is then quoted like the rest.
    customTags: (tags) => tags.filter((tag) => (typeof tag === 'string' ? tag !== 'merge' : tag.tag !== 'tag:yaml.org,2002:merge')),
  });
  for (const path of literalBlocks) {
    const node = doc.getIn(path, true);
    if (isScalar(node)) node.type = 'BLOCK_LITERAL';
  }
  // lineWidth 0: never fold long scalars (keys, commands) across lines.
  return doc.toString({ lineWidth: 0, defaultStringType: 'QUOTE_DOUBLE', defaultKeyType: 'PLAIN' });
}

function environmentLines(s: ValidSeedSpec): string[] {
  const lines: string[] = [];
  // Both spellings: curl and most Go programs read the lowercase one, others the uppercase.
  const add = (name: string, value: string | undefined): void => {
    if (value === undefined) return;
    lines.push(`${name.toLowerCase()}=${value}`, `${name.toUpperCase()}=${value}`);
  };
  add('http_proxy', s.proxy.http);
  add('https_proxy', s.proxy.https);
  add('no_proxy', s.proxy.noProxy);
  return lines;
}

export function userDataObject(s: ValidSeedSpec): Record<string, unknown> {
  const env = environmentLines(s);
  return {
    hostname: s.hostname,
    fqdn: s.hostname,
    preserve_hostname: false,
    users: [
      {
        name: s.user,
        shell: '/bin/bash',
        sudo: 'ALL=(ALL) NOPASSWD:ALL',
        lock_passwd: true,
        ssh_authorized_keys: s.authorizedKeys,
      },
    ],
    disable_root: true,
    ssh_pwauth: false,
    // With ssh_keys present cloud-init generates no host keys, so the injected
    // key is the one sshd offers. (ssh_genkeytypes is left out: it only applies
    // without ssh_keys, and cloud-init's schema rejects an empty list, which
    // would leave `cloud-init status` reporting "degraded".)
    ssh_deletekeys: false,
    ssh_keys: {
      ed25519_private: s.hostKey.privateKey,
      ed25519_public: s.hostKey.publicKey,
    },
    ...(env.length === 0
      ? {}
      : {
          write_files: [
            {
              path: '/etc/environment',
              append: true,
              // The leading newline keeps our lines separate if the file lacks a final newline.
              content: `\n${env.join('\n')}\n`,
            },
          ],
        }),
    runcmd: [
      // runcmd becomes one /bin/sh script; without -e a failed command would still
      // reach the marker and the host would report a half-provisioned VM as ready.
      'set -e',
      ...s.extraRunCommands,
      ['mkdir', '-p', markerDirectory(s.readinessMarker)],
      ['touch', s.readinessMarker],
    ],
  };
}

export function renderUserData(spec: SeedSpec): string {
  const doc = userDataObject(validateSeedSpec(spec));
  const literals = [['ssh_keys', 'ed25519_private'], ...('write_files' in doc ? [['write_files', 0, 'content']] : [])];
  return `#cloud-config\n${toYaml(doc, literals)}`;
}

export function renderMetaData(spec: SeedSpec): string {
  const s = validateSeedSpec(spec);
  return toYaml({ 'instance-id': s.instanceId, 'local-hostname': s.hostname });
}

export function networkConfigObject(s: ValidSeedSpec): Record<string, unknown> {
  const net = s.network;
  // Without a known MAC, any Ethernet name (eth0 with net.ifnames=0, ens*/enp* without): the VM has one NIC.
  const ethernet: Record<string, unknown> = { match: net.mac === undefined ? { name: 'e*' } : { macaddress: net.mac } };
  if (net.mode === 'dhcp') {
    ethernet.dhcp4 = true;
    // systemd-networkd sends a DUID as its client identifier by default, and
    // macOS's bootpd then records the lease under the DUID instead of the MAC:
    // the host, which knows only the MAC, would never find the address.
    ethernet['dhcp-identifier'] = 'mac';
  } else {
    const ipv6 = net.address.includes(':');
    ethernet.dhcp4 = false;
    ethernet.addresses = [net.address];
    // An explicit default route rather than `to: default`, which cloud-init
    // accepts only from 25.3; Photon OS 5 ships 25.1.
    ethernet.routes = [{ to: ipv6 ? '::/0' : '0.0.0.0/0', via: net.gateway }];
    ethernet.nameservers = { addresses: net.dns };
  }
  return { version: 2, ethernets: { [SEED_INTERFACE_ID]: ethernet } };
}

export function renderNetworkConfig(spec: SeedSpec): string {
  return toYaml(networkConfigObject(validateSeedSpec(spec)));
}
