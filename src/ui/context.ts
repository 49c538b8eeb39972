import type { CommandLog } from './log.ts';

/**
 * The running command's log. Set once by cli/main.ts; modules that log (the
 * exec layer above all) read it here rather than having it threaded through
 * every call.
 */
let current: CommandLog | undefined;

export function setCommandLog(log: CommandLog | undefined): void {
  current = log;
}

export function commandLog(): CommandLog | undefined {
  return current;
}

export function logLine(level: 'debug' | 'info' | 'warn' | 'error' | 'exec', message: string): void {
  current?.write(level, message);
}
