import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { CLI, REPO, tempDir } from '../helpers/cli.ts';

const run = promisify(execFile);
const HEAVY = ['got', 'node-ssh', 'ssh2', 'listr2', '@inquirer', 'inquirer', 'execa', 'yaml', 'node-forge'];

async function importsOf(args: string[]): Promise<string[]> {
  const dir = await tempDir();
  const record = join(dir, 'imports.txt');
  await run(process.execPath, ['--import', join(REPO, 'test', 'helpers', 'record-imports.ts'), CLI, ...args], {
    env: { ...process.env, RECORD_IMPORTS: record, DEVCLUSTER_HOME: join(dir, 'home') },
  });
  return (await readFile(record, 'utf8').catch(() => '')).split('\n').filter((l) => l !== '');
}

function heavyIn(urls: string[]): string[] {
  return urls.filter((u) => HEAVY.some((h) => u.includes(`/node_modules/${h}/`)));
}

test('--version loads no command module and no heavy dependency', async () => {
  const urls = await importsOf(['--version']);
  assert.ok(urls.length > 0, 'the import hook recorded nothing');
  assert.deepEqual(heavyIn(urls), []);
  assert.ok(!urls.some((u) => u.includes('/node_modules/commander/')), 'commander is not needed for --version');
});

test('profile list and help do not load got, node-ssh, listr2 or inquirer', async () => {
  for (const args of [['profile', 'list'], ['--help'], ['config', 'view']]) {
    const heavy = heavyIn(await importsOf(args)).filter((u) => !u.includes('/yaml/'));
    assert.deepEqual(heavy, [], args.join(' '));
  }
});
