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
