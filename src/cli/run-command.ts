import type { Command } from 'commander';
import { CommandLog } from '../ui/log.ts';
import { setCommandLog } from '../ui/context.ts';
import { DevclusterError, isDevclusterError } from '../ui/errors.ts';
import { Output, parseOutputFormat } from '../ui/output.ts';
import type { OutputFormat } from '../ui/output.ts';
import { renderError } from '../ui/render-error.ts';
import { BROKEN_PIPE_EXIT_CODE, onOutputClosed, outputClosed } from '../ui/broken-pipe.ts';
import { checkHome, devclusterHome, homePaths } from '../profile/paths.ts';
import { permissionError } from '../profile/atomic.ts';

export interface CommandContext {
  readonly command: string;
  readonly home: string;
  readonly out: Output;
  readonly log: CommandLog;
  readonly verbose: boolean;
  /** -p/--profile as typed; undefined when not given. */
  readonly profileFlag: string | undefined;
  readonly waitLock: boolean;
  readonly env: NodeJS.ProcessEnv;
  readonly signal: AbortSignal;
}

export interface ActionOptions {
  /** Output formats the command supports; adds nothing by itself (the command declares -o). */
  formats?: readonly OutputFormat[];
  /**
   * Lifecycle commands keep their log even when they run no external command
   * (decided from the command's options: `delete --purge` keeps none).
   */
  persistLog?: boolean | ((options: Record<string, unknown>) => boolean);
  /**
   * start, stop and delete: failures go through the known-issue table, which
   * adds advice, docs and related issues, and the doctor hint.
   */
  lifecycle?: boolean;
  /**
   * False for commands that never read or write $DEVCLUSTER_HOME (version,
   * completion): they work whatever state the home is in.
   */
  usesHome?: boolean;
}

export type Handler = (ctx: CommandContext, args: string[], options: Record<string, unknown>) => Promise<number | void>;

const interrupt = new AbortController();

export function interruptSignal(): AbortSignal {
  return interrupt.signal;
}

export function installSignalHandlers(): void {
  let count = 0;
  const onSignal = (sig: NodeJS.Signals) => {
    count += 1;
    if (count > 1) process.exit(130);
    interrupt.abort(new DevclusterError('INTERRUPTED', `interrupted by ${sig}`));
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  // Nobody reads the output any more: stop the command as a SIGPIPE would,
  // but through the signal, so locks are released and state stays consistent.
  onOutputClosed(() => interrupt.abort(new DevclusterError('INTERRUPTED', 'the reader of the output went away (broken pipe)')));
}

let lastExitCode = 0;

export function takeExitCode(): number {
  return lastExitCode;
}

function commandPath(cmd: Command): string {
  const names: string[] = [];
  for (let c: Command | null = cmd; c !== null && c.parent !== null; c = c.parent) names.unshift(c.name());
  return names.join(' ');
}

/**
 * Wraps a command's handler: builds its context, keeps the per-run log, and
 * turns any failure into the standard error block and exit code.
 */
export function action(handler: Handler, options: ActionOptions = {}) {
  return async (...raw: unknown[]): Promise<void> => {
    const cmd = raw[raw.length - 1] as Command;
    const opts = cmd.optsWithGlobals() as Record<string, unknown>;
    const args = (raw.slice(0, -2) as Array<string | string[] | undefined>).flatMap((a) => (a === undefined ? [] : a));
    const name = commandPath(cmd);
    const home = devclusterHome();
    const log = new CommandLog(homePaths(home).logs, name.replace(/ /g, '-'));
    setCommandLog(log);
    log.write('info', `devcluster ${process.argv.slice(2).join(' ')} (pid ${process.pid}, node ${process.version}, ${process.platform}/${process.arch})`);
    let out = new Output({ verbose: opts['verbose'] === true });
    try {
      if (opts['output'] !== undefined || options.formats !== undefined) {
        out = new Output({ format: parseOutputFormat(opts['output'] as string | undefined, options.formats), verbose: opts['verbose'] === true });
      }
      if (options.usesHome !== false) checkHome(home);
      const ctx: CommandContext = {
        command: name,
        home,
        out,
        log,
        verbose: opts['verbose'] === true,
        profileFlag: opts['profile'] as string | undefined,
        waitLock: opts['waitLock'] === true,
        env: process.env,
        signal: interrupt.signal,
      };
      const code = await handler(ctx, args, opts);
      if (options.persistLog === true || (typeof options.persistLog === 'function' && options.persistLog(opts))) log.persist();
      lastExitCode = code ?? 0;
      log.write('info', `exit ${lastExitCode}`);
    } catch (e) {
      // Ctrl-C surfaces as whatever the interrupted call threw (an AbortError).
      const reason: unknown = interrupt.signal.aborted ? interrupt.signal.reason : undefined;
      const error = isDevclusterError(e)
        ? e
        : isDevclusterError(reason)
          ? reason
        : permissionError(e) ?? new DevclusterError('INTERNAL_ERROR', e instanceof Error ? e.message : String(e), {
            advice: 'This is a bug in devcluster. Please report it with the log file.',
            cause: e,
          });
      log.write('error', `${error.id}: ${error.message}`);
      if (!error.input) {
        if (e instanceof Error && e.stack !== undefined) log.write('debug', e.stack);
        log.persist();
      }
      if (outputClosed()) {
        // The reader left: an error block would go nowhere or, on a still-open
        // stderr, report a pipe the user closed on purpose.
        lastExitCode = BROKEN_PIPE_EXIT_CODE;
        return;
      }
      if (out.verbose && e instanceof Error && e.stack !== undefined) out.error(e.stack);
      if (options.lifecycle === true && !error.input) {
        const { renderLifecycleFailure } = await import('../doctor/reasons.ts');
        lastExitCode = renderLifecycleFailure(out, error, log.path);
      } else {
        renderError(out, error, { logPath: log.path });
        lastExitCode = error.exitCode;
      }
    } finally {
      setCommandLog(undefined);
    }
  };
}
