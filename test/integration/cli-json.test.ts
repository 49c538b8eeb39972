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

type Doc = Record<string, unknown>;

/**
 * Every command with --output, run on an empty home: its arguments, the exit
 * code it must give, and what its one JSON document must hold. A command
 * added to the tree without a row here fails the test.
 */
const EXPECTED: Record<string, { args?: string[]; code: number | 'summary'; check(doc: Doc): void }> = {
  start: { args: ['--offline'], code: 43, check: (d) => assert.equal((d['error'] as Doc)['id'], 'KUBE_DOWNLOAD_OFFLINE') },
  stop: { code: 15, check: (d) => assert.deepEqual([(d['error'] as Doc)['id'], (d['error'] as Doc)['exitCode']], ['PROFILE_NOT_FOUND', 15]) },
  delete: { code: 15, check: (d) => assert.equal((d['error'] as Doc)['id'], 'PROFILE_NOT_FOUND') },
  ip: { code: 15, check: (d) => assert.equal((d['error'] as Doc)['id'], 'PROFILE_NOT_FOUND') },
  'update-context': { code: 15, check: (d) => assert.equal((d['error'] as Doc)['id'], 'PROFILE_NOT_FOUND') },
  status: {
    code: 7,
    check: (d) => {
      assert.deepEqual([d['name'], d['host'], d['guest'], d['exitCode'], d['problem']], ['devcluster', 'Nonexistent', 'Nonexistent', 7, null]);
    },
  },
  version: { code: 0, check: (d) => assert.match(String(d['devcluster']), /^\d+\.\d+\.\d+/) },
  'config get': { args: ['memory'], code: 0, check: (d) => assert.deepEqual([d['key'], d['value'], d['source']], ['memory', 4096, 'default']) },
  'config view': {
    code: 0,
    check: (d) => {
      const settings = d['settings'] as Array<{ key: string; source: string }>;
      assert.ok(settings.some((s) => s.key === 'qemu-network' && s.source === 'default'), 'driver settings are listed');
      assert.equal(d['profile'], 'devcluster');
    },
  },
  'profile list': { code: 0, check: (d) => assert.deepEqual(d['profiles'], []) },
  // The doctor's exit code is its first failing check's, which depends on the host: it must match its own summary.
  doctor: {
    code: 'summary',
    check: (d) => {
      assert.equal(d['schemaVersion'], 1);
      assert.deepEqual(d['driver'], { name: 'qemu', source: 'auto' });
      assert.ok(Array.isArray(d['checks']) && (d['checks'] as unknown[]).length > 5);
    },
  },
  'image list': { code: 0, check: (d) => assert.deepEqual(d['images'], []) },
  'image pull': { args: ['debian-12', '--offline'], code: 14, check: (d) => assert.equal((d['error'] as Doc)['id'], 'IMAGE_NOT_BUILT') },
  'bundle list': { code: 0, check: (d) => assert.deepEqual([d['bundles'], d['leftovers'], String(d['cache']).endsWith('kubernetes')], [[], [], true]) },
  'bundle rm': { args: ['v1.37.2'], code: 2, check: (d) => assert.equal((d['error'] as Doc)['id'], 'KUBE_BUNDLE_NOT_CACHED') },
};

test('every command with --output json prints exactly one JSON document with the documented fields and exit code', async () => {
  const home = await tempDir();
  const commands = commandsWithOutput();
  assert.deepEqual(commands.map((c) => c.join(' ')).sort(), Object.keys(EXPECTED).sort(), 'every command with --output has an expectation');
  for (const path of commands) {
    const key = path.join(' ');
    const want = EXPECTED[key];
    assert.ok(want !== undefined, key);
    const r = await runCli([...path, ...(want.args ?? []), '--output', 'json'], { home, env: { DEVCLUSTER_DOCTOR_MUTED: undefined } });
    assert.ok(r.stdout.trim().startsWith('{'), `${key}: stdout is not JSON: ${r.stdout.slice(0, 200)}`);
    const doc = JSON.parse(r.stdout) as Doc;
    const code = want.code === 'summary' ? (doc['summary'] as Doc)['exitCode'] : want.code;
    assert.equal(r.code, code, `${key}: exit code (${r.stderr.slice(0, 300)})`);
    want.check(doc);
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
