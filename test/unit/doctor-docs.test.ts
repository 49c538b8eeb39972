import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { loadDriverChecks } from '../../src/doctor/driver-checks.ts';
import { allChecks } from '../../src/doctor/registry.ts';
import { updateDoctorMarkdown } from '../../src/doctor/docs.ts';
import { checkDocs } from '../../src/doctor/runner.ts';
import { REPO } from '../helpers/cli.ts';

test('the list of checks in docs/doctor.md is generated from the registry (run `npm run docs:doctor` when this fails)', async () => {
  await loadDriverChecks();
  const committed = await readFile(join(REPO, 'docs', 'doctor.md'), 'utf8');
  assert.equal(committed, updateDoctorMarkdown(committed, allChecks()));
});

test('every check\'s docs link points at its heading in docs/doctor.md', async () => {
  await loadDriverChecks();
  const text = await readFile(join(REPO, 'docs', 'doctor.md'), 'utf8');
  for (const c of allChecks()) {
    assert.ok(text.includes(`\n#### ${c.id}\n`), `${c.id} has no heading`);
    assert.ok(checkDocs(c.id).endsWith(`/docs/doctor.md#${c.id.toLowerCase()}`));
  }
});
