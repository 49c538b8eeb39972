import type { Command } from 'commander';
import { action } from './run-command.ts';
import type { CommandContext } from './run-command.ts';
import { withExamples } from './examples.ts';
import { GROUP_CONFIG } from './groups.ts';

export function registerConfig(program: Command): void {
  const config = program
    .command('config')
    .description('Get, set and view settings (global, or per profile with -p)')
    .helpGroup(GROUP_CONFIG);
  withExamples(config, [
    ['devcluster config set memory 8g', 'default memory for new clusters'],
    ['devcluster config set -p dev cpus 4', 'only for the profile "dev"'],
    ['devcluster config view -o json', 'every setting, its value and where it came from'],
  ]);

  withExamples(
    config
      .command('get <key>')
      .description('Print the value a setting has for the profile, after flags, environment and config files')
      .option('-o, --output <format>', 'text or json', 'text')
      .action(action(async (ctx, [key]) => get(ctx, key as string), { formats: ['text', 'json'] })),
    [['devcluster config get memory', 'prints e.g. 4GiB'], ['devcluster -p dev config get driver -o json', 'with its source']],
  );

  withExamples(
    config
      .command('set <key> <value>')
      .description('Save a setting in the global config, or in the profile\'s config with -p')
      .option('--wait-lock', 'wait for another command that holds the profile instead of failing')
      .action(action(async (ctx, [key, value]) => set(ctx, key as string, value as string))),
    [['devcluster config set driver qemu', 'always use QEMU'], ['devcluster config set -p dev kubernetes-version 1.36.3', 'pin a version for "dev"']],
  );

  withExamples(
    config
      .command('unset <key>')
      .description('Remove a setting from the global config, or from the profile\'s config with -p')
      .option('--wait-lock', 'wait for another command that holds the profile instead of failing')
      .action(action(async (ctx, [key]) => unset(ctx, key as string))),
    [['devcluster config unset memory', 'back to the default']],
  );

  withExamples(
    config
      .command('view')
      .description('Show every setting with its effective value and where it comes from')
      .option('-o, --output <format>', 'text or json', 'text')
      .action(action(async (ctx) => view(ctx), { formats: ['text', 'json'] })),
    [['devcluster config view', 'a table of settings'], ['devcluster -p dev config view -o json', 'as JSON']],
  );
}

async function get(ctx: CommandContext, key: string): Promise<void> {
  const { requireSetting, formatValue } = await import('../profile/settings.ts');
  const { resolveConfig } = await import('../profile/config.ts');
  const def = requireSetting(key);
  const resolved = await resolveConfig({ home: ctx.home, profileFlag: ctx.profileFlag });
  const s = resolved.settings[def.key];
  if (s === undefined) return;
  if (ctx.out.format === 'json') {
    ctx.out.json({ profile: resolved.profile, key: s.key, value: s.value, source: s.source, origin: s.origin });
  } else {
    ctx.out.data(formatValue(def, s.value));
  }
}

interface Scope {
  kind: 'global' | 'profile';
  profile?: string;
  file: string;
  lockPath: string;
  label: string;
}

async function scopeFor(ctx: CommandContext, key: string): Promise<Scope> {
  const { validateProfileName } = await import('../profile/names.ts');
  const { homePaths, profilePaths } = await import('../profile/paths.ts');
  const { requireSetting } = await import('../profile/settings.ts');
  const { inputError } = await import('../ui/errors.ts');
  const def = requireSetting(key);
  if (ctx.profileFlag === undefined) {
    const paths = homePaths(ctx.home);
    return { kind: 'global', file: paths.globalConfig, lockPath: `${paths.globalConfig}.lock`, label: 'global config' };
  }
  const profile = validateProfileName(ctx.profileFlag);
  if (def.scope === 'global') {
    throw inputError('USAGE_INVALID_ARGUMENT', `${key} is a global setting and cannot be set per profile`, { advice: `Run the command without -p.` });
  }
  const paths = profilePaths(ctx.home, profile);
  return { kind: 'profile', profile, file: paths.config, lockPath: paths.lock, label: `profile ${profile}` };
}

/** Reads, changes and writes one config file under the lock of its scope. */
async function changeConfig(ctx: CommandContext, key: string, change: (config: Record<string, unknown>) => void): Promise<Scope> {
  const { readConfigFile, writeConfigFile } = await import('../profile/config.ts');
  const { acquireProfileLock } = await import('../profile/lock.ts');
  const scope = await scopeFor(ctx, key);
  // Validate the file before taking the lock: a corrupt file is reported, not overwritten.
  await readConfigFile(scope.file);
  const lock = await acquireProfileLock(scope.profile ?? 'global config', scope.lockPath, {
    command: `config ${ctx.command.split(' ').pop() ?? ''} ${key}`.trim(),
    wait: ctx.waitLock,
    signal: ctx.signal,
  });
  try {
    const current = await readConfigFile(scope.file);
    change(current);
    await writeConfigFile(scope.file, current as never);
  } finally {
    await lock.release();
  }
  return scope;
}

async function set(ctx: CommandContext, key: string, value: string): Promise<void> {
  const { requireSetting, formatValue } = await import('../profile/settings.ts');
  const def = requireSetting(key);
  await scopeFor(ctx, key);
  const parsed = def.parse(value, `config set ${key}`);
  if (def.key === 'driver' && parsed !== 'auto') {
    // A driver this build cannot run here would only fail at the next start: say why now, and write nothing.
    const { drivers } = await import('../../drivers/index.ts');
    const { inputError } = await import('../ui/errors.ts');
    const refusal = drivers.refusal(String(parsed), process.platform);
    if (refusal !== undefined) throw inputError('DRIVER_UNAVAILABLE', `config set driver: ${refusal.message}`, { advice: refusal.advice });
  }
  const scope = await changeConfig(ctx, key, (c) => {
    c[def.key] = parsed;
  });
  ctx.out.success(`${def.key} = ${formatValue(def, parsed)} (${scope.label})`);
  if (def.key !== 'profile' && def.key !== 'doctor.muted') {
    ctx.out.info('  Takes effect for clusters created from now on; an existing cluster keeps its size until it is deleted and started again.');
  }
}

async function unset(ctx: CommandContext, key: string): Promise<void> {
  const { requireSetting } = await import('../profile/settings.ts');
  const def = requireSetting(key);
  const scope = await changeConfig(ctx, key, (c) => {
    delete c[def.key];
  });
  ctx.out.success(`${def.key} unset (${scope.label})`);
}

/** What an existing profile's VM was made with (state.json), which later settings do not change. */
interface ExistingCluster {
  status: string;
  driver: string | null;
  /** Null while the VM is not created yet (a first start that did not finish). */
  created: { cpus: number; memoryMiB: number; diskMiB: number; image: string; kubernetes: boolean; kubernetesVersion?: string } | null;
  /** Why the state file cannot be read; the other fields are then unknown. */
  problem?: string;
}

async function existingCluster(ctx: CommandContext, profile: string): Promise<ExistingCluster | null> {
  const { profilePaths } = await import('../profile/paths.ts');
  const { readStateForDisplay } = await import('../profile/profiles.ts');
  const { state, problem } = await readStateForDisplay(profilePaths(ctx.home, profile).state);
  if (problem !== undefined) return { status: problem.kind === 'corrupt' ? 'Corrupt state' : 'Unreadable state', driver: null, created: null, problem: problem.message };
  if (state === undefined) return null;
  const c = state['created'] as Partial<NonNullable<ExistingCluster['created']>> | undefined;
  const baseImage = (state['image'] as { name?: unknown } | undefined)?.name;
  return {
    status: typeof state['status'] === 'string' ? state['status'] : 'unknown',
    driver: typeof state['driver'] === 'string' ? state['driver'] : null,
    created:
      c === undefined
        ? null
        : {
            cpus: Number(c.cpus),
            memoryMiB: Number(c.memoryMiB),
            diskMiB: Number(c.diskMiB),
            image: typeof baseImage === 'string' ? baseImage : String(c.image),
            kubernetes: c.kubernetes === true,
            ...(typeof c.kubernetesVersion === 'string' ? { kubernetesVersion: c.kubernetesVersion } : {}),
          },
  };
}

async function view(ctx: CommandContext): Promise<void> {
  const { resolveConfig } = await import('../profile/config.ts');
  const { SETTINGS, formatValue } = await import('../profile/settings.ts');
  const { formatMiB } = await import('../profile/units.ts');
  const resolved = await resolveConfig({ home: ctx.home, profileFlag: ctx.profileFlag });
  const existing = await existingCluster(ctx, resolved.profile);
  if (ctx.out.format === 'json') {
    ctx.out.json({
      profile: resolved.profile,
      settings: SETTINGS.map((d) => resolved.settings[d.key]),
      existingCluster: existing,
    });
    return;
  }
  ctx.out.line(
    existing === null
      ? `Settings for profile ${resolved.profile} (no cluster yet: \`devcluster start\` creates it with these):`
      : `Settings for profile ${resolved.profile} (used when its cluster is created; the existing one keeps what is below):`,
  );
  ctx.out.table(
    ['KEY', 'VALUE', 'SOURCE'],
    SETTINGS.map((d) => {
      const s = resolved.settings[d.key];
      return [d.key, s === undefined ? '' : formatValue(d, s.value), s === undefined ? '' : s.source === 'default' ? 'default' : `${s.source} (${s.origin})`];
    }),
  );
  if (existing === null) return;
  ctx.out.line();
  if (existing.problem !== undefined) {
    ctx.out.line(`Existing cluster ${resolved.profile}: ${existing.status}: ${existing.problem}`);
    return;
  }
  const c = existing.created;
  if (c === null) {
    ctx.out.line(`Existing cluster ${resolved.profile} (${existing.status}, ${existing.driver ?? 'unknown'} driver): its VM is not created yet; the next \`devcluster start\` creates it with the settings above.`);
    return;
  }
  ctx.out.line(`Existing cluster ${resolved.profile} (${existing.status}) was created with these, fixed for its VM until \`devcluster delete${resolved.profile === 'devcluster' ? '' : ` -p ${resolved.profile}`}\`:`);
  ctx.out.table(
    ['KEY', 'VALUE'],
    [
      ['driver', existing.driver ?? ''],
      ['cpus', String(c.cpus)],
      ['memory', formatMiB(c.memoryMiB)],
      ['disk-size', formatMiB(c.diskMiB)],
      ['image', c.image],
      ['kubernetes', c.kubernetes ? (c.kubernetesVersion ?? 'yes') : 'none'],
    ],
  );
}
