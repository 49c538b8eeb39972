import type { DevclusterError } from './errors.ts';
import type { Output } from './output.ts';

export interface RenderErrorOptions {
  logPath?: string | undefined;
}

/** The standard failure block: ID, message, advice, docs, log file. */
export function renderError(out: Output, error: DevclusterError, options: RenderErrorOptions = {}): void {
  if (out.format === 'json') {
    out.json({ error: { ...error.toJSON(), ...(options.logPath === undefined ? {} : { logFile: options.logPath }) } });
    out.error(`${error.id}: ${error.message}`);
    return;
  }
  const s = out.symbols;
  out.error(out.paint('red', `${s.fail === 'FAIL' ? 'X' : s.fail} Exiting due to ${error.id}: ${error.message}`));
  if (error.advice !== undefined && error.advice !== '') out.error(`  ${s.arrow} ${error.advice}`);
  if (error.docs !== undefined) out.error(`  Docs: ${error.docs}`);
  if (options.logPath !== undefined) out.error(`  Log file: ${options.logPath}`);
}
