import { readFile } from 'node:fs/promises';

/**
 * A UTF-8 file's text, or undefined when there is no such file. Every other
 * read error is the caller's to word, so it propagates as the fs error.
 */
export async function readTextIfExists(path: string): Promise<string | undefined> {
  try {
    return await readFile(path, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw e;
  }
}
