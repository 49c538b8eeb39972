#!/usr/bin/env node
import { packageVersion } from './version-info.ts';
import { outputClosed, watchOutputStreams, BROKEN_PIPE_EXIT_CODE } from '../ui/broken-pipe.ts';

// Before anything prints: a reader that goes away (`| head -1`) ends the
// command quietly instead of with an EPIPE stack trace.
watchOutputStreams();

// `--version` is answered before commander or any command module loads: it is
// the call scripts make most, and it must stay fast.
const args = process.argv.slice(2);
if (args.length === 1 && (args[0] === '--version' || args[0] === '-V')) {
  process.stdout.write(`${packageVersion()}\n`);
} else {
  const { runCli } = await import('./program.ts');
  const code = await runCli(process.argv);
  process.exitCode = outputClosed() ? BROKEN_PIPE_EXIT_CODE : code;
}
