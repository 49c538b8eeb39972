import type { Command } from 'commander';
import { action } from './run-command.ts';
import { withExamples } from './examples.ts';
import { GROUP_BASIC } from './groups.ts';
import { lifecycle } from './lifecycle.ts';

export function registerKubectl(program: Command): void {
  const kubectl = program
    .command('kubectl [args...]')
    .description('Run kubectl (the cluster\'s own version) against the profile\'s context; no kubectl on PATH needed (exit code: kubectl\'s)')
    .helpGroup(GROUP_BASIC)
    .allowUnknownOption()
    .action(
      action(async (ctx, args) => {
        const { kubectlFor } = await import('../cluster/kubectl-access.ts');
        const k = await kubectlFor(lifecycle(ctx));
        const { logLine } = await import('../ui/context.ts');
        logLine('exec', `$ ${k.binary} ${[...k.args, ...args].join(' ')}`);
        const { runForeground } = await import('../host/foreground-child.ts');
        return await runForeground(k.binary, [...k.args, ...args], ctx.signal);
      }),
    );
  withExamples(kubectl, [
    ['devcluster kubectl -- get nodes', 'kubectl\'s arguments go after --'],
    ['devcluster -p dev kubectl -- -n kube-system get pods', 'another profile'],
  ]);
}
