import type { Command } from 'commander';
import { action } from './run-command.ts';
import { withExamples } from './examples.ts';
import { GROUP_CONFIG } from './groups.ts';
import { lifecycle } from './lifecycle.ts';

export function registerUpdateContext(program: Command): void {
  const cmd = program
    .command('update-context')
    .description('Write the profile\'s kubectl context again (cluster, user, context) from its API server address and certificates')
    .helpGroup(GROUP_CONFIG)
    .option('--keep-context', 'repair the entries but leave kubectl\'s current context as it is')
    .option('--wait-lock', 'wait for another command that holds the profile instead of failing')
    .option('-o, --output <format>', 'text or json', 'text')
    .action(
      action(
        async (ctx, _args, opts) => {
          const { updateContext } = await import('../cluster/update-context.ts');
          const r = await updateContext({ ...lifecycle(ctx), keepContext: opts['keepContext'] === true });
          if (ctx.out.format === 'json') {
            ctx.out.json(r);
            return;
          }
          const changed = r.entries.filter((e) => e.action !== 'unchanged');
          if (changed.length === 0) ctx.out.success(`The kubeconfig entries of ${r.profile} were already right (${r.server}).`);
          else ctx.out.success(`Context ${r.context} points at ${r.server}: ${changed.map((e) => `${e.kind} ${e.action} in ${e.file}`).join(', ')}.`);
          for (const e of r.entries.filter((x) => x.action === 'replaced')) ctx.out.warn(`  the ${e.kind} entry "${e.name}" in ${e.file} was not devcluster's and was overwritten`);
          if (r.currentContextFile !== undefined) ctx.out.info(`  current context: ${r.context} (${r.currentContextFile})`);
        },
        { formats: ['text', 'json'], persistLog: true },
      ),
    );
  withExamples(cmd, [
    ['devcluster update-context', 'repair the default cluster\'s context and make it current'],
    ['devcluster update-context -p dev --keep-context', 'repair another profile\'s entries, current context unchanged'],
  ]);
}
