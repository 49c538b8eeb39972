import { Command, CommanderError } from 'commander';
import { packageVersion } from './version-info.ts';
import { installSignalHandlers, takeExitCode } from './run-command.ts';
import { registerLifecycle } from './lifecycle.ts';
import { registerInspect } from './inspect.ts';
import { registerConfig } from './config.ts';
import { registerProfile } from './profile.ts';
import { registerVersion } from './version.ts';
import { registerCompletion } from './completion.ts';
import { registerDoctor } from './doctor.ts';
import { registerImage } from './image.ts';
import { registerBundle } from './bundle.ts';
import { registerUpdateContext } from './update-context.ts';
import { registerKubectl } from './kubectl.ts';
import { Output } from '../ui/output.ts';

/** Builds the whole command tree; command modules do their heavy imports inside their actions. */
export function buildProgram(): Command {
  const program = new Command('devcluster')
    .description('A single-node Kubernetes cluster in a local VM, in one command.')
    .version(packageVersion(), '-V, --version', 'print the devcluster version')
    .option('-p, --profile <name>', 'the profile (cluster) to act on (env DEVCLUSTER_PROFILE)')
    .option('-v, --verbose', 'show details, evidence and stack traces')
    .showSuggestionAfterError(true)
    .helpCommand(false)
    .configureHelp({ sortSubcommands: false, showGlobalOptions: true });

  registerLifecycle(program);
  registerInspect(program);
  registerKubectl(program);
  registerVersion(program);
  registerConfig(program);
  registerProfile(program);
  registerCompletion(program);
  registerDoctor(program);
  registerImage(program);
  registerBundle(program);
  registerUpdateContext(program);

  applyErrorHandling(program);
  return program;
}

/** Commander's own usage errors get our ID, exit code 2, and no stack. */
function applyErrorHandling(cmd: Command): void {
  const out = new Output();
  cmd.exitOverride();
  cmd.configureOutput({
    outputError: (str, write) => {
      const text = str.replace(/^error: /, '').trim();
      const id = /unknown command/.test(text) ? 'USAGE_UNKNOWN_COMMAND' : 'USAGE_INVALID_ARGUMENT';
      write(`${out.paint('red', `${out.symbols.fail === 'FAIL' ? 'X' : out.symbols.fail} Exiting due to ${id}: ${text}`)}\n  ${out.symbols.arrow} Run \`devcluster ${commandName(cmd)}--help\` for usage.\n`);
    },
  });
  for (const sub of cmd.commands) applyErrorHandling(sub);
}

function commandName(cmd: Command): string {
  const names: string[] = [];
  for (let c: Command | null = cmd; c !== null && c.parent !== null; c = c.parent) names.unshift(c.name());
  return names.length === 0 ? '' : `${names.join(' ')} `;
}

export async function runCli(argv: readonly string[]): Promise<number> {
  installSignalHandlers();
  const program = buildProgram();
  if (argv.length <= 2) {
    program.outputHelp();
    return 0;
  }
  try {
    await program.parseAsync([...argv]);
  } catch (e) {
    if (e instanceof CommanderError) {
      if (e.code === 'commander.helpDisplayed' || e.code === 'commander.version' || e.code === 'commander.help') return 0;
      // A group command run without a subcommand prints its help; that is not an error.
      if (e.code === 'commander.executeSubCommandAsync') return 0;
      return 2;
    }
    throw e;
  }
  return takeExitCode();
}
