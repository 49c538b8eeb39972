import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Command } from 'commander';
import { buildProgram } from '../../src/cli/program.ts';
import { CLI, runCli, tempDir } from '../helpers/cli.ts';
import type { CliResult } from '../helpers/cli.ts';

/**
 * `devcluster … | head -1`: the reader goes away and the next write fails
 * with EPIPE. Every command must then end as a Unix tool does: exit 0 or 141
 * (SIGPIPE), no stack trace, nothing about the pipe on stderr.
 */

/**
 * How each command runs here without a VM, root or the network (failures
 * such as PROFILE_NOT_FOUND are fine: their output goes through the same
 * writer). A command missing from this table fails the test, so a new
 * command is not left out.
 */
const RUNS: Record<string, string[][]> = {
  '': [['--help'], ['--version']],
  start: [['start', '--no-kubernetes', '--cpus', '999', '-p', 'piped']],
  stop: [['stop', '-p', 'nope']],
  delete: [['delete', '-p', 'nope']],
  status: [['status', '-p', 'nope']],
  ip: [['ip', '-p', 'nope']],
  'update-context': [['update-context', '-p', 'nope']],
  ssh: [['ssh', '-p', 'nope']],
  kubectl: [['kubectl', '-p', 'nope', '--', 'get', 'nodes']],
  logs: [['logs']],
  version: [['version']],
  config: [['config']],
  'config get': [['config', 'get', 'memory']],
  'config set': [['config', 'set', 'cpus', '1']],
  'config unset': [['config', 'unset', 'cpus']],
  'config view': [['config', 'view'], ['config', 'view', '-p', 'dev']],
  profile: [['profile']],
  'profile list': [['profile', 'list']],
  completion: [['completion', 'bash'], ['completion', 'zsh'], ['completion', 'powershell']],
  doctor: [['doctor'], ['doctor', '--list']],
  image: [['image']],
  'image list': [['image', 'list']],
  'image pull': [['image', 'pull', 'debian-12', '--offline']],
  'image rm': [['image', 'rm', 'nope']],
  'image prune': [['image', 'prune', '--dry-run']],
  // A real build needs root and the network: its usage error is what runs here.
  'image build': [['image', 'build', 'no-such-recipe']],
  'image import': [['image', 'import', '/nonexistent/manifest.json']],
  bundle: [['bundle']],
  'bundle list': [['bundle', 'list']],
  'bundle import': [['bundle', 'import', '/nonexistent/bundle.tgz']],
  'bundle rm': [['bundle', 'rm', 'v1.37.2']],
  // A real build takes minutes and Go: its refusal of an unsupported version is what runs here.
  'bundle build': [['bundle', 'build', '--kubernetes-version', 'v1.0.0']],
};

interface Invocation {
  args: string[];
}

function commandTree(): Array<{ path: string[]; json: boolean }> {
  const out: Array<{ path: string[]; json: boolean }> = [];
  const walk = (cmd: Command, path: string[]) => {
    out.push({ path, json: cmd.options.some((o) => o.long === '--output') });
    for (const sub of cmd.commands) walk(sub, [...path, sub.name()]);
  };
  walk(buildProgram(), []);
  return out;
}

function invocations(): Invocation[] {
  const list: Invocation[] = [];
  for (const { path, json } of commandTree()) {
    const key = path.join(' ');
    const runs = RUNS[key];
    assert.ok(runs !== undefined, `no run for "devcluster ${key}" in RUNS: add one`);
    list.push({ args: [...path, '--help'] });
    for (const args of runs) {
      list.push({ args });
      if (json) list.push({ args: [...args, '-o', 'json'] });
    }
  }
  return list;
}

function childEnv(home: string): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env, NO_COLOR: '1', DEVCLUSTER_HOME: home };
  return env;
}

function collect(child: ReturnType<typeof spawn>): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    let stderr = '';
    child.stderr?.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    child.on('error', reject);
    child.on('close', (code, signal) => resolve({ code: code ?? (signal === 'SIGPIPE' ? 141 : -1), stdout: '', stderr }));
  });
}

/**
 * The reader is gone before devcluster starts: a shell waits for a line on
 * stdin, which is sent only after the read end of stdout has been closed, and
 * then execs node. The first write to stdout fails with EPIPE for certain.
 */
async function runWithClosedStdout(args: readonly string[], home: string, cwd: string): Promise<CliResult> {
  const child = spawn('sh', ['-c', 'read -r _go && exec "$@"', 'sh', process.execPath, CLI, ...args], { env: childEnv(home), cwd, stdio: ['pipe', 'pipe', 'pipe'] });
  const done = collect(child);
  child.stdout.destroy();
  child.stdin.end('go\n');
  return done;
}

/** `| head -1`: read up to the first newline, then close the pipe. */
async function runIntoHeadOne(args: readonly string[], home: string, cwd: string): Promise<CliResult & { firstLine: string }> {
  const child = spawn(process.execPath, [CLI, ...args], { env: childEnv(home), cwd, stdio: ['ignore', 'pipe', 'pipe'] });
  const done = collect(child);
  let seen = '';
  let firstLine = '';
  child.stdout.setEncoding('utf8').on('data', (d: string) => {
    seen += d;
    const nl = seen.indexOf('\n');
    if (nl >= 0 && firstLine === '') {
      firstLine = seen.slice(0, nl);
      child.stdout.destroy();
    }
  });
  const r = await done;
  return { ...r, firstLine };
}

const NOISE = [/EPIPE/, /broken pipe/i, /^\s+at .+[:(]/m, /INTERNAL_ERROR/, /Error \[ERR_/];

function assertQuiet(label: string, r: CliResult): void {
  for (const re of NOISE) assert.doesNotMatch(r.stderr, re, `${label}: stderr mentions the pipe or has a stack:\n${r.stderr}`);
}

let cwd: string;

before(async () => {
  cwd = await tempDir();
});

/**
 * A home of its own for each invocation: run side by side in one home,
 * `config set` and `config unset` meet on the config lock and one exits
 * PROFILE_BUSY instead of doing what is tested here.
 */
async function homeWithDevProfile(): Promise<string> {
  const home = await tempDir();
  await mkdir(join(home, 'profiles', 'dev'), { recursive: true });
  await writeFile(join(home, 'profiles', 'dev', 'config.json'), '{\n  "cpus": 1\n}\n');
  return home;
}

/** Runs `work` over `items`, a few at a time (each item is a node start-up, mostly CPU). */
async function inPool<T>(items: readonly T[], width: number, work: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < items.length) {
      const item = items[next] as T;
      next += 1;
      await work(item);
    }
  };
  await Promise.all(Array.from({ length: width }, worker));
}

test('every command exits quietly (0 or 141) when its stdout reader is already gone', async () => {
  const runs = invocations();
  assert.ok(runs.length > 40, `only ${runs.length} invocations`);
  let broke = 0;
  await inPool(runs, 3, async ({ args }) => {
    const label = `devcluster ${args.join(' ')}`;
    const home = await homeWithDevProfile();
    // Help always writes to stdout; other commands may write only to stderr.
    const open = args.includes('--help') ? undefined : await runCli(args, { home, cwd });
    const closed = await runWithClosedStdout(args, home, cwd);
    assertQuiet(label, closed);
    if (open !== undefined && open.stdout === '') {
      // Nothing goes to stdout, so nothing can break: the command behaves as usual.
      assert.equal(closed.code, open.code, `${label}: exit ${closed.code}, ${open.code} with stdout open\n${closed.stderr}`);
    } else {
      broke += 1;
      assert.equal(closed.code, 141, `${label}: exit ${closed.code}, expected 141 (SIGPIPE)\n${closed.stderr}`);
    }
  });
  assert.ok(broke > 30, `only ${broke} invocations wrote to stdout`);
});

test('profile list into `head -1`: the first line arrives, the rest ends in a quiet exit 141', async () => {
  // The reader takes at most 64 KiB before it closes and the pipe holds
  // 64 KiB more (Linux): output beyond that is written after the close.
  const big = await tempDir();
  for (let i = 0; i < 2500; i++) {
    const dir = join(big, 'profiles', `p${String(i).padStart(4, '0')}`);
    await mkdir(dir, { recursive: true });
    await writeFile(join(dir, 'config.json'), '{\n  "cpus": 1\n}\n');
  }
  for (const args of [['profile', 'list'], ['profile', 'list', '-o', 'json']]) {
    const full = await runCli(args, { home: big, cwd });
    assert.equal(full.code, 0, full.stderr);
    assert.ok(full.stdout.length > 160 * 1024, `${args.join(' ')}: only ${full.stdout.length} bytes`);
    const r = await runIntoHeadOne(args, big, cwd);
    assert.equal(r.firstLine, full.stdout.slice(0, full.stdout.indexOf('\n')));
    assertQuiet(args.join(' '), r);
    assert.equal(r.code, 141, `${args.join(' ')}: exit ${r.code}\n${r.stderr}`);
  }
});
