import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  commandLineIncludes,
  parsePid,
  parseProcCmdline,
  parseProcStat,
  processAlive,
  processCommandLine,
  splitPsCommand,
  splitWindowsCommandLine,
} from '../../src/host/process.ts';
import type { Exec } from '../../src/host/process.ts';

test('parsePid accepts one positive decimal number and nothing else', () => {
  assert.equal(parsePid('4242\n'), 4242);
  assert.equal(parsePid('  17  '), 17);
  for (const bad of ['', '0', '-5', '12abc', '1.5', '0x10', '99999999999', '4242\n4243', 'NaN']) assert.equal(parsePid(bad), undefined, bad);
});

test('processAlive never treats pid 0 or a negative pid (process groups) as a process', () => {
  assert.equal(processAlive(0), false);
  assert.equal(processAlive(-1), false);
  assert.equal(processAlive(1.5), false);
  assert.equal(processAlive(process.pid), true);
});

test('/proc cmdline: NUL separated, trailing NUL dropped, empty arguments kept', () => {
  assert.deepEqual(parseProcCmdline('qemu-system-x86_64\0-pidfile\0/h/p/qemu.pid\0\0-S\0'), ['qemu-system-x86_64', '-pidfile', '/h/p/qemu.pid', '', '-S']);
  assert.deepEqual(parseProcCmdline(''), []);
});

test('Windows command lines split as CommandLineToArgvW does', () => {
  assert.deepEqual(splitWindowsCommandLine('"C:\\Program Files\\qemu\\qemu-system-x86_64.exe" -pidfile "C:\\Users\\A B\\.devcluster\\profiles\\dev\\qemu.pid" -S'), [
    'C:\\Program Files\\qemu\\qemu-system-x86_64.exe',
    '-pidfile',
    'C:\\Users\\A B\\.devcluster\\profiles\\dev\\qemu.pid',
    '-S',
  ]);
  // 2n backslashes + quote: n backslashes, quote toggles; 2n+1: n backslashes and a literal quote.
  assert.deepEqual(splitWindowsCommandLine('a\\\\"b c" d\\"e f\\\\g'), ['a\\b c', 'd"e', 'f\\\\g']);
  assert.deepEqual(splitWindowsCommandLine('  x\t"y ""z"""  '), ['x', 'y "z"']);
  assert.deepEqual(splitWindowsCommandLine(''), []);
});

test('ps output splits on whitespace', () => {
  assert.deepEqual(splitPsCommand('/opt/homebrew/bin/qemu-system-aarch64 -name devcluster-dev -pidfile /Users/a/.devcluster/profiles/dev/qemu.pid\n'), [
    '/opt/homebrew/bin/qemu-system-aarch64',
    '-name',
    'devcluster-dev',
    '-pidfile',
    '/Users/a/.devcluster/profiles/dev/qemu.pid',
  ]);
});

test('/proc stat: state and start time counted after the last parenthesis', () => {
  const fields = ['S', ...Array.from({ length: 18 }, (_, i) => String(i + 4)), '987654', '0'];
  assert.deepEqual(parseProcStat(`1234 (odd) name) ${fields.join(' ')}`), { state: 'S', startTime: '987654' });
  assert.equal(parseProcStat('1234 (x) Z'), undefined);
});

test('commandLineIncludes matches whole paths and path prefixes, never a longer name', () => {
  const argv = ['qemu-system-x86_64', '-drive', 'if=virtio,file=/h/profiles/dev/disks/disk.qcow2', '-pidfile', '/h/profiles/dev/qemu.pid'];
  assert.equal(commandLineIncludes(argv, '/h/profiles/dev'), true);
  assert.equal(commandLineIncludes(argv, '/h/profiles/dev/qemu.pid'), true);
  assert.equal(commandLineIncludes(argv, '/h/profiles/de'), false);
  assert.equal(commandLineIncludes(['x', '/h/profiles/dev2/qemu.pid'], '/h/profiles/dev'), false);
  assert.equal(commandLineIncludes(['x', '/h/profiles/dev/qemu.pid.old'], '/h/profiles/dev/qemu.pid'), false);
  assert.equal(commandLineIncludes(['dnsmasq', '--pid-file=/h/n/dnsmasq.pid'], '/h/n/dnsmasq.pid'), true);
  assert.equal(commandLineIncludes(argv, ''), false);
  assert.equal(commandLineIncludes(['x', 'C:\\h\\profiles\\dev\\qemu.pid'], 'C:\\h\\profiles\\dev'), true);
});

test('Windows: the command line comes from Win32_Process through PowerShell, read between the markers', async () => {
  const calls: Array<{ command: string; args: readonly string[] }> = [];
  const exec: Exec = async (command, args) => {
    calls.push({ command, args });
    const stdout = 'banner\r\n<<<DEVCLUSTER-JSON\r\n"\\"C:\\\\Program Files\\\\qemu\\\\qemu-system-x86_64.exe\\" -pidfile C:\\\\h\\\\qemu.pid"\r\nDEVCLUSTER-JSON>>>\r\n';
    return { command, args, stdout, stderr: '', exitCode: 0, durationMs: 1 };
  };
  const argv = await processCommandLine(4242, { platform: 'win32', exec });
  assert.deepEqual(argv, ['C:\\Program Files\\qemu\\qemu-system-x86_64.exe', '-pidfile', 'C:\\h\\qemu.pid']);
  assert.equal(calls[0]?.command, 'powershell.exe');
  const encoded = calls[0]?.args.at(-1) ?? '';
  assert.match(Buffer.from(encoded, 'base64').toString('utf16le'), /Get-CimInstance -ClassName Win32_Process -Filter 'ProcessId=4242'/);
  const gone: Exec = async (command, args) => ({ command, args, stdout: '<<<DEVCLUSTER-JSON\nnull\nDEVCLUSTER-JSON>>>\n', stderr: '', exitCode: 0, durationMs: 1 });
  assert.equal(await processCommandLine(4242, { platform: 'win32', exec: gone }), undefined);
});
