import type { Command } from 'commander';
import { action } from './run-command.ts';
import type { CommandContext } from './run-command.ts';
import { withExamples } from './examples.ts';
import { GROUP_BASIC } from './groups.ts';
import type { LifecycleOptions } from '../cluster/profile-context.ts';
import { drivers } from '../../drivers/index.ts';
import { DEFAULT_KUBERNETES_VERSION, SUPPORTED_KUBERNETES_VERSIONS } from '../kube/versions.ts';
import type { SettingDefinition } from '../profile/setting-parsers.ts';

/** The options every cluster command passes down, from the command's context. */
export function lifecycle(ctx: CommandContext, flags?: Record<string, string | undefined>): LifecycleOptions {
  return {
    home: ctx.home,
    profileFlag: ctx.profileFlag,
    out: ctx.out,
    signal: ctx.signal,
    waitLock: ctx.waitLock,
    command: ctx.command,
    ...(flags === undefined ? {} : { flags }),
  };
}

/** Flags that map one-to-one onto settings (same name). */
const CORE_START_FLAGS = ['driver', 'cpus', 'memory', 'disk-size', 'kubernetes-version', 'registry-mirror', 'image', 'image-sha256', 'subnet', 'static-ip'] as const;

/** Each shipped driver's own settings are start flags too (--qemu-network, ...), declared by the driver. */
function driverSettingFlags(): SettingDefinition[] {
  return drivers.shipped().flatMap((d) => [...d.settings]);
}

function camel(flag: string): string {
  return flag.replace(/-([a-z0-9])/g, (_m, c: string) => c.toUpperCase());
}

export function registerLifecycle(program: Command): void {
  const start = program
    .command('start')
    .description('Create and start the cluster VM (or start it again, or check a running one)')
    .helpGroup(GROUP_BASIC)
    .option('-d, --driver <name>', `hypervisor driver: auto, ${drivers.shipped().map((d) => d.name).join(', ')}`)
    .option('--cpus <n>', 'virtual CPUs (1..host cores, or max)')
    .option('-m, --memory <size>', 'memory, e.g. 4g or 4096 (MiB)')
    .option('--disk-size <size>', 'disk size, e.g. 20g')
    .option('--kubernetes-version <version>', `${SUPPORTED_KUBERNETES_VERSIONS.join(', ')} (default ${DEFAULT_KUBERNETES_VERSION}), stable or latest`)
    .option('--no-kubernetes', 'start the VM only, without Kubernetes (remembered by the profile)')
    .option('--registry-mirror <url>', 'pull images through this registry mirror (docker.io, registry.k8s.io)')
    .option('--keep-context', 'write the kubeconfig entries but leave kubectl\'s current context as it is')
    .option('--image <name|path|url>', 'guest image: photon-5, debian-12, a path or an https URL')
    .option('--image-sha256 <hex>', 'expected sha256 of --image when it is a path or URL')
    .option('--offline', 'use only cached images; fail if one is missing')
    .option('--subnet <cidr>', 'private network for bridged/NAT modes (auto or e.g. 192.168.211.0/24)')
    .option('--static-ip <ip>', 'the VM address inside --subnet')
    .option('--wait-lock', 'wait for another command that holds the profile instead of failing')
    .option('-o, --output <format>', 'text or json', 'text')
    .action(
      action(
        async (ctx, _args, opts) => {
          const flags: Record<string, string | undefined> = {};
          for (const f of [...CORE_START_FLAGS, ...driverSettingFlags().map((d) => d.key)]) {
            const v = opts[camel(f)];
            if (typeof v === 'string') flags[f] = v;
          }
          if (opts['offline'] === true) flags['offline'] = 'true';
          const { startCluster } = await import('../cluster/start.ts');
          const kubernetes = start.getOptionValueSource('kubernetes') === 'cli' ? opts['kubernetes'] === true : undefined;
          const result = await startCluster({ ...lifecycle(ctx, flags), kubernetes, keepContext: opts['keepContext'] === true });
          if (ctx.out.format === 'json') {
            ctx.out.json(result);
            return;
          }
          const verb = result.alreadyRunning ? 'is already running' : result.created ? 'was created and started' : 'was started';
          ctx.out.success(`Profile ${result.profile} ${verb} in ${(result.totalMs / 1000).toFixed(1)}s (${result.driver} driver).`);
          const p = result.profile === 'devcluster' ? '' : ` -p ${result.profile}`;
          if (result.kubernetes !== undefined) {
            ctx.out.info(`  Kubernetes ${result.kubernetes.version}: ${result.kubernetes.server} (kubectl context ${result.kubernetes.context})`);
            for (const r of result.kubernetes.reissued) ctx.out.warn(`  ${r}`);
            ctx.out.info(`  kubectl: devcluster kubectl${p} -- get nodes`);
          }
          ctx.out.info(`  SSH: devcluster ssh${p}   (${result.ssh.user}@${result.ssh.host}:${result.ssh.port})`);
        },
        { formats: ['text', 'json'], persistLog: true, lifecycle: true },
      ),
    );
  for (const d of driverSettingFlags()) start.option(`--${d.key} <value>`, `${d.description} (${d.accepts})`);
  withExamples(start, [
    ['devcluster start --no-kubernetes', 'a VM with SSH, using the best driver for this host'],
    ['devcluster start --no-kubernetes --driver=qemu --memory 4g --cpus 2', 'size it'],
    ['devcluster -p dev start --no-kubernetes --image debian-12', 'a second cluster from the locally built Debian image'],
    ['sudo devcluster start --no-kubernetes --qemu-network=bridged', 'Linux: the VM on its own bridge with NAT'],
  ]);

  const stop = program
    .command('stop')
    .description('Stop the cluster VM (ACPI shutdown, then force after --timeout)')
    .helpGroup(GROUP_BASIC)
    .option('--timeout <seconds>', 'how long the guest may take to power off', '60')
    .option('--wait-lock', 'wait for another command that holds the profile instead of failing')
    .option('-o, --output <format>', 'text or json', 'text')
    .action(
      action(
        async (ctx, _args, opts) => {
          const seconds = Number(opts['timeout']);
          if (!Number.isInteger(seconds) || seconds < 1 || seconds > 3600) {
            const { inputError } = await import('../ui/errors.ts');
            throw inputError('USAGE_INVALID_ARGUMENT', `--timeout ${JSON.stringify(opts['timeout'])} is not valid; accepted: whole seconds from 1 to 3600`);
          }
          const { stopCluster } = await import('../cluster/stop.ts');
          const r = await stopCluster({ ...lifecycle(ctx), timeoutMs: seconds * 1000 });
          if (ctx.out.format === 'json') ctx.out.json(r);
          else if (!r.wasRunning) ctx.out.success(`Profile ${r.profile} was not running.`);
          else ctx.out.success(`Profile ${r.profile} stopped in ${(r.durationMs / 1000).toFixed(1)}s${r.shutdownBy === 'guest' ? ' (the guest shut itself down)' : ''}.`);
        },
        { formats: ['text', 'json'], persistLog: true, lifecycle: true },
      ),
    );
  withExamples(stop, [['devcluster stop', 'stop the default cluster'], ['devcluster stop -p dev --timeout 10', 'give the guest 10s']]);

  const del = program
    .command('delete')
    .description('Delete the cluster: its VM, disk and every host object devcluster created for it')
    .helpGroup(GROUP_BASIC)
    .option('--all', 'delete every profile')
    .option('--purge', 'with --all: also remove $DEVCLUSTER_HOME (caches, config, logs)')
    .option('--wait-lock', 'wait for another command that holds the profile instead of failing')
    .option('-o, --output <format>', 'text or json', 'text')
    .action(
      action(
        async (ctx, _args, opts) => {
          const { deleteAll, deleteProfile } = await import('../cluster/delete.ts');
          if (opts['purge'] === true && opts['all'] !== true) {
            const { inputError } = await import('../ui/errors.ts');
            throw inputError('USAGE_INVALID_ARGUMENT', '--purge removes every cluster and cache: it needs --all as well');
          }
          const results = opts['all'] === true ? await deleteAll(lifecycle(ctx), opts['purge'] === true) : [await deleteProfile(lifecycle(ctx))];
          if (ctx.out.format === 'json') {
            ctx.out.json({ deleted: results });
            return;
          }
          if (results.length === 0) ctx.out.info('No profiles to delete.');
          for (const r of results) {
            if (r.profile === '(purge)') ctx.out.success(`Removed ${r.removed.join(', ')}.`);
            else ctx.out.success(r.existed ? `Deleted profile ${r.profile}.` : `Profile ${r.profile} had no VM; removed its settings.`);
          }
        },
        { formats: ['text', 'json'], persistLog: (o) => o['purge'] !== true, lifecycle: true },
      ),
    );
  withExamples(del, [['devcluster delete', 'the default cluster'], ['devcluster delete --all', 'every cluster'], ['devcluster delete --all --purge', 'and every cache and setting']]);
}
