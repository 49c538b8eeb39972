// Rewrites the list of checks in docs/doctor.md from the check registry.
// test/unit/doctor-docs.test.ts fails when the committed list is stale.
import { readFile, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { updateDoctorMarkdown } from '../src/doctor/docs.ts';
import { loadDriverChecks } from '../src/doctor/driver-checks.ts';
import { allChecks } from '../src/doctor/registry.ts';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const path = join(root, 'docs', 'doctor.md');
await loadDriverChecks();
await writeFile(path, updateDoctorMarkdown(await readFile(path, 'utf8'), allChecks()));
