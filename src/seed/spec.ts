/**
 * What goes into a VM's cloud-init NoCloud seed, and the checks that make
 * every value safe to hand to cloud-init, sshd, systemd-networkd and pam_env.
 * Values are rejected here, with the field named, rather than escaped into
 * something the guest would read differently.
 */
import { BlockList, isIP, isIPv4 } from 'node:net';
import { ipv4ToInt } from '../host/ipv4.ts';
import { posix } from 'node:path';
import { errorDef, inputError, registerErrors } from '../ui/errors.ts';
import { checkEd25519PrivateKey, hasControlCharacter, parsePublicKeyLine } from './openssh-format.ts';

registerErrors({
  SEED_INVALID_SPEC: errorDef(
    'usage',
    2,
    'A value that goes into the cloud-init seed (hostname, user, SSH key, MAC or IP address, DNS server, proxy, command) is malformed.',
  ),
});

export const DEFAULT_SEED_USER = 'devcluster';

/**
 * The guest's one NIC. `mac` is absent when the hypervisor assigns it only
 * when the VM is created or boots (HyperKit vmnet, VMware); the config then
 * applies to the guest's Ethernet interface by name.
 */
export type SeedNetwork =
  | { mode: 'dhcp'; mac?: string }
  | {
      mode: 'static';
      mac?: string;
      /** Address with prefix length, e.g. 192.168.211.10/24. */
      address: string;
      gateway: string;
      dns: string[];
    };

export interface SeedProxy {
  http?: string;
  https?: string;
  /** Comma-separated hosts, domains and CIDRs, without spaces. */
  noProxy?: string;
}

export interface SeedSpec {
  /** cloud-init runs its per-instance modules once per instance-id; keep it stable for a VM's life. */
  instanceId: string;
  /** RFC 1123 label (lowercase, as Kubernetes node names are). */
  hostname: string;
  /** Login user created with passwordless sudo; default 'devcluster'. */
  user?: string;
  /** authorized_keys lines for the user. */
  authorizedKeys: string[];
  /** The guest's ed25519 host key in OpenSSH format, generated on the host so it is pinned from the first connection. */
  hostKey: { privateKey: string; publicKey: string };
  network: SeedNetwork;
  /** Absolute guest path created when provisioning has finished; the host waits for it. */
  readinessMarker: string;
  /** Extra commands (argument arrays) run before the readiness marker is written. */
  extraRunCommands?: string[][];
  proxy?: SeedProxy;
}

/** A checked spec: defaults filled, MACs lowercased, keys normalized. */
export interface ValidSeedSpec {
  instanceId: string;
  hostname: string;
  user: string;
  authorizedKeys: string[];
  hostKey: { privateKey: string; publicKey: string };
  network: SeedNetwork;
  readinessMarker: string;
  extraRunCommands: string[][];
  proxy: SeedProxy;
}

function reject(field: string, message: string, advice: string): never {
  throw inputError('SEED_INVALID_SPEC', message, { advice, details: { field } });
}

function show(value: unknown): string {
  return typeof value === 'string' ? JSON.stringify(value) : String(value);
}

function requireString(field: string, value: unknown): string {
  if (typeof value !== 'string') reject(field, `seed ${field} must be a string, got ${typeof value}`, `Set ${field} to a string.`);
  return value;
}

const INSTANCE_ID = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;
const HOSTNAME = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/;
const USER = /^[a-z_][a-z0-9_-]{0,31}$/;
const RESERVED_USERS = new Set(['root', 'nobody']);
const MAC = /^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/;
const PATH_SEGMENT = /^[A-Za-z0-9._-]+$/;
// Characters that /etc/environment readers (pam_env, shells sourcing it) treat specially.
const ENV_UNSAFE = /[\s"'`\\$#;&|<>(){}]/;
const NO_PROXY_ENTRY = /^[A-Za-z0-9.*:_/[\]%-]+$/;
const PROXY_PROTOCOLS = new Set(['http:', 'https:', 'socks5:', 'socks5h:']);

/**
 * Names the first character PyYAML cannot carry through a double-quoted
 * string: it rejects DEL, C1 controls and non-characters outright, and folds
 * U+0085, U+2028 and U+2029 as line breaks. Undefined when the text is safe.
 */
export function yamlUnsafeCharacter(text: string): string | undefined {
  for (const ch of text) {
    const cp = ch.codePointAt(0) as number;
    const unsafe =
      cp === 0x7f ||
      (cp >= 0x80 && cp <= 0x9f) ||
      cp === 0x2028 ||
      cp === 0x2029 ||
      cp === 0xfeff ||
      cp === 0xfffe ||
      cp === 0xffff ||
      (cp >= 0xd800 && cp <= 0xdfff); // a lone surrogate: not encodable as UTF-8
    if (unsafe) return `U+${cp.toString(16).toUpperCase().padStart(4, '0')}`;
  }
  return undefined;
}

function validateInstanceId(value: unknown): string {
  const id = requireString('instanceId', value);
  if (!INSTANCE_ID.test(id)) {
    reject('instanceId', `seed instance id ${show(id)} is not valid`, 'An instance id is 1 to 128 letters, digits, ".", "_" or "-", starting with a letter or digit.');
  }
  return id;
}

function validateHostname(value: unknown): string {
  const name = requireString('hostname', value);
  if (!HOSTNAME.test(name)) {
    reject(
      'hostname',
      `hostname ${show(name)} is not a valid RFC 1123 label`,
      'A hostname is 1 to 63 lowercase letters, digits and dashes, starting and ending with a letter or digit (e.g. "devcluster", "dev-2").',
    );
  }
  return name;
}

function validateUser(value: unknown): string {
  if (value === undefined) return DEFAULT_SEED_USER;
  const user = requireString('user', value);
  if (!USER.test(user) || RESERVED_USERS.has(user)) {
    reject(
      'user',
      `guest user name ${show(user)} is not valid`,
      'A user name is 1 to 32 lowercase letters, digits, "_" and "-", starting with a letter or "_"; "root" and "nobody" are not allowed.',
    );
  }
  return user;
}

function validateAuthorizedKeys(value: unknown): string[] {
  if (!Array.isArray(value) || value.length === 0) {
    reject('authorizedKeys', 'the seed needs at least one authorized SSH key', 'Pass the public key devcluster logs in with (one authorized_keys line per entry).');
  }
  return value.map((entry: unknown, i: number) => {
    const line = requireString(`authorizedKeys[${i}]`, entry);
    const bad = yamlUnsafeCharacter(line);
    const parsed = bad === undefined ? parsePublicKeyLine(line) : `it contains the character ${bad}`;
    if (typeof parsed === 'string') {
      reject(
        `authorizedKeys[${i}]`,
        `authorized key ${i + 1} is not usable: ${parsed}`,
        'Each entry is one public key line: "<type> <base64> [comment]", e.g. "ssh-ed25519 AAAA... devcluster".',
      );
    }
    return line.trim();
  });
}

function validateHostKey(value: unknown): { privateKey: string; publicKey: string } {
  if (typeof value !== 'object' || value === null) {
    reject('hostKey', 'the seed needs the guest host key pair', 'Pass hostKey: { privateKey, publicKey } in OpenSSH format.');
  }
  const { privateKey, publicKey } = value as Record<string, unknown>;
  // Never echo key material in messages: the private key is a secret.
  const pub = parsePublicKeyLine(requireString('hostKey.publicKey', publicKey));
  if (typeof pub === 'string' || pub.type !== 'ssh-ed25519') {
    reject(
      'hostKey.publicKey',
      `the guest host public key is not usable: ${typeof pub === 'string' ? pub : `it is ${pub.type}, not ssh-ed25519`}`,
      'The host key is an ed25519 key: "ssh-ed25519 <base64> [comment]".',
    );
  }
  const priv = checkEd25519PrivateKey(requireString('hostKey.privateKey', privateKey), pub.blob);
  if (typeof priv === 'string') {
    reject(
      'hostKey.privateKey',
      `the guest host private key is not usable: ${priv}`,
      'The host key is an unencrypted ed25519 key in OpenSSH format, as written by "ssh-keygen -t ed25519 -N \'\'".',
    );
  }
  return { privateKey: priv.normalized, publicKey: (publicKey as string).trim() };
}

function validateMac(value: unknown): string {
  const mac = requireString('network.mac', value).toLowerCase();
  const firstOctet = Number.parseInt(mac.slice(0, 2), 16);
  if (!MAC.test(mac) || (firstOctet & 1) === 1 || mac === '00:00:00:00:00:00') {
    reject(
      'network.mac',
      `MAC address ${show(value)} is not valid`,
      'A MAC address is six hex pairs separated by ":" (e.g. 52:54:00:12:34:56), unicast (even first octet) and not all zeros.',
    );
  }
  return mac;
}

function validateIp(field: string, value: unknown): { address: string; family: 4 | 6 } {
  const address = requireString(field, value);
  const family = isIP(address);
  // Zone ids (fe80::1%eth0) name a host interface and mean nothing in the guest.
  if (family === 0 || address.includes('%')) {
    reject(field, `${field} ${show(address)} is not an IP address`, 'Use a plain IPv4 (e.g. 192.168.211.1) or IPv6 address.');
  }
  return { address, family: family as 4 | 6 };
}


function validateStaticNetwork(value: Record<string, unknown>, mac: string | undefined): SeedNetwork {
  const cidr = requireString('network.address', value.address);
  const match = /^([^/]+)\/(0|[1-9][0-9]{0,2})$/.exec(cidr);
  const host = match === null ? undefined : isIP(match[1] as string) === 0 || (match[1] as string).includes('%') ? undefined : (match[1] as string);
  const prefix = match === null ? NaN : Number(match[2]);
  const family = host === undefined ? 0 : isIPv4(host) ? 4 : 6;
  if (host === undefined || prefix < 1 || prefix > (family === 4 ? 32 : 128)) {
    reject(
      'network.address',
      `static address ${show(cidr)} is not an address with a prefix length`,
      'Write the guest address in CIDR form, e.g. 192.168.211.10/24 (prefix 1-32 for IPv4, 1-128 for IPv6).',
    );
  }
  const gateway = validateIp('network.gateway', value.gateway);
  if (gateway.family !== family) {
    reject('network.gateway', `gateway ${show(gateway.address)} is not of the same IP family as ${show(cidr)}`, 'Use a gateway inside the guest subnet.');
  }
  const subnet = new BlockList();
  subnet.addSubnet(host, prefix, family === 4 ? 'ipv4' : 'ipv6');
  if (!subnet.check(gateway.address, family === 4 ? 'ipv4' : 'ipv6') || gateway.address === host) {
    reject(
      'network.gateway',
      `gateway ${show(gateway.address)} is not another address inside ${show(cidr)}`,
      'The gateway must be on the guest subnet and differ from the guest address (e.g. 192.168.211.1 for 192.168.211.10/24).',
    );
  }
  if (family === 4 && prefix <= 30) {
    const size = 2 ** (32 - prefix);
    const offset = ipv4ToInt(host) % size;
    if (offset === 0 || offset === size - 1) {
      reject('network.address', `static address ${show(cidr)} is the network or broadcast address of its subnet`, 'Pick a host address inside the subnet, e.g. .10 in a /24.');
    }
  }
  if (!Array.isArray(value.dns) || value.dns.length === 0) {
    reject('network.dns', 'a static network needs at least one DNS server', 'Pass dns: ["192.168.211.1"] (often the gateway) or another resolver.');
  }
  const dns = value.dns.map((d: unknown, i: number) => validateIp(`network.dns[${i}]`, d).address);
  return { mode: 'static', ...(mac === undefined ? {} : { mac }), address: cidr, gateway: gateway.address, dns };
}

function validateNetwork(value: unknown): SeedNetwork {
  if (typeof value !== 'object' || value === null) {
    reject('network', 'the seed needs a network setting', 'Pass network: { mode: "dhcp", mac } or { mode: "static", mac, address, gateway, dns }.');
  }
  const net = value as Record<string, unknown>;
  const mac = net.mac === undefined ? undefined : validateMac(net.mac);
  if (net.mode === 'dhcp') return { mode: 'dhcp', ...(mac === undefined ? {} : { mac }) };
  if (net.mode === 'static') return validateStaticNetwork(net, mac);
  return reject('network.mode', `network mode ${show(net.mode)} is not known`, 'The network mode is "dhcp" or "static".');
}

function validateMarker(value: unknown): string {
  const path = requireString('readinessMarker', value);
  const segments = path.split('/').slice(1);
  if (
    !path.startsWith('/') ||
    path.length > 255 ||
    segments.length === 0 ||
    !segments.every((s) => PATH_SEGMENT.test(s) && s !== '.' && s !== '..')
  ) {
    reject(
      'readinessMarker',
      `readiness marker ${show(path)} is not an absolute guest file path`,
      'Use an absolute path of letters, digits, ".", "_", "-" and "/" without "." or ".." parts, e.g. /var/lib/devcluster/ready.',
    );
  }
  return path;
}

function validateRunCommands(value: unknown): string[][] {
  if (value === undefined) return [];
  if (!Array.isArray(value)) reject('extraRunCommands', 'extra run commands must be a list of argument lists', 'Pass e.g. [["systemctl", "enable", "--now", "containerd"]].');
  return value.map((argv: unknown, i: number) => {
    if (!Array.isArray(argv) || argv.length === 0 || argv[0] === '') {
      reject(`extraRunCommands[${i}]`, `extra run command ${i + 1} is not a non-empty argument list`, 'Each command is an array of strings whose first element is the program.');
    }
    return argv.map((arg: unknown, j: number) => {
      const s = requireString(`extraRunCommands[${i}][${j}]`, arg);
      // A NUL cannot be passed in an argv string.
      const bad = s.includes('\0') ? 'U+0000' : yamlUnsafeCharacter(s);
      if (bad !== undefined) {
        reject(
          `extraRunCommands[${i}][${j}]`,
          `extra run command ${i + 1} has the character ${bad} in argument ${j + 1}, which cloud-init cannot pass on unchanged`,
          'Remove NUL, DEL, C1 control characters, U+2028/U+2029 line separators and Unicode non-characters from the command.',
        );
      }
      return s;
    });
  });
}

/** The proxy URL without its password, for messages. */
function redactUrl(url: string): string {
  return url.replace(/\/\/([^/@:]*):[^/@]*@/, '//$1:***@');
}

function validateProxyUrl(field: string, value: unknown): string {
  const url = requireString(field, value);
  let parsed: URL | undefined;
  try {
    parsed = new URL(url);
  } catch {
    parsed = undefined;
  }
  if (parsed === undefined || !PROXY_PROTOCOLS.has(parsed.protocol) || parsed.hostname === '' || ENV_UNSAFE.test(url) || hasControlCharacter(url)) {
    reject(
      field,
      `${field} ${JSON.stringify(redactUrl(url))} is not a usable proxy URL`,
      'Use http://host:port (or https://, socks5://, socks5h://); percent-encode credentials; spaces, quotes, "#", "$", "\\" and similar characters are not allowed.',
    );
  }
  return url;
}

function validateProxy(value: unknown): SeedProxy {
  if (value === undefined) return {};
  if (typeof value !== 'object' || value === null) reject('proxy', 'the proxy setting must be an object', 'Pass proxy: { http, https, noProxy }.');
  const p = value as Record<string, unknown>;
  const out: SeedProxy = {};
  if (p.http !== undefined) out.http = validateProxyUrl('proxy.http', p.http);
  if (p.https !== undefined) out.https = validateProxyUrl('proxy.https', p.https);
  if (p.noProxy !== undefined) {
    const list = requireString('proxy.noProxy', p.noProxy);
    if (!list.split(',').every((entry) => NO_PROXY_ENTRY.test(entry))) {
      reject(
        'proxy.noProxy',
        `no-proxy list ${show(list)} is not valid`,
        'Write hosts, domains and CIDRs separated by commas without spaces, e.g. localhost,127.0.0.1,.svc,10.96.0.0/12.',
      );
    }
    out.noProxy = list;
  }
  return out;
}

export function validateSeedSpec(spec: SeedSpec): ValidSeedSpec {
  if (typeof spec !== 'object' || spec === null) reject('spec', 'the seed specification is missing', 'Pass a SeedSpec object.');
  const readinessMarker = validateMarker(spec.readinessMarker);
  return {
    instanceId: validateInstanceId(spec.instanceId),
    hostname: validateHostname(spec.hostname),
    user: validateUser(spec.user),
    authorizedKeys: validateAuthorizedKeys(spec.authorizedKeys),
    hostKey: validateHostKey(spec.hostKey),
    network: validateNetwork(spec.network),
    readinessMarker,
    extraRunCommands: validateRunCommands(spec.extraRunCommands),
    proxy: validateProxy(spec.proxy),
  };
}

/** The directory that must exist before the readiness marker is created. */
export function markerDirectory(marker: string): string {
  return posix.dirname(marker);
}
