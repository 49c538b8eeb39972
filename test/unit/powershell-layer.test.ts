import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Exec } from '../../src/host/process.ts';
import {
  COMMAND_LINE_LIMIT,
  PowerShellError,
  arrayScript,
  decodePowerShell,
  encodePowerShell,
  extractFailure,
  extractJson,
  fitsCommandLine,
  powershellArgs,
  powershellExecutable,
  psString,
  runPowerShellArray,
} from '../../src/host/powershell.ts';
import { DevclusterError } from '../../src/ui/errors.ts';

test('scripts travel as base64 of UTF-16LE, non-ASCII and astral characters included', () => {
  const script = "Hyper-V\\Get-VMSwitch | Where-Object { $_.Name -eq 'Standardväxel' } # Przełącznik 🚀";
  const encoded = encodePowerShell(script);
  assert.equal(decodePowerShell(encoded), script);
  // UTF-16LE: 'H' is 48 00.
  assert.deepEqual([...Buffer.from(encoded, 'base64').subarray(0, 2)], [0x48, 0x00]);
  assert.deepEqual(powershellArgs(script).slice(0, 6), ['-NoLogo', '-NoProfile', '-NonInteractive', '-ExecutionPolicy', 'Bypass', '-EncodedCommand']);
});

test('psString doubles every quote PowerShell accepts, so a value cannot leave its literal', () => {
  assert.equal(psString("it's"), "'it''s'");
  assert.equal(psString('\u2018a\u2019b\u201Ac\u201Bd'), "'\u2018\u2018a\u2019\u2019b\u201A\u201Ac\u201B\u201Bd'");
  assert.equal(psString('$(Remove-Item x) `n "q"'), "'$(Remove-Item x) `n \"q\"'");
  assert.equal(psString(''), "''");
});

test('the result is read between the markers, whatever banners and CRLFs surround it', () => {
  const stdout = 'Windows PowerShell\r\nWARNING: profile\r\n<<<DEVCLUSTER-JSON\r\n[{"Name":"x"}]\r\nDEVCLUSTER-JSON>>>\r\ntrailing\r\n';
  assert.equal(extractJson(stdout), '[{"Name":"x"}]');
  assert.equal(extractJson('<<<DEVCLUSTER-JSON\n[]'), undefined, 'no end marker: no result');
  assert.equal(extractJson('nothing'), undefined);
  const failure = extractFailure('banner\r\n<<<DEVCLUSTER-ERROR\r\n{"fullyQualifiedErrorId":"InvalidParameter,Microsoft.HyperV.PowerShell.Commands.GetVM","exceptionType":"Microsoft.HyperV.PowerShell.VirtualizationException","category":"InvalidArgument","message":"nicht gefunden"}\r\nDEVCLUSTER-ERROR>>>\r\n');
  assert.equal(failure?.fullyQualifiedErrorId, 'InvalidParameter,Microsoft.HyperV.PowerShell.Commands.GetVM');
  assert.equal(failure?.exceptionType, 'Microsoft.HyperV.PowerShell.VirtualizationException');
});

test('arrayScript: prelude, a header for the operation, the result always as an array, a catch that reports the error record', () => {
  const s = arrayScript("    'a'", { op: 'demo' });
  assert.match(s, /^# devcluster-op: demo\n\$ErrorActionPreference = 'Stop'\n\$ProgressPreference = 'SilentlyContinue'\n/);
  assert.match(s, /\[Console\]::OutputEncoding = \[System\.Text\.UTF8Encoding\]::new\(\$false\)/);
  assert.match(s, /\$devclusterResult = @\(\n {4}'a'\n {2}\)/);
  assert.match(s, /ConvertTo-Json -Compress -Depth 5 -InputObject \$devclusterResult/);
  assert.match(s, /FullyQualifiedErrorId.*Exception\.GetType\(\)\.FullName/);
  assert.match(s, /exit 1\n\}$/);
});

test('powershell.exe: System32, or Sysnative from a 32-bit process on 64-bit Windows', () => {
  assert.equal(powershellExecutable({ SystemRoot: 'D:\\Win' }, 'win32', 'x64'), 'D:\\Win\\System32\\WindowsPowerShell\\v1.0\\powershell.exe');
  assert.equal(powershellExecutable({ SystemRoot: 'C:\\Windows', PROCESSOR_ARCHITEW6432: 'AMD64' }, 'win32', 'ia32'), 'C:\\Windows\\Sysnative\\WindowsPowerShell\\v1.0\\powershell.exe');
  assert.equal(powershellExecutable({}, 'win32', 'ia32'), 'C:\\Windows\\System32\\WindowsPowerShell\\v1.0\\powershell.exe', 'a 32-bit process on 32-bit Windows');
  assert.equal(powershellExecutable({}, 'linux', 'x64'), 'powershell.exe');
});

function fakeExec(answer: (args: readonly string[]) => { stdout: string; exitCode?: number }): Exec & { calls: Array<readonly string[]> } {
  const calls: Array<readonly string[]> = [];
  const fn = (async (command: string, args: readonly string[]) => {
    calls.push(args);
    const a = answer(args);
    return { command, args, stdout: a.stdout, stderr: '', exitCode: a.exitCode ?? 0, durationMs: 1 };
  }) as Exec & { calls: Array<readonly string[]> };
  fn.calls = calls;
  return fn;
}

test('a script too long for the command line runs from a temporary .ps1 with a UTF-8 BOM, removed afterwards', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'ps-long-'));
  try {
    const long = arrayScript(`    '${'ä'.repeat(20_000)}'`, { op: 'long' });
    assert.equal(fitsCommandLine('powershell.exe', long), false);
    assert.ok(fitsCommandLine('powershell.exe', arrayScript("    'short'")));
    let seen: Buffer | undefined;
    const exec = fakeExec((args) => {
      const file = args[args.indexOf('-File') + 1] as string;
      seen = readFileSync(file);
      return { stdout: '<<<DEVCLUSTER-JSON\n["ok"]\nDEVCLUSTER-JSON>>>\n' };
    });
    assert.deepEqual(await runPowerShellArray(long, { exec, executable: 'powershell.exe', op: 'long', tempDir: dir }), ['ok']);
    const args = exec.calls[0] ?? [];
    assert.deepEqual(args.slice(0, 6), ['-NoLogo', '-NoProfile', '-NonInteractive', '-ExecutionPolicy', 'Bypass', '-File']);
    assert.ok(!args.includes('-EncodedCommand'));
    assert.deepEqual([...(seen ?? Buffer.alloc(0)).subarray(0, 3)], [0xef, 0xbb, 0xbf]);
    assert.equal((seen ?? Buffer.alloc(0)).subarray(3).toString('utf8'), long);
    assert.deepEqual(readdirSync(dir), [], 'the temporary script is gone');
    // Also when the script fails.
    const failing = fakeExec(() => ({ stdout: '<<<DEVCLUSTER-ERROR\n{"fullyQualifiedErrorId":"X","exceptionType":"Y"}\nDEVCLUSTER-ERROR>>>\n', exitCode: 1 }));
    await assert.rejects(runPowerShellArray(long, { exec: failing, executable: 'powershell.exe', op: 'long', tempDir: dir }), PowerShellError);
    assert.deepEqual(readdirSync(dir), []);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  assert.ok(COMMAND_LINE_LIMIT === 32_767);
});

test('results: always an array (an empty pipeline, null, a bare value); failures typed by FullyQualifiedErrorId', async () => {
  const answer = (json: string) => fakeExec(() => ({ stdout: `<<<DEVCLUSTER-JSON\r\n${json}\r\nDEVCLUSTER-JSON>>>\r\n` }));
  const opts = { executable: 'powershell.exe', op: 't' };
  assert.deepEqual(await runPowerShellArray('x', { ...opts, exec: answer('[]') }), []);
  assert.deepEqual(await runPowerShellArray('x', { ...opts, exec: answer('') }), []);
  assert.deepEqual(await runPowerShellArray('x', { ...opts, exec: answer('null') }), []);
  assert.deepEqual(await runPowerShellArray('x', { ...opts, exec: answer('{"a":1}') }), [{ a: 1 }]);
  assert.deepEqual(await runPowerShellArray('x', { ...opts, exec: answer('[{"a":1},{"a":2}]') }), [{ a: 1 }, { a: 2 }]);

  const denied = fakeExec(() => ({ stdout: '<<<DEVCLUSTER-ERROR\n{"fullyQualifiedErrorId":"AccessDenied,Microsoft.HyperV.PowerShell.Commands.GetVM","exceptionType":"Microsoft.HyperV.PowerShell.VirtualizationException","message":"Zugriff verweigert"}\nDEVCLUSTER-ERROR>>>\n', exitCode: 1 }));
  const e = await runPowerShellArray('x', { ...opts, exec: denied }).catch((x: unknown) => x);
  assert.ok(e instanceof PowerShellError);
  assert.equal(e.id, 'POWERSHELL_SCRIPT_FAILED');
  assert.ok(e.idIs('AccessDenied'));
  assert.ok(!e.idIs('Access'));
  assert.equal(e.failure.exceptionType, 'Microsoft.HyperV.PowerShell.VirtualizationException');

  const silent = fakeExec(() => ({ stdout: 'no markers at all', exitCode: 0 }));
  const none = await runPowerShellArray('x', { ...opts, exec: silent }).catch((x: unknown) => x);
  assert.ok(none instanceof DevclusterError && none.id === 'HOST_COMMAND_FAILED' && /printed no result/.test(none.message));
  const crashed = fakeExec(() => ({ stdout: '<<<DEVCLUSTER-JSON\n[]\nDEVCLUSTER-JSON>>>\n', exitCode: 3 }));
  const c = await runPowerShellArray('x', { ...opts, exec: crashed }).catch((x: unknown) => x);
  assert.ok(c instanceof DevclusterError && /exited with code 3/.test(c.message));
});
