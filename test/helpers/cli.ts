import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { rmSync } from 'node:fs';
import { mkdtemp, readdir, readFile, lstat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';

export const REPO = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
export const CLI = join(REPO, 'src', 'cli', 'main.ts');

export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

export interface CliOptions {
  home?: string;
  env?: Record<string, string | undefined>;
  input?: string;
  cwd?: string;
}

/** Runs the real CLI in a child process, as a user would. */
export function runCli(args: readonly string[], options: CliOptions = {}): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const env: Record<string, string | undefined> = { ...process.env, NO_COLOR: '1', ...options.env };
    if (options.home !== undefined) env['DEVCLUSTER_HOME'] = options.home;
    for (const [k, v] of Object.entries(env)) if (v === undefined) delete env[k];
    const child = spawn(process.execPath, [CLI, ...args], { env: env as NodeJS.ProcessEnv, cwd: options.cwd ?? REPO, stdio: ['pipe', 'pipe', 'pipe'] });
    childResult(child).then(resolve, reject);
    child.stdin.end(options.input ?? '');
  });
}

/** The exit code (-1 when killed by a signal) and the whole output of a child whose stdout and stderr are pipes. */
export function childResult(child: ChildProcess): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    let stdout = '';
    let stderr = '';
    child.stdout?.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr?.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code: code ?? -1, stdout, stderr }));
  });
}

const madeDirs: string[] = [];

/**
 * A fresh directory under the system's temp dir, removed when the test file's
 * process exits (each file runs in its own), so runs do not pile up in /tmp.
 * DEVCLUSTER_KEEP_TEST_DIRS=1 keeps them to look at after a failure.
 */
export async function tempDir(prefix = 'devcluster-test-'): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), prefix));
  if (madeDirs.length === 0 && process.env['DEVCLUSTER_KEEP_TEST_DIRS'] === undefined) {
    process.once('exit', () => {
      for (const d of madeDirs) {
        // A directory a test left unreadable stays behind rather than failing the run at exit.
        try {
          rmSync(d, { recursive: true, force: true, maxRetries: 2 });
        } catch {
          process.stderr.write(`could not remove the test directory ${d}\n`);
        }
      }
    });
  }
  madeDirs.push(dir);
  return dir;
}

/**
 * Every path under a directory with its type, mode and content hash: two
 * equal snapshots mean the tree is byte-for-byte unchanged.
 */
export async function snapshotTree(root: string): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  const walk = async (dir: string): Promise<void> => {
    let entries;
    try {
      entries = await readdir(dir, { withFileTypes: true });
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return;
      throw e;
    }
    for (const e of entries) {
      const p = join(dir, e.name);
      const st = await lstat(p);
      const rel = p.slice(root.length);
      if (e.isDirectory()) {
        out[rel] = `dir ${st.mode.toString(8)}`;
        await walk(p);
      } else {
        out[rel] = `file ${st.mode.toString(8)} ${createHash('sha256').update(await readFile(p)).digest('hex')}`;
      }
    }
  };
  const st = await lstat(root).catch(() => undefined);
  out['.'] = st === undefined ? 'absent' : `dir ${st.mode.toString(8)}`;
  await walk(root);
  return out;
}
