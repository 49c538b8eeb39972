import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/**
 * The directory holding devcluster's package.json, found by walking up from
 * this file: the same code runs from src/ (tests) and dist/src/ (installed),
 * and images/ (catalog and recipes) ships beside package.json.
 */
export function packageRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 6; i += 1) {
    const candidate = join(dir, 'package.json');
    if (existsSync(candidate)) {
      try {
        const pkg = JSON.parse(readFileSync(candidate, 'utf8')) as { name?: string };
        if (pkg.name === 'devcluster') return dir;
      } catch {
        // an unrelated or broken package.json: keep walking
      }
    }
    dir = dirname(dir);
  }
  throw new Error(`cannot find devcluster's package root above ${fileURLToPath(import.meta.url)}`);
}

export function imagesDir(): string {
  return join(packageRoot(), 'images');
}
