import { isAbsolute, win32 } from 'node:path';
import { invalid } from '../../src/profile/setting-parsers.ts';
import type { SettingDefinition } from '../../src/profile/setting-parsers.ts';

function parseVmrunPath(raw: string, origin: string): string {
  const v = raw.trim();
  if (v === 'auto') return v;
  if (!isAbsolute(v) && !win32.isAbsolute(v)) throw invalid(origin, raw, 'auto, or the absolute path of vmrun (vmrun.exe on Windows)');
  return v;
}

/** The VMware driver's own settings; `start` offers each as a flag. */
export const VMWARE_SETTINGS: readonly SettingDefinition[] = [
  {
    key: 'vmware-vmrun',
    driver: 'vmware',
    description: 'the vmrun program: auto (PATH, then the Windows registry, then the default install folders) or its path',
    scope: 'any',
    defaultValue: 'auto',
    accepts: 'auto | an absolute path',
    parse: parseVmrunPath,
  },
];
