import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { runCli, tempDir } from '../helpers/cli.ts';
import { powershellSyntaxProblems } from '../helpers/powershell.ts';

const exec = promisify(execFile);

async function script(shell: string): Promise<string> {
  const r = await runCli(['completion', shell], { home: await tempDir() });
  assert.equal(r.code, 0, r.stderr);
  return r.stdout;
}

async function bashComplete(words: string[]): Promise<string[]> {
  const dir = await tempDir();
  const file = join(dir, 'c.bash');
  await writeFile(file, await script('bash'));
  const cword = words.length - 1;
  const program = `source ${file}; COMP_WORDS=(${words.map((w) => `'${w}'`).join(' ')}); COMP_CWORD=${cword}; _devcluster; printf '%s\\n' "\${COMPREPLY[@]}"`;
  const { stdout } = await exec('bash', ['-c', program]);
  return stdout.split('\n').filter((l) => l !== '');
}

test('bash completion completes commands, subcommands and options', async () => {
  assert.ok((await bashComplete(['devcluster', ''])).includes('config'));
  assert.deepEqual(await bashComplete(['devcluster', 'config', 's']), ['set']);
  assert.deepEqual(await bashComplete(['devcluster', '-p', 'dev', 'config', 'v']), ['view']);
  assert.ok((await bashComplete(['devcluster', 'config', 'set', '--w'])).includes('--wait-lock'));
  assert.ok((await bashComplete(['devcluster', 'profile', 'list', '--o'])).includes('--output'));
});

test('zsh and fish scripts are valid for their shells', async () => {
  const dir = await tempDir();
  await writeFile(join(dir, 'c.zsh'), await script('zsh'));
  await exec('zsh', ['-n', join(dir, 'c.zsh')]);
  await writeFile(join(dir, 'c.fish'), await script('fish'));
  await exec('fish', ['--no-execute', join(dir, 'c.fish')]);
  const fish = await script('fish');
  assert.match(fish, /complete -c devcluster -n '__fish_seen_subcommand_from config' -a 'set'/);
});

test('the PowerShell script parses without syntax errors and knows every command', async () => {
  const ps = await script('powershell');
  assert.deepEqual(await powershellSyntaxProblems(ps), []);
  assert.match(ps, /'config set' = @\(/);
  assert.match(ps, /Register-ArgumentCompleter -Native -CommandName 'devcluster'/);
});

test('the PowerShell syntax checker does find errors', async () => {
  const problems = await powershellSyntaxProblems('Register-ArgumentCompleter -ScriptBlock { param($a) if ($a -eq ) { ');
  assert.ok(problems.length > 0);
});
