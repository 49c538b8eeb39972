import { invalid, oneOf } from '../../src/profile/setting-parsers.ts';
import type { SettingDefinition } from '../../src/profile/setting-parsers.ts';

function parseBridgeName(raw: string, origin: string): string {
  const v = raw.trim();
  if (!/^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,14}$/.test(v)) throw invalid(origin, raw, 'a Linux interface name: 1 to 15 letters, digits, "_", "." or "-"');
  return v;
}

/** The QEMU driver's own settings; `start` offers each as a flag. */
export const QEMU_SETTINGS: readonly SettingDefinition[] = [
  { key: 'qemu-network', driver: 'qemu', description: 'QEMU networking: user (slirp, no root) or bridged (Linux, root)', scope: 'any', defaultValue: 'user', accepts: 'user | bridged', parse: oneOf(['user', 'bridged']) },
  { key: 'qemu-bridge', driver: 'qemu', description: 'Linux bridge for --qemu-network=bridged', scope: 'any', defaultValue: 'devcluster0', accepts: 'an interface name (max 15 chars)', parse: parseBridgeName },
  { key: 'qemu-accel', driver: 'qemu', description: 'QEMU accelerator', scope: 'any', defaultValue: 'auto', accepts: 'auto | kvm | hvf | whpx | tcg', parse: oneOf(['auto', 'kvm', 'hvf', 'whpx', 'tcg']) },
];
