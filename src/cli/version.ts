import type { Command } from 'commander';
import { action } from './run-command.ts';
import { withExamples } from './examples.ts';
import { packageVersion } from './version-info.ts';
import { GROUP_TROUBLESHOOTING } from './groups.ts';
import { hostFacts } from '../host/platform.ts';

export function registerVersion(program: Command): void {
  const cmd = program
    .command('version')
    .description('Print the version of devcluster, Node.js and the platform')
    .helpGroup(GROUP_TROUBLESHOOTING)
    .option('-o, --output <format>', 'text or json', 'text')
    .action(
      action(async (ctx) => {
        const host = hostFacts();
        const doc = {
          devcluster: packageVersion(),
          node: process.version,
          platform: host.platform,
          arch: host.arch,
          osRelease: host.release,
        };
        if (ctx.out.format === 'json') {
          ctx.out.json(doc);
          return;
        }
        ctx.out.line(`devcluster: v${doc.devcluster}`);
        ctx.out.line(`node:       ${doc.node}`);
        ctx.out.line(`platform:   ${doc.platform}/${doc.arch} (${doc.osRelease})`);
      }, { formats: ['text', 'json'], usesHome: false }),
    );
  withExamples(cmd, [
    ['devcluster version', 'versions for a bug report'],
    ['devcluster version -o json', 'the same as JSON'],
  ]);
}
