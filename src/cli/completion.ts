import type { Command } from 'commander';
import { action } from './run-command.ts';
import { withExamples } from './examples.ts';
import { GROUP_OTHER } from './groups.ts';
import { inputError } from '../ui/errors.ts';
import { COMPLETION_SHELLS, completionScript } from '../ui/completion-scripts.ts';
import type { CompletionNode, CompletionShell } from '../ui/completion-scripts.ts';

/** Walks the command tree into the flat table the completion scripts use. */
export function completionNodes(program: Command): CompletionNode[] {
  const nodes: CompletionNode[] = [];
  const globals = program.options.flatMap((o) => [o.long, o.short]).filter((f): f is string => f !== undefined);
  const walk = (cmd: Command, path: string) => {
    const own = cmd.options.flatMap((o) => [o.long, o.short]).filter((f): f is string => f !== undefined);
    const subs = cmd.commands.filter((c) => !(c as unknown as { _hidden?: boolean })._hidden);
    nodes.push({
      path,
      description: cmd.description(),
      subcommands: subs.map((c) => c.name()),
      options: [...new Set([...own, ...globals, '--help'])],
    });
    for (const sub of subs) walk(sub, path === '' ? sub.name() : `${path} ${sub.name()}`);
  };
  walk(program, '');
  return nodes;
}

export function registerCompletion(program: Command): void {
  const cmd = program
    .command('completion <shell>')
    .description(`Print a shell completion script (${COMPLETION_SHELLS.join(', ')})`)
    .helpGroup(GROUP_OTHER)
    .action(
      action(async (ctx, [shell]) => {
        if (!(COMPLETION_SHELLS as readonly string[]).includes(shell ?? '')) {
          throw inputError('USAGE_INVALID_ARGUMENT', `no completion for shell ${JSON.stringify(shell)}; accepted: ${COMPLETION_SHELLS.join(', ')}`);
        }
        let root: Command = program;
        while (root.parent !== null) root = root.parent;
        ctx.out.data(completionScript(shell as CompletionShell, completionNodes(root)).trimEnd());
      }, { usesHome: false }),
    );
  withExamples(cmd, [
    ['source <(devcluster completion bash)', 'bash, this shell; add to ~/.bashrc to keep'],
    ['devcluster completion zsh > "${fpath[1]}/_devcluster"', 'zsh'],
    ['devcluster completion fish | source', 'fish'],
    ['devcluster completion powershell | Out-String | Invoke-Expression', 'PowerShell; add to $PROFILE to keep'],
  ]);
}
