import { chmod } from 'node:fs/promises';
import { findOnPath } from '../../host/path-search.ts';
import { fail, pass, skip, warn, errorText } from '../outcome.ts';
import { loadKubeconfig, sameServer } from '../kubeconfig.ts';
import type { Kubeconfig } from '../kubeconfig.ts';
import { addStartupLine, shQuote, startupFile } from '../shell.ts';
import { powershellArgs } from '../../host/powershell.ts';
import { withoutKubernetes } from './host.ts';
import type { Check, CheckContext, Fix, FixCommand } from '../types.ts';

export interface KubectlInfo {
  path?: string;
  version?: string;
  problem?: string;
}

/** `kubectl version --client -o json` -> clientVersion.gitVersion. */
export function parseKubectlClientVersion(json: string): string | undefined {
  try {
    const v = (JSON.parse(json) as { clientVersion?: { gitVersion?: unknown } }).clientVersion?.gitVersion;
    return typeof v === 'string' ? v : undefined;
  } catch {
    return undefined;
  }
}

/** The minor number of v1.N.x (suffixes such as -gke.1 or + are ignored). */
export function minorOf(version: string): number | undefined {
  const m = /^v?1\.(\d+)/.exec(version.trim());
  return m === null ? undefined : Number(m[1]);
}

async function kubectlInfo(ctx: CheckContext): Promise<KubectlInfo> {
  return ctx.memo('kubectl', async (c) => {
    const path = await findOnPath('kubectl', { env: c.env, platform: c.host.platform });
    if (path === undefined) return {};
    try {
      const r = await c.exec(path, ['version', '--client', '-o', 'json'], { timeoutMs: 10_000, parse: true });
      const version = parseKubectlClientVersion(r.stdout);
      return version === undefined ? { path, problem: 'kubectl printed no client version' } : { path, version };
    } catch (e) {
      return { path, problem: errorText(e) };
    }
  });
}

export function applyText(command: FixCommand): string {
  return command.file === undefined ? `run the ${command.shell} command` : `add the ${command.shell} line to ${command.file}`;
}

/** Adds a line to the user's startup file, or runs the PowerShell command that persists it. */
export async function applyShellLine(ctx: CheckContext, command: FixCommand): Promise<void> {
  if (command.shell === 'powershell') {
    await ctx.exec('powershell.exe', powershellArgs(command.run), { timeoutMs: 20_000 });
    return;
  }
  const file = command.file ?? startupFile(command.shell === 'zsh' || command.shell === 'fish' ? command.shell : 'bash', ctx.userHome);
  const added = await addStartupLine(file, command.run);
  ctx.evidence({ command: `append to ${file}`, stdout: added ? command.run : '(already present)' });
}

const kubectlCheck: Check = {
  id: 'KUBECTL_NOT_ON_PATH',
  title: 'kubectl',
  category: 'tools',
  inapplicable: withoutKubernetes,
  looksAt: 'kubectl on PATH and its client version (`devcluster kubectl` needs none: it runs a kubectl of the cluster\'s version)',
  exitCode: 104,
  async run(ctx) {
    const info = await kubectlInfo(ctx);
    if (info.path !== undefined) {
      if (info.version === undefined) return warn(`${info.path} does not run: ${info.problem ?? 'no version'}`);
      return pass(`${info.version} (${info.path})`);
    }
    return warn('kubectl is not on PATH; it is the tool to use the Kubernetes of a cluster', {
      details: [`\`devcluster kubectl${profileFlag(ctx)} -- <args>\` runs a kubectl of the cluster's version without one on PATH.`],
      fix: { description: 'Install kubectl with your package manager, or from kubernetes.io, in a version within one minor version of the cluster.', commands: [] },
    });
  },
};

function profileFlag(ctx: CheckContext): string {
  return ctx.profile === 'devcluster' ? '' : ` -p ${ctx.profile}`;
}

const skewCheck: Check = {
  id: 'KUBECTL_VERSION_SKEW',
  title: 'kubectl version',
  category: 'tools',
  inapplicable: withoutKubernetes,
  looksAt: "kubectl's minor version against the cluster's (GET /version, or the version in state.json)",
  requires: ['KUBECTL_NOT_ON_PATH'],
  exitCode: 105,
  async run(ctx) {
    const info = await kubectlInfo(ctx);
    if (info.version === undefined) return skip('kubectl is not available');
    let server: string | undefined;
    let from = 'state.json';
    if (ctx.kube !== undefined) {
      try {
        server = await ctx.kube.serverVersion({ signal: ctx.signal, timeoutMs: 5000 });
        from = 'the API server';
      } catch (e) {
        ctx.evidence({ command: 'GET /version', error: errorText(e) });
      }
    }
    server ??= ctx.cluster.kubernetesVersion;
    if (server === undefined || minorOf(server) === undefined) return skip(`the cluster's Kubernetes version is not known (no cluster for profile ${ctx.profile})`);
    const client = minorOf(info.version);
    const skew = client === undefined ? 0 : Math.abs(client - (minorOf(server) ?? 0));
    if (skew > 1) {
      const fix = {
        description: `Use \`devcluster kubectl${profileFlag(ctx)} -- <args>\`, which runs a kubectl of the cluster's version, or install a kubectl within one minor version of the cluster's ${server}.`,
        commands: [],
      };
      return warn(`kubectl ${info.version} is ${skew} minor versions from the cluster's ${server}; kubectl supports one minor version of difference`, { fix });
    }
    return pass(`kubectl ${info.version}, cluster ${server} (from ${from})`);
  },
};

async function kubeconfigOf(ctx: CheckContext): Promise<Kubeconfig> {
  return ctx.memo('kubeconfig', async (c) => {
    const kc = await loadKubeconfig(c.env, c.userHome, c.host.platform);
    for (const f of kc.files) {
      c.evidence({ command: `read ${f.path}`, stdout: !f.exists ? '(missing)' : f.problem ?? `${f.contexts.length} contexts, ${f.clusters.length} clusters, current-context ${f.currentContext ?? '(none)'}` });
    }
    return kc;
  });
}

/** Runs kubectl with the same KUBECONFIG the checks read, so its writes land in the same files. */
async function kubectl(ctx: CheckContext, args: string[]): Promise<void> {
  const path = (await kubectlInfo(ctx)).path ?? 'kubectl';
  const env: Record<string, string | undefined> = { HOME: ctx.userHome };
  if (ctx.env['KUBECONFIG'] !== undefined) env['KUBECONFIG'] = ctx.env['KUBECONFIG'];
  await ctx.exec(path, args, { timeoutMs: 15_000, env });
}

function moveAsideCommands(path: string): FixCommand[] {
  const ps = (s: string) => `'${s.replace(/'/g, "''")}'`;
  return [
    { shell: 'sh', run: `mv ${shQuote(path)} ${shQuote(`${path}.broken`)}`, elevated: false },
    { shell: 'powershell', run: `Move-Item -LiteralPath ${ps(path)} -Destination ${ps(`${path}.broken`)}`, elevated: false },
  ];
}

const kubeconfigCheck: Check = {
  id: 'KUBECONFIG_INVALID',
  title: 'kubeconfig',
  category: 'tools',
  inapplicable: withoutKubernetes,
  looksAt: 'the KUBECONFIG variable and each file it names (or ~/.kube/config): that they parse as kubeconfig YAML',
  exitCode: 106,
  async run(ctx) {
    const kc = await kubeconfigOf(ctx);
    const broken = kc.files.filter((f) => f.exists && f.problem !== undefined);
    const present = kc.files.filter((f) => f.exists);
    const missing = kc.files.filter((f) => !f.exists).map((f) => `${f.path} does not exist (kubectl ignores it)`);
    const origin = kc.source === 'KUBECONFIG' ? 'KUBECONFIG' : 'default path';
    if (broken.length > 0) {
      const first = broken[0];
      return fail(`${first?.path}: ${first?.problem}`, {
        details: [...broken.slice(1).map((f) => `${f.path}: ${f.problem}`), ...missing, 'kubectl refuses every command while a kubeconfig it reads is broken.'],
        fix: {
          description: 'Repair the file, or move it aside so that kubectl works again.',
          commands: first === undefined ? [] : moveAsideCommands(first.path),
          disruptive: true,
        },
        related: ['kubernetes/minikube#5268'],
      });
    }
    if (present.length === 0) {
      return pass(`no kubeconfig yet (${kc.files.map((f) => f.path).join(', ')}, ${origin})`);
    }
    return pass(`${present.map((f) => f.path).join(', ')} (${origin})`, missing);
  },
};

const contextCheck: Check = {
  id: 'KUBECONFIG_CONTEXT_MISSING',
  title: 'kubectl context',
  category: 'tools',
  inapplicable: withoutKubernetes,
  looksAt: "that kubeconfig's current-context names a context that exists, and whether it is devcluster's",
  requires: ['KUBECONFIG_INVALID'],
  exitCode: 106,
  async run(ctx) {
    const kc = await kubeconfigOf(ctx);
    const ours = kc.context(ctx.profile);
    const useOurs: Fix | undefined =
      ours === undefined
        ? undefined
        : {
            description: `Make devcluster's context "${ctx.profile}" the current one.`,
            commands: [{ shell: 'sh', run: `kubectl config use-context ${ctx.profile}`, elevated: false }],
            apply: (c) => kubectl(c, ['config', 'use-context', ctx.profile]),
          };
    if (kc.currentContext === undefined) {
      if (ours !== undefined && useOurs !== undefined) return warn('no current context is set: kubectl does not know which cluster to use', { fix: useOurs });
      return pass('no current context set');
    }
    if (kc.context(kc.currentContext) === undefined) {
      return fail(`current-context "${kc.currentContext}" (in ${kc.currentContextFile}) names a context that does not exist`, {
        fix: useOurs ?? {
          description: 'Unset the current context, then choose one of the contexts that exist.',
          commands: [{ shell: 'sh', run: 'kubectl config unset current-context', elevated: false }],
          apply: (c) => kubectl(c, ['config', 'unset', 'current-context']),
        },
      });
    }
    if (kc.currentContext !== ctx.profile) {
      return pass(`"${kc.currentContext}"`, ours === undefined ? [] : [`devcluster's context is "${ctx.profile}"; switch with: kubectl config use-context ${ctx.profile}`]);
    }
    return pass(`"${kc.currentContext}" (devcluster's)`);
  },
};

const staleCheck: Check = {
  id: 'KUBECONFIG_STALE_SERVER',
  title: 'kubeconfig server',
  category: 'tools',
  inapplicable: withoutKubernetes,
  looksAt: "that the profile's context points at the API server address recorded in the profile's state.json",
  requires: ['KUBECONFIG_INVALID'],
  exitCode: 106,
  async run(ctx) {
    const kc = await kubeconfigOf(ctx);
    const ours = kc.context(ctx.profile);
    if (ours === undefined) return skip(`no context named "${ctx.profile}"`);
    const want = ctx.cluster.apiServer;
    if (want === undefined) return skip(`the profile's state records no API server address`);
    const clusterName = ours.cluster ?? ctx.profile;
    const cluster = kc.cluster(clusterName);
    const setServer = (file: string): Fix => ({
      description: `Point the cluster entry "${clusterName}" at the address the cluster listens on.`,
      commands: [{ shell: 'sh', run: `kubectl config set-cluster ${clusterName} --server=${want} --kubeconfig=${file}`, elevated: false }],
      apply: (c) => kubectl(c, ['config', 'set-cluster', clusterName, `--server=${want}`, `--kubeconfig=${file}`]),
    });
    if (cluster?.server === undefined) {
      return fail(`context "${ctx.profile}" uses cluster "${clusterName}", which has no server in any kubeconfig file`, { fix: setServer(ours.file) });
    }
    if (!sameServer(cluster.server, want)) {
      return fail(`context "${ctx.profile}" points at ${cluster.server} but the cluster listens on ${want}`, {
        details: [
          `The entry is in ${cluster.file}. An address changes when the VM gets a new IP or port.`,
          `\`devcluster update-context${profileFlag(ctx)}\` writes the whole entry again (server, CA and client certificate).`,
        ],
        fix: setServer(cluster.file),
        related: ['kubernetes/minikube#4029', 'kubernetes/minikube#8760'],
      });
    }
    return pass(`${ctx.profile} -> ${cluster.server}`);
  },
};

const permissionsCheck: Check = {
  id: 'KUBECONFIG_PERMISSIONS',
  title: 'kubeconfig permissions',
  category: 'tools',
  inapplicable: withoutKubernetes,
  looksAt: 'that kubeconfig files (which hold credentials) are not readable by other users',
  platforms: ['linux', 'darwin'],
  requires: ['KUBECONFIG_INVALID'],
  exitCode: 107,
  async run(ctx) {
    const kc = await kubeconfigOf(ctx);
    const open = kc.files.filter((f) => f.exists && f.mode !== undefined && (f.mode & 0o077) !== 0);
    if (open.length === 0) return pass(kc.files.some((f) => f.exists) ? 'readable only by you' : 'no kubeconfig yet');
    const list = open.map((f) => `${f.path} (mode ${(f.mode ?? 0).toString(8).padStart(4, '0')})`);
    return warn(`${list.join(', ')} can be read by other users and holds cluster credentials`, {
      fix: {
        description: 'Make the files readable and writable by you only.',
        commands: open.map((f) => ({ shell: 'sh' as const, run: `chmod 600 ${shQuote(f.path)}`, elevated: false })),
        apply: async (c) => {
          for (const f of open) {
            await chmod(f.path, 0o600);
            c.evidence({ command: `chmod 600 ${f.path}` });
          }
        },
      },
      related: ['kubernetes/minikube#5714'],
    });
  },
};

export const TOOLS_CHECKS: readonly Check[] = [kubectlCheck, skewCheck, kubeconfigCheck, contextCheck, staleCheck, permissionsCheck];
