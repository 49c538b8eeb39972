import { isDevclusterError } from '../ui/errors.ts';
import type { CheckOutcome, Fix } from './types.ts';

/** Small constructors that keep the checks readable. */
export function pass(summary: string, details: string[] = []): CheckOutcome {
  return { status: 'pass', summary, details };
}

export function warn(summary: string, extra: { details?: string[]; fix?: Fix; related?: string[] } = {}): CheckOutcome {
  return { status: 'warn', summary, ...extra };
}

export function fail(summary: string, extra: { details?: string[]; fix?: Fix; related?: string[] } = {}): CheckOutcome {
  return { status: 'fail', summary, ...extra };
}

export function skip(reason: string, details: string[] = []): CheckOutcome {
  return { status: 'skip', summary: reason, details };
}

/** The most useful one-line text of a failed command or other error. */
export function errorText(e: unknown): string {
  if (isDevclusterError(e)) {
    const tailText = e.details['stderrTail'];
    const stderr = typeof tailText === 'string' ? tailText.trim().split('\n').filter((l) => l.trim() !== '').slice(-1)[0] : undefined;
    return stderr !== undefined && !e.message.includes(stderr) ? `${e.message} (${stderr})` : e.message;
  }
  return e instanceof Error ? e.message : String(e);
}

export function mib(n: number): string {
  if (n >= 1024 * 1024) return `${(n / 1024 / 1024).toFixed(1)} TiB`;
  if (n >= 1024) return `${(n / 1024).toFixed(1)} GiB`;
  return `${Math.round(n)} MiB`;
}
