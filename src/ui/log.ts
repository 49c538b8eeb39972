import { appendFileSync, mkdirSync, openSync, closeSync, readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { redact } from './redact.ts';

/**
 * One log file per command run under $DEVCLUSTER_HOME/logs. Lines are kept in
 * memory until the command does something worth keeping (an external command,
 * a runtime failure, or a command that declared it persists its log), so a
 * rejected input leaves $DEVCLUSTER_HOME untouched.
 */
export class CommandLog {
  private readonly buffer: string[] = [];
  private file: string | undefined;
  private readonly dir: string;
  private readonly name: string;
  readonly startedAt = new Date();

  constructor(logsDir: string, command: string) {
    this.dir = logsDir;
    const stamp = this.startedAt.toISOString().replace(/[-:]/g, '').replace(/\..*$/, '').replace('T', '-');
    this.name = `${stamp}-${command.replace(/[^a-z0-9-]+/gi, '_')}-${process.pid}.log`;
  }

  get path(): string | undefined {
    return this.file;
  }

  /** The path the log will have once persisted (for messages printed early). */
  get intendedPath(): string {
    return join(this.dir, this.name);
  }

  write(level: 'debug' | 'info' | 'warn' | 'error' | 'exec', message: string): void {
    const line = `${new Date().toISOString()} ${level.padEnd(5)} ${redact(message)}\n`;
    if (this.file === undefined) {
      this.buffer.push(line);
      return;
    }
    try {
      appendFileSync(this.file, line, { mode: 0o600 });
    } catch {
      // A log that cannot be written must not fail the command it describes.
    }
  }

  /** Creates the file and flushes what was buffered. Idempotent. */
  persist(): string | undefined {
    if (this.file !== undefined) return this.file;
    try {
      mkdirSync(this.dir, { recursive: true, mode: 0o700 });
      const path = join(this.dir, this.name);
      closeSync(openSync(path, 'a', 0o600));
      this.file = path;
      appendFileSync(path, this.buffer.join(''));
      this.buffer.length = 0;
      pruneOldLogs(this.dir, KEEP_LOGS);
      return path;
    } catch {
      return undefined;
    }
  }
}

const KEEP_LOGS = 100;

function pruneOldLogs(dir: string, keep: number): void {
  const files = readdirSync(dir).filter((f) => f.endsWith('.log')).sort();
  for (const f of files.slice(0, Math.max(0, files.length - keep))) rmSync(join(dir, f), { force: true });
}
