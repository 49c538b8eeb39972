// Loaded with --import: appends every module URL the process loads to the
// file named by RECORD_IMPORTS, so tests can prove what a command imports.
import { registerHooks } from 'node:module';
import { appendFileSync } from 'node:fs';

const target = process.env['RECORD_IMPORTS'];
if (target !== undefined) {
  registerHooks({
    resolve(specifier, context, nextResolve) {
      const result = nextResolve(specifier, context);
      appendFileSync(target, `${result.url}\n`);
      return result;
    },
  });
}
