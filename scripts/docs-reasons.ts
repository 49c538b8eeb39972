// Writes docs/reasons.md from the known-issue table (src/doctor/reasons.ts).
// test/unit/doctor-reasons.test.ts fails when the committed page is stale.
import { writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { renderReasonsMarkdown } from '../src/doctor/docs.ts';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
await writeFile(join(root, 'docs', 'reasons.md'), renderReasonsMarkdown());
