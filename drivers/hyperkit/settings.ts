import { isAbsolute } from 'node:path';
import { invalid } from '../../src/profile/setting-parsers.ts';
import type { SettingDefinition } from '../../src/profile/setting-parsers.ts';

function parseHyperkitPath(raw: string, origin: string): string {
  const v = raw.trim();
  if (v === 'auto') return v;
  // macOS's ps joins arguments with spaces, so a path with one could not be recognized as the running hyperkit.
  if (!isAbsolute(v) || /[,\s]/.test(v)) throw invalid(origin, raw, 'auto, or the absolute path of the hyperkit program, without commas or spaces');
  return v;
}

/** The HyperKit driver's own settings; `start` offers each as a flag. */
export const HYPERKIT_SETTINGS: readonly SettingDefinition[] = [
  {
    key: 'hyperkit-path',
    driver: 'hyperkit',
    description: 'the hyperkit program: auto (PATH, /usr/local/bin, Docker Desktop\'s copy) or its path',
    scope: 'any',
    defaultValue: 'auto',
    accepts: 'auto | an absolute path',
    parse: parseHyperkitPath,
  },
];
