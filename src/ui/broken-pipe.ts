/**
 * `devcluster doctor | head -1`: the reader exits after one line and the next
 * write fails with EPIPE. A C tool is killed by SIGPIPE without a word; Node
 * ignores SIGPIPE and raises the failure as a stream 'error' event, which
 * crashes the process with a stack trace unless something listens for it.
 */

/** What a shell reports for a tool killed by SIGPIPE (128 + 13). */
export const BROKEN_PIPE_EXIT_CODE = 141;

interface Watchable {
  on(event: 'error', listener: (e: Error) => void): unknown;
}

let closed = false;
const subscribers: Array<() => void> = [];

/** True once stdout or stderr lost its reader; output written since then went nowhere. */
export function outputClosed(): boolean {
  return closed;
}

/** Runs `fn` once when the output is closed (at once when it already is). */
export function onOutputClosed(fn: () => void): void {
  if (closed) fn();
  else subscribers.push(fn);
}

/**
 * Listens for EPIPE on the given streams. The first one marks the output
 * closed and sets the SIGPIPE exit status; later writes fail the same way and
 * are ignored. Any other stream error is rethrown, as it would be unhandled.
 */
export function watchOutputStreams(streams: readonly Watchable[] = [process.stdout, process.stderr]): void {
  for (const stream of streams) {
    stream.on('error', (e: Error) => {
      const code = (e as NodeJS.ErrnoException).code;
      if (code !== 'EPIPE' && !(closed && code === 'ERR_STREAM_DESTROYED')) throw e;
      if (closed) return;
      closed = true;
      process.exitCode = BROKEN_PIPE_EXIT_CODE;
      for (const fn of subscribers.splice(0)) fn();
    });
  }
}
