import { test } from 'node:test';
import assert from 'node:assert/strict';
import { buildProgram } from '../../src/cli/program.ts';
import type { Command } from 'commander';
import { runCli, tempDir } from '../helpers/cli.ts';

const ESC = String.fromCharCode(27);

/** Every command that declares -o/--output, found from the command tree itself. */
function commandsWithOutput(): string[][] {
  const found: string[][] = [];
  const walk = (cmd: Command, path: string[]) => {
    if (cmd.options.some((o) => o.long === '--output')) found.push(path);
    for (const sub of cmd.commands) walk(sub, [...path, sub.name()]);
  };
  walk(buildProgram(), []);
  return found;
}

/** Arguments that make each reporting command succeed on an empty home. */
const ARGS: Record<string, string[]> = {
  'config get': ['memory'],
  'image pull': ['debian-12', '--offline'],
};

test('every command with --output json prints exactly one JSON document on stdout', async () => {
  const home = await tempDir();
  const commands = commandsWithOutput();
  assert.ok(commands.length >= 4, `found ${commands.map((c) => c.join(' ')).join(', ')}`);
  for (const path of commands) {
    const key = path.join(' ');
    const r = await runCli([...path, ...(ARGS[key] ?? []), '--output', 'json'], { home });
    assert.ok(r.stdout.trim().startsWith('{'), `${key}: stdout is not JSON: ${r.stdout.slice(0, 200)}`);
    assert.doesNotThrow(() => JSON.parse(r.stdout), `${key}: ${r.stdout.slice(0, 200)}`);
  }
});

test('failures in JSON mode are a JSON error document with the ID', async () => {
  const r = await runCli(['config', 'get', 'nokey', '-o', 'json'], { home: await tempDir() });
  assert.equal(r.code, 2);
  const doc = JSON.parse(r.stdout) as { error: { id: string; exitCode: number } };
  assert.equal(doc.error.id, 'CONFIG_UNKNOWN_KEY');
  assert.equal(doc.error.exitCode, 2);
});

test('version -o json reports devcluster, node and platform', async () => {
  const doc = JSON.parse((await runCli(['version', '-o', 'json'], { home: await tempDir() })).stdout) as Record<string, string>;
  assert.match(doc['devcluster'] ?? '', /^\d+\.\d+\.\d+/);
  assert.equal(doc['node'], process.version);
  assert.equal(doc['platform'], process.platform);
});

test('text output has no colour codes with NO_COLOR and ASCII symbols with DEVCLUSTER_ASCII', async () => {
  const home = await tempDir();
  const r = await runCli(['config', 'set', 'cpus', '1'], { home, env: { FORCE_COLOR: '1', NO_COLOR: '1' } });
  assert.ok(!r.stdout.includes(`${ESC}[`), 'no escape sequences');
  assert.match(r.stdout, /✓ cpus = 1/);
  const ascii = await runCli(['config', 'set', 'cpus', '1'], { home, env: { DEVCLUSTER_ASCII: '1' } });
  assert.match(ascii.stdout, /^OK cpus = 1/);
  const colour = await runCli(['config', 'set', 'cpus', '1'], { home, env: { FORCE_COLOR: '1', NO_COLOR: undefined } });
  assert.ok(colour.stdout.includes(`${ESC}[32m`), 'green with FORCE_COLOR');
});

test('help lists commands in groups, and every command has examples', async () => {
  const home = await tempDir();
  const root = await runCli(['--help'], { home });
  assert.match(root.stdout, /Configuration and Management Commands:\n\s+config/);
  const walk = (cmd: Command, path: string[]): string[][] => [path, ...cmd.commands.flatMap((c) => walk(c, [...path, c.name()]))];
  for (const path of walk(buildProgram(), []).filter((p) => p.length > 0)) {
    const r = await runCli([...path, '--help'], { home });
    assert.equal(r.code, 0, path.join(' '));
    assert.match(r.stdout, /Examples:\n\s+\$ .*devcluster/, `${path.join(' ')} --help has examples`);
  }
});
