#!/usr/bin/env node
import { packageVersion } from './version-info.ts';

// `--version` is answered before commander or any command module loads: it is
// the call scripts make most, and it must stay fast.
const args = process.argv.slice(2);
if (args.length === 1 && (args[0] === '--version' || args[0] === '-V')) {
  process.stdout.write(`${packageVersion()}\n`);
} else {
  const { runCli } = await import('./program.ts');
  process.exitCode = await runCli(process.argv);
}
