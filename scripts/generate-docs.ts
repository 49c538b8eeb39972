// Writes the reference pages generated from code: docs/errors.md (every error
// ID and exit code) and docs/configuration.md (every setting). A test fails
// when the committed pages differ from what this prints.
import { writeFile } from 'node:fs/promises';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { renderConfigurationDoc, renderErrorsDoc } from './reference-docs.ts';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
await writeFile(join(root, 'docs', 'errors.md'), await renderErrorsDoc());
await writeFile(join(root, 'docs', 'configuration.md'), renderConfigurationDoc());
