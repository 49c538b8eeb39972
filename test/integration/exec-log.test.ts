import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { run } from '../../src/host/exec.ts';
import { CommandLog } from '../../src/ui/log.ts';
import { setCommandLog } from '../../src/ui/context.ts';
import { DevclusterError } from '../../src/ui/errors.ts';
import { tempDir } from '../helpers/cli.ts';

function failsWith(id: string) {
  return (e: unknown) => e instanceof DevclusterError && e.id === id;
}

test('runs argument arrays without a shell', async () => {
  const r = await run('printf', ['%s|', 'a b', '$HOME', ';echo hi']);
  assert.equal(r.stdout, 'a b|$HOME|;echo hi|');
  assert.equal(r.exitCode, 0);
});

test('typed failures: not found, non-zero exit with stderr tail, timeout, cancellation', async () => {
  await assert.rejects(run('devcluster-no-such-program', []), failsWith('HOST_COMMAND_NOT_FOUND'));
  await assert.rejects(run('sh', ['-c', 'echo first >&2; echo last words >&2; exit 7']), (e: unknown) => {
    assert.ok(e instanceof DevclusterError);
    assert.equal(e.id, 'HOST_COMMAND_FAILED');
    assert.match(e.message, /exited with code 7: last words/);
    assert.equal(e.details['exitCode'], 7);
    assert.match(String(e.details['stderrTail']), /first\nlast words/);
    return true;
  });
  await assert.rejects(run('sleep', ['10'], { timeoutMs: 200 }), failsWith('HOST_COMMAND_TIMEOUT'));
  const controller = new AbortController();
  setTimeout(() => controller.abort(), 100);
  await assert.rejects(run('sleep', ['10'], { signal: controller.signal }), failsWith('INTERRUPTED'));
  const ok = await run('sh', ['-c', 'exit 3'], { okExitCodes: [3] });
  assert.equal(ok.exitCode, 3);
});

test('parse mode forces the C locale', async () => {
  const r = await run('sh', ['-c', 'echo "$LANG $LC_ALL"'], { parse: true, env: { LANG: 'de_DE.UTF-8' } });
  assert.equal(r.stdout.trim(), 'C C');
});

test('every external command is logged with exit code and timing, secrets redacted', async () => {
  const dir = await tempDir();
  const log = new CommandLog(join(dir, 'logs'), 'test');
  setCommandLog(log);
  try {
    await run('echo', ['--token', 'abcdef.0123456789abcdef', 'http://u:pw123@proxy:3128'], { secrets: [] });
    await run('sh', ['-c', 'exit 4'], { okExitCodes: [4] });
  } finally {
    setCommandLog(undefined);
  }
  assert.ok(log.path !== undefined, 'running a command persists the log');
  const text = await readFile(log.path, 'utf8');
  assert.match(text, /\$ echo --token '\*{8}'/);
  assert.doesNotMatch(text, /pw123|0123456789abcdef/);
  assert.match(text, /exit=0 \d+ms/);
  assert.match(text, /exit=4 \d+ms/);
});

test('a log that saw no external command is never written', async () => {
  const dir = await tempDir();
  const log = new CommandLog(join(dir, 'logs'), 'quiet');
  log.write('info', 'validation only');
  assert.equal(log.path, undefined);
  await assert.rejects(readFile(log.intendedPath), { code: 'ENOENT' });
});
