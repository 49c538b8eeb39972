import { isAbsolute } from 'node:path';
import { DRIVER_DESCRIPTORS, findDriver, driverNamesForHelp } from '../../drivers/names.ts';
import { hostFacts } from '../host/platform.ts';
import { inputError } from '../ui/errors.ts';
import { intToIpv4, ipv4ToInt, isIpv4, netContainsAddress } from '../host/ipv4.ts';
import { invalid, parseBool } from './setting-parsers.ts';
import type { SettingDefinition, SettingValue } from './setting-parsers.ts';

export type { SettingDefinition, SettingValue } from './setting-parsers.ts';
import { validateProfileName } from './names.ts';
import { DEFAULT_KUBERNETES_VERSION, SUPPORTED_KUBERNETES_VERSIONS, kubernetesRelease, unsupportedVersionError } from '../kube/versions.ts';
import { RELEASE_URL_SETTINGS } from '../kube/release-urls.ts';
import { SIZE_FORMS, formatMiB, parseSizeMiB } from './units.ts';

export const MIN_MEMORY_MIB = 1024;
export const MIN_DISK_MIB = 4096;
export const MAX_DISK_MIB = 4 * 1024 * 1024;

function parseDriver(raw: string, origin: string): string {
  if (raw.trim().toLowerCase() === 'auto') return 'auto';
  const d = findDriver(raw);
  if (d === undefined) {
    throw inputError('DRIVER_UNKNOWN', `${origin}: unknown driver ${JSON.stringify(raw)}`, {
      advice: `Known drivers: ${driverNamesForHelp()}; or "auto" to pick the best one for this host.`,
    });
  }
  return d.name;
}

/** A supported version (v1.N.N or 1.N.N), or stable/latest, which are looked up and checked when a cluster is started. */
export function parseKubernetesVersion(raw: string, origin: string): string {
  const v = raw.trim();
  if (v === 'stable' || v === 'latest') return v;
  const m = /^v?(\d+)\.(\d+)\.(\d+)$/.exec(v);
  if (m === null || m[1] !== '1') {
    throw inputError('KUBERNETES_VERSION_INVALID', `${origin}: ${JSON.stringify(raw)} is not a Kubernetes version; accepted: ${SUPPORTED_KUBERNETES_VERSIONS.join(', ')} (with or without the v), "stable" or "latest"`);
  }
  const version = `v${m[1]}.${Number(m[2])}.${Number(m[3])}`;
  if (kubernetesRelease(version) === undefined) throw unsupportedVersionError(version, origin);
  return version;
}

function parseBaseUrl(raw: string, origin: string): string {
  let url: URL | undefined;
  try {
    url = new URL(raw.trim());
  } catch {
    url = undefined;
  }
  if (url === undefined || (url.protocol !== 'http:' && url.protocol !== 'https:') || url.search !== '' || url.hash !== '') {
    throw invalid(origin, raw, 'an http(s) URL without ?query or #fragment, the base of a mirror with the project\'s own layout');
  }
  return url.toString().replace(/\/+$/, '');
}

function parseMirrorUrl(raw: string, origin: string): string {
  return raw.trim() === '' ? '' : parseBaseUrl(raw, origin);
}

function parseCpus(raw: string, origin: string): number {
  const cores = hostFacts().cpus;
  const v = raw.trim().toLowerCase();
  if (v === 'max') return cores;
  if (!/^\d+$/.test(v) || Number(v) < 1) throw invalid(origin, raw, `a whole number from 1 to ${cores} (this host's cores), or "max"`);
  const n = Number(v);
  if (n > cores) {
    throw inputError('HOST_CPUS_TOO_FEW', `${origin}: ${n} CPUs requested but this host has ${cores}`, {
      advice: `Choose at most ${cores}, or "max".`,
    });
  }
  return n;
}

function parseMemory(raw: string, origin: string): number {
  const total = hostFacts().totalMemoryMiB;
  if (raw.trim().toLowerCase() === 'max') return Math.max(MIN_MEMORY_MIB, Math.floor((total * 3) / 4));
  const mib = parseSizeMiB(raw);
  if (mib === undefined) throw invalid(origin, raw, `a size such as ${SIZE_FORMS}, or "max"`);
  if (mib < MIN_MEMORY_MIB) throw invalid(origin, raw, `at least ${formatMiB(MIN_MEMORY_MIB)} (a Kubernetes node needs it)`);
  if (mib > total) {
    throw inputError('HOST_MEMORY_TOO_LOW', `${origin}: ${formatMiB(mib)} of memory requested but this host has ${formatMiB(total)}`, {
      advice: `Choose less than ${formatMiB(total)}; leave room for the host (e.g. --memory ${formatMiB(Math.max(MIN_MEMORY_MIB, Math.floor(total / 2 / 1024) * 1024))}).`,
    });
  }
  return mib;
}

function parseDisk(raw: string, origin: string): number {
  const mib = parseSizeMiB(raw);
  if (mib === undefined || mib < MIN_DISK_MIB || mib > MAX_DISK_MIB) {
    throw invalid(origin, raw, `a size from ${formatMiB(MIN_DISK_MIB)} to ${formatMiB(MAX_DISK_MIB)}, such as 20g or 40960`);
  }
  return mib;
}

function parseImage(raw: string, origin: string): string {
  const v = raw.trim();
  if (/^[a-z0-9][a-z0-9.-]{0,62}$/.test(v) || isAbsolute(v) || /^https?:\/\/[^\s]+$/i.test(v)) return v;
  throw invalid(origin, raw, 'a catalog image name (photon-5, debian-12), an absolute path to a disk image, or an http(s) URL');
}

function parseSha256(raw: string, origin: string): string {
  const v = raw.trim().toLowerCase();
  if (!/^[0-9a-f]{64}$/.test(v)) throw invalid(origin, raw, '64 hexadecimal characters (a sha256 digest)');
  return v;
}

const PRIVATE_RANGES: ReadonlyArray<[number, number]> = [
  [ipv4ToInt('10.0.0.0'), 8],
  [ipv4ToInt('172.16.0.0'), 12],
  [ipv4ToInt('192.168.0.0'), 16],
];




function parseSubnet(raw: string, origin: string): string {
  const v = raw.trim();
  if (v === 'auto') return v;
  const accepted = '"auto" or a private IPv4 network with a prefix from /16 to /29, e.g. 192.168.211.0/24';
  const m = /^([\d.]+)\/(\d{1,2})$/.exec(v);
  if (m === null || !isIpv4(m[1] ?? '')) throw invalid(origin, raw, accepted);
  const prefix = Number(m[2]);
  const ip = ipv4ToInt(m[1] ?? '');
  if (prefix < 16 || prefix > 29) throw invalid(origin, raw, accepted);
  const hostBits = (1 << (32 - prefix)) - 1;
  if ((ip & hostBits) !== 0) throw invalid(origin, raw, accepted, `The address has host bits set; did you mean ${intToIpv4((ip & ~hostBits) >>> 0)}/${prefix}?`);
  if (!PRIVATE_RANGES.some(([base, p]) => netContainsAddress({ base, prefix: p }, ip) && prefix >= p)) throw invalid(origin, raw, accepted);
  return v;
}


function parseStaticIp(raw: string, origin: string): string {
  const v = raw.trim();
  if (v === 'auto') return v;
  if (!isIpv4(v)) throw invalid(origin, raw, '"auto" or an IPv4 address inside the subnet, e.g. 192.168.211.10');
  return v;
}

function parseIdList(raw: string, origin: string): string[] {
  const ids = raw.split(',').map((s) => s.trim()).filter((s) => s !== '');
  for (const id of ids) if (!/^[A-Z][A-Z0-9_]{1,63}$/.test(id)) throw invalid(origin, raw, 'a comma-separated list of check IDs such as KUBECTL_NOT_ON_PATH');
  return [...new Set(ids)];
}

const CORE_SETTINGS: readonly SettingDefinition[] = [
  { key: 'profile', description: 'The profile commands act on when -p is not given', scope: 'global', defaultValue: 'devcluster', accepts: 'a profile name', parse: (raw) => validateProfileName(raw.trim()) },
  { key: 'driver', description: 'The hypervisor driver', scope: 'any', defaultValue: 'auto', accepts: `auto | ${driverNamesForHelp()}`, parse: parseDriver },
  { key: 'cpus', description: 'Virtual CPUs for the VM', scope: 'any', defaultValue: 2, accepts: '1..host cores, or max', parse: parseCpus },
  { key: 'memory', description: 'Memory for the VM (MiB when no unit)', scope: 'any', defaultValue: 4096, accepts: `${SIZE_FORMS}, or max`, parse: parseMemory, format: (v) => formatMiB(Number(v)) },
  { key: 'disk-size', description: 'Size of the VM disk', scope: 'any', defaultValue: 20480, accepts: '4g to 4t, e.g. 20g', parse: parseDisk, format: (v) => formatMiB(Number(v)) },
  { key: 'kubernetes-version', description: 'Kubernetes version to install (stable and latest are looked up online)', scope: 'any', defaultValue: DEFAULT_KUBERNETES_VERSION, accepts: `${SUPPORTED_KUBERNETES_VERSIONS.join(', ')}, stable, latest`, parse: parseKubernetesVersion },
  { key: RELEASE_URL_SETTINGS.kubernetes.key, description: 'Base URL of the Kubernetes binaries (dl.k8s.io layout: <url>/v1.N.N/bin/linux/amd64/kubeadm), or a mirror of it', scope: 'any', defaultValue: RELEASE_URL_SETTINGS.kubernetes.defaultUrl, accepts: 'an http(s) URL', parse: parseBaseUrl },
  { key: RELEASE_URL_SETTINGS.containerd.key, description: 'Base URL of containerd release archives (<url>/vX/containerd-X-linux-amd64.tar.gz)', scope: 'any', defaultValue: RELEASE_URL_SETTINGS.containerd.defaultUrl, accepts: 'an http(s) URL', parse: parseBaseUrl },
  { key: RELEASE_URL_SETTINGS.runc.key, description: 'Base URL of runc release binaries (<url>/vX/runc.amd64)', scope: 'any', defaultValue: RELEASE_URL_SETTINGS.runc.defaultUrl, accepts: 'an http(s) URL', parse: parseBaseUrl },
  { key: RELEASE_URL_SETTINGS.cniPlugins.key, description: 'Base URL of CNI plugin release archives (<url>/vX/cni-plugins-linux-amd64-vX.tgz)', scope: 'any', defaultValue: RELEASE_URL_SETTINGS.cniPlugins.defaultUrl, accepts: 'an http(s) URL', parse: parseBaseUrl },
  { key: RELEASE_URL_SETTINGS.criTools.key, description: 'Base URL of crictl release archives (<url>/vX/crictl-vX-linux-amd64.tar.gz)', scope: 'any', defaultValue: RELEASE_URL_SETTINGS.criTools.defaultUrl, accepts: 'an http(s) URL', parse: parseBaseUrl },
  { key: 'registry-mirror', description: 'A registry mirror the guest\'s containerd pulls docker.io and registry.k8s.io images through (hosts.toml), e.g. an internal pull-through cache', scope: 'any', defaultValue: '', accepts: 'an http(s) URL, or empty for none', parse: parseMirrorUrl },
  { key: 'image', description: 'Guest image: catalog name, path or URL', scope: 'any', defaultValue: 'photon-5', accepts: 'photon-5, debian-12, /path/to/disk, https://...', parse: parseImage },
  { key: 'image-sha256', description: 'Expected sha256 of --image when it is a path or URL', scope: 'any', defaultValue: '', accepts: '64 hex characters', parse: parseSha256 },
  { key: 'subnet', description: 'Host network for the VM when the driver makes one (QEMU bridged mode)', scope: 'any', defaultValue: 'auto', accepts: 'auto or a private CIDR /16../29', parse: parseSubnet },
  { key: 'static-ip', description: 'The VM address inside the subnet', scope: 'any', defaultValue: 'auto', accepts: 'auto or an IPv4 address', parse: parseStaticIp },
  { key: 'offline', description: 'Use only cached images and binaries', scope: 'any', defaultValue: false, accepts: 'true | false', parse: parseBool },
  { key: 'doctor.muted', description: 'Doctor check IDs whose warnings are hidden', scope: 'any', defaultValue: [], accepts: 'comma-separated check IDs', parse: parseIdList, format: (v) => (v as string[]).join(',') },
];

/** Core settings, then each driver's own (declared in its descriptor, drivers/names.ts). */
export const SETTINGS: readonly SettingDefinition[] = [...CORE_SETTINGS, ...DRIVER_DESCRIPTORS.flatMap((d) => d.settings)];

export function findSetting(key: string): SettingDefinition | undefined {
  return SETTINGS.find((s) => s.key === key);
}

export function requireSetting(key: string): SettingDefinition {
  const s = findSetting(key);
  if (s === undefined) {
    throw inputError('CONFIG_UNKNOWN_KEY', `unknown configuration key ${JSON.stringify(key)}`, {
      advice: `Known keys: ${SETTINGS.map((d) => d.key).join(', ')}.`,
    });
  }
  return s;
}

/** DEVCLUSTER_DISK_SIZE for disk-size, DEVCLUSTER_DOCTOR_MUTED for doctor.muted. */
export function envName(key: string): string {
  return `DEVCLUSTER_${key.toUpperCase().replace(/[-.]/g, '_')}`;
}

export function formatValue(def: SettingDefinition, value: SettingValue): string {
  if (def.format !== undefined) return def.format(value);
  return Array.isArray(value) ? value.join(',') : String(value);
}

/** Values read back from JSON files are checked with the same parser as typed ones. */
export function parseStored(def: SettingDefinition, value: unknown, origin: string): SettingValue {
  const text = Array.isArray(value) ? value.join(',') : String(value);
  return def.parse(text, origin);
}
