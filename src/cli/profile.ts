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
      .description('List profiles with their driver, size, Kubernetes version, image and status')
      .option('-o, --output <format>', 'text or json', 'text')
      .action(action(async (ctx) => list(ctx), { formats: ['text', 'json'] })),
    [['devcluster profile list', 'a table'], ['devcluster profile list -o json', 'for scripts']],
  );
}

interface ProfileRow {
  name: string;
  active: boolean;
  driver: string | null;
  cpus: number | null;
  memoryMiB: number | null;
  diskMiB: number | null;
  kubernetesVersion: string | null;
  image: string | null;
  ip: string | null;
  status: string;
  /** Why the profile's config or state cannot be used; the status then says which. */
  problem?: string;
}

const UNKNOWN = { driver: null, cpus: null, memoryMiB: null, diskMiB: null, kubernetesVersion: null, image: null, ip: null } as const;

/**
 * The VM's state asked of its driver now, as `status` does, never only what
 * state.json last said; an unfinished create or delete is named as such.
 */
async function liveStatus(ctx: CommandContext, profile: string, recorded: string): Promise<string> {
  const { liveHostStatus } = await import('../cluster/status.ts');
  const { lifecycle } = await import('./lifecycle.ts');
  const live = await liveHostStatus({ ...lifecycle(ctx), profileFlag: profile }).catch((e: unknown) => `Unknown (${(e as Error).message})`);
  if (recorded === 'Creating' || recorded === 'Deleting') return live === 'Nonexistent' || live === 'Stopped' ? `${recorded} (unfinished)` : `${recorded} (VM ${live})`;
  return live;
}

async function list(ctx: CommandContext): Promise<void> {
  const { listProfiles } = await import('../profile/profiles.ts');
  const { resolveConfig, resolveProfileName } = await import('../profile/config.ts');
  const { formatMiB } = await import('../profile/units.ts');
  const profiles = await listProfiles(ctx.home);
  // Only the name: a bad config in the active profile is shown on its row, not fatal to the list.
  const active = (await resolveProfileName({ home: ctx.home, profileFlag: ctx.profileFlag })).name;
  const rows = await Promise.all(
    profiles.map(async (p): Promise<ProfileRow> => {
      const isActive = p.name === active;
      if (p.stateProblem !== undefined) {
        // The profile exists and `delete` can still remove it: hiding it or failing the whole list would strand it.
        return { name: p.name, active: isActive, ...UNKNOWN, status: p.stateProblem.kind === 'corrupt' ? 'Corrupt state' : 'Unreadable state', problem: p.stateProblem.message };
      }
      if (p.problem !== undefined) return { name: p.name, active: isActive, ...UNKNOWN, status: 'Invalid config', problem: p.problem };
      let r: Awaited<ReturnType<typeof resolveConfig>>;
      try {
        r = await resolveConfig({ home: ctx.home, profileFlag: p.name });
      } catch (e) {
        return { name: p.name, active: isActive, ...UNKNOWN, status: 'Invalid config', problem: (e as Error).message };
      }
      const v = (k: string) => r.settings[k]?.value;
      const state = p.state ?? {};
      // A created VM keeps what it was made with, whatever the settings say now.
      const created = state['created'] as { cpus?: number; memoryMiB?: number; diskMiB?: number; image?: string; kubernetes?: boolean; kubernetesVersion?: string } | undefined;
      const image = state['image'] as { name?: string } | undefined;
      return {
        name: p.name,
        active: isActive,
        driver: (state['driver'] as string | undefined) ?? String(v('driver')),
        cpus: created?.cpus ?? Number(v('cpus')),
        memoryMiB: created?.memoryMiB ?? Number(v('memory')),
        diskMiB: created?.diskMiB ?? Number(v('disk-size')),
        kubernetesVersion: created === undefined ? String(v('kubernetes-version')) : created.kubernetes === true ? (created.kubernetesVersion ?? String(v('kubernetes-version'))) : 'none',
        image: image?.name ?? created?.image ?? String(v('image')),
        ip: (state['ip'] as string | undefined) ?? null,
        status: p.state === undefined ? 'Not created' : await liveStatus(ctx, p.name, String(state['status'] ?? '')),
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
  const cell = (x: string | number | null) => (x === null ? '' : String(x));
  const size = (x: number | null) => (x === null ? '' : formatMiB(x));
  ctx.out.table(
    ['PROFILE', 'DRIVER', 'CPUS', 'MEMORY', 'DISK', 'KUBERNETES', 'IMAGE', 'IP', 'STATUS', 'ACTIVE'],
    rows.map((r) => [r.name, cell(r.driver), cell(r.cpus), size(r.memoryMiB), size(r.diskMiB), cell(r.kubernetesVersion), cell(r.image), cell(r.ip), r.status, r.active ? '*' : '']),
  );
  const broken = rows.filter((r) => r.problem !== undefined);
  if (broken.length > 0) {
    ctx.out.line();
    for (const r of broken) ctx.out.line(`${r.name}: ${r.problem ?? ''}`);
    ctx.out.line('`devcluster config view -p <name>` shows its settings; `devcluster delete -p <name>` removes a profile and what it can prove is its own.');
  }
}
