import type { Command } from 'commander';

/** Adds an "Examples:" block under a command's help. */
export function withExamples(cmd: Command, examples: ReadonlyArray<[string, string]>): Command {
  const width = Math.max(...examples.map(([c]) => c.length));
  const lines = examples.map(([c, what]) => `  $ ${c.padEnd(width)}   # ${what}`);
  return cmd.addHelpText('after', `\nExamples:\n${lines.join('\n')}\n`);
}
