import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { renderConfigurationDoc, renderErrorsDoc } from '../../scripts/reference-docs.ts';
import { REPO } from '../helpers/cli.ts';

test('docs/errors.md matches the error catalog (run `npm run docs` after changing it)', async () => {
  assert.equal(await readFile(join(REPO, 'docs', 'errors.md'), 'utf8'), await renderErrorsDoc());
});

test('docs/configuration.md matches the settings table (run `npm run docs`)', async () => {
  assert.equal(await readFile(join(REPO, 'docs', 'configuration.md'), 'utf8'), renderConfigurationDoc());
});

test('every driver that has an error catalog (drivers/<name>/errors.ts) is listed for docs/errors.md', async () => {
  const { readdir, access } = await import('node:fs/promises');
  const { DRIVER_ERROR_LOADERS } = await import('../../drivers/index.ts');
  const withErrors: string[] = [];
  for (const entry of await readdir(join(REPO, 'drivers'), { withFileTypes: true })) {
    if (entry.isDirectory() && (await access(join(REPO, 'drivers', entry.name, 'errors.ts')).then(() => true, () => false))) withErrors.push(entry.name);
  }
  assert.ok(withErrors.includes('qemu'), `drivers were found: ${withErrors.join(', ')}`);
  assert.deepEqual(Object.keys(DRIVER_ERROR_LOADERS).sort(), withErrors.sort());
});
