import type { Command } from 'commander';
import { action } from './run-command.ts';
import type { CommandContext } from './run-command.ts';
import { withExamples } from './examples.ts';
import { GROUP_CONFIG } from './groups.ts';

export function registerProfile(program: Command): void {
  const profile = program.command('profile').description('List profiles (each profile is one cluster)').helpGroup(GROUP_CONFIG);
  withExamples(profile, [
    ['devcluster profile list', 'every cluster on this machine'],
    ['devcluster config set profile dev', 'make "dev" the profile commands act on'],
  ]);
  withExamples(
    profile
      .command('list')
      .alias('ls')
      .description('List profiles with their driver, size, Kubernetes version and status')
      .option('-o, --output <format>', 'text or json', 'text')
      .action(action(async (ctx) => list(ctx), { formats: ['text', 'json'] })),
    [['devcluster profile list', 'a table'], ['devcluster profile list -o json', 'for scripts']],
  );
}

async function list(ctx: CommandContext): Promise<void> {
  const { listProfiles } = await import('../profile/profiles.ts');
  const { resolveConfig } = await import('../profile/config.ts');
  const { formatMiB } = await import('../profile/units.ts');
  const profiles = await listProfiles(ctx.home);
  const active = (await resolveConfig({ home: ctx.home, profileFlag: ctx.profileFlag })).profile;
  const rows = await Promise.all(
    profiles.map(async (p) => {
      if (p.problem !== undefined) {
        return { name: p.name, active: p.name === active, status: 'Invalid', problem: p.problem };
      }
      let r: Awaited<ReturnType<typeof resolveConfig>>;
      try {
        r = await resolveConfig({ home: ctx.home, profileFlag: p.name });
      } catch (e) {
        return { name: p.name, active: p.name === active, status: 'Invalid', problem: (e as Error).message };
      }
      const v = (k: string) => r.settings[k]?.value;
      const state = p.state ?? {};
      // A created VM keeps the size it was made with, whatever the settings say now.
      const created = state['created'] as { cpus?: number; memoryMiB?: number; diskMiB?: number; kubernetes?: boolean; kubernetesVersion?: string } | undefined;
      return {
        name: p.name,
        active: p.name === active,
        driver: (state['driver'] as string | undefined) ?? String(v('driver')),
        cpus: created?.cpus ?? Number(v('cpus')),
        memoryMiB: created?.memoryMiB ?? Number(v('memory')),
        diskMiB: created?.diskMiB ?? Number(v('disk-size')),
        kubernetesVersion: created === undefined ? String(v('kubernetes-version')) : created.kubernetes === true ? (created.kubernetesVersion ?? String(v('kubernetes-version'))) : 'none',
        ip: (state['ip'] as string | undefined) ?? null,
        status: (state['status'] as string | undefined) ?? 'Not created',
      };
    }),
  );
  if (ctx.out.format === 'json') {
    ctx.out.json({ profiles: rows });
    return;
  }
  if (rows.length === 0) {
    ctx.out.line('No profiles yet. `devcluster start` creates the default one ("devcluster").');
    return;
  }
  ctx.out.table(
    ['PROFILE', 'DRIVER', 'CPUS', 'MEMORY', 'DISK', 'KUBERNETES', 'IP', 'STATUS', 'ACTIVE'],
    rows.map((r) =>
      'problem' in r
        ? [r.name, '', '', '', '', '', '', `Invalid: ${r.problem}`, r.active ? '*' : '']
        : [r.name, r.driver, String(r.cpus), formatMiB(r.memoryMiB), formatMiB(r.diskMiB), r.kubernetesVersion, r.ip ?? '', r.status, r.active ? '*' : ''],
    ),
  );
}
