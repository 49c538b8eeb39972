import { connect } from 'node:net';
import { fail, pass, skip, warn, errorText } from '../outcome.ts';
import { settingOf } from '../context.ts';
import { noClusterReason, withoutKubernetes } from './host.ts';
import {
  CLUSTER_RANGES,
  findRouteConflicts,
  missingNoProxy,
  noProxyEntries,
  proxyVariables,
} from '../net.ts';
import { describeRoute, hostRoutes } from '../routes.ts';
import { envLines, userShell } from '../shell.ts';
import { applyShellLine, applyText } from './tools.ts';
import { isIpv4, parseCidr } from '../../host/ipv4.ts';
import type { Check, CheckContext, DoctorContext } from '../types.ts';

/** The VM's subnet: what the running profile uses, else an explicit setting; undefined while it is "auto". */
export function vmSubnet(ctx: DoctorContext): string | undefined {
  if (ctx.cluster.subnet !== undefined) return ctx.cluster.subnet;
  const configured = String(settingOf(ctx, 'subnet', 'auto'));
  return configured === 'auto' ? undefined : configured;
}

function apiServerHost(ctx: DoctorContext): { host: string; port: number } | undefined {
  if (ctx.cluster.apiServer === undefined) return undefined;
  try {
    const u = new URL(ctx.cluster.apiServer);
    return { host: u.hostname, port: u.port === '' ? 443 : Number(u.port) };
  } catch {
    return undefined;
  }
}

/** What NO_PROXY must hold for kubectl and the VM to bypass the proxy. */
export function requiredNoProxy(ctx: DoctorContext): string[] {
  const out: string[] = [];
  const api = apiServerHost(ctx);
  if (api !== undefined && isIpv4(api.host)) out.push(api.host);
  const subnet = vmSubnet(ctx);
  if (subnet !== undefined) out.push(subnet);
  out.push(...CLUSTER_RANGES);
  return [...new Set(out)];
}

const proxyCheck: Check = {
  id: 'PROXY_NO_PROXY_INCOMPLETE',
  title: 'Proxy',
  category: 'network',
  looksAt: 'HTTP(S)_PROXY / ALL_PROXY and whether NO_PROXY covers the VM subnet, the API server and the cluster ranges (10.96.0.0/12, 10.244.0.0/16)',
  exitCode: 48,
  async run(ctx) {
    const proxies = proxyVariables(ctx.env);
    if (proxies.length === 0) return pass('no proxy variables set');
    const shown = proxies.map((p) => `${p.name}=${p.value}`);
    const missing = missingNoProxy(ctx.env, requiredNoProxy(ctx));
    if (missing.length === 0) return pass(`NO_PROXY covers the cluster's addresses`, shown);
    const value = [...noProxyEntries(ctx.env), ...missing].join(',');
    const commands = envLines(['NO_PROXY', 'no_proxy'], value, ctx.userHome, ctx.host.platform);
    const mine = commands.find((c) => c.shell === userShell(ctx.env, ctx.host.platform));
    return warn(`${proxies[0]?.name} is set but NO_PROXY lacks ${missing.join(', ')}`, {
      details: [
        ...shown,
        'This line keeps kubectl and other tools on this host from sending cluster traffic to the proxy.',
        ...(vmSubnet(ctx) === undefined ? ['The VM subnet is chosen at start (subnet=auto); run the doctor again afterwards to include it.'] : []),
        'Some programs ignore CIDR ranges in NO_PROXY; list single addresses too if one of them still uses the proxy.',
      ],
      fix: {
        description: "Add the cluster's addresses to NO_PROXY in your shell's startup file, then open a new terminal.",
        commands,
        requires: ['new-shell'],
        ...(mine === undefined ? {} : { apply: (c: CheckContext) => applyShellLine(c, mine), applyDescription: applyText(mine) }),
      },
      related: ['kubernetes/minikube#3846', 'kubernetes/minikube#6107'],
    });
  },
};

const subnetCheck: Check = {
  id: 'NETWORK_SUBNET_CONFLICT',
  title: 'VM subnet',
  category: 'network',
  looksAt: 'host routes (ip -j route, netstat -rn, Get-NetRoute) that overlap the VM subnet, such as a VPN or another virtual network',
  platforms: ['linux', 'darwin', 'win32'],
  fatal: true,
  exitCode: 71,
  async run(ctx) {
    const subnetText = vmSubnet(ctx);
    if (subnetText === undefined) return skip('the subnet is chosen at start (subnet=auto) from ranges no route uses');
    const subnet = parseCidr(subnetText);
    if (subnet === undefined) return skip(`the recorded subnet ${JSON.stringify(subnetText)} is not an IPv4 network`);
    const routes = await hostRoutes(ctx);
    const own = [String(settingOf(ctx, 'qemu-bridge', 'devcluster0')), `vEthernet (${String(settingOf(ctx, 'hyperv-switch', 'devcluster'))})`];
    const conflicts = findRouteConflicts(routes, subnet, own);
    if (conflicts.length > 0) {
      const configured = ctx.config.settings['subnet'];
      return fail(`${subnetText} overlaps ${conflicts.map((c) => describeRoute(c.route)).join('; ')}`, {
        details: [
          'Traffic for the VM would go to that interface instead (a VPN, a LAN or another virtual network).',
          'Some VPNs offer an option to allow local network access, which keeps the route to the VM.',
        ],
        fix: {
          description: ctx.cluster.subnet !== undefined
            ? 'Disconnect the conflicting network, or delete the cluster and start it again with a subnet that no route uses.'
            : 'Choose a subnet that no route uses, or let devcluster pick a free one.',
          commands: configured?.source === 'flag' || configured?.source === 'default' || ctx.cluster.subnet !== undefined ? [] : [{ shell: 'sh', run: 'devcluster config set subnet auto', elevated: false }],
        },
        related: ['kubernetes/minikube#3594', 'kubernetes/minikube#8760'],
      });
    }
    return pass(`${subnetText} does not overlap any of ${routes.length} host routes`);
  },
};

/** Opens and closes a TCP connection; rejects with the socket error or a timeout. */
export function tcpProbe(host: string, port: number, timeoutMs: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host, port });
    const done = (e?: Error) => {
      socket.destroy();
      if (e === undefined) resolve();
      else reject(e);
    };
    socket.setTimeout(timeoutMs, () => done(new Error(`no answer within ${timeoutMs}ms (filtered by a firewall, or routed elsewhere)`)));
    socket.once('connect', () => done());
    socket.once('error', (e) => done(e));
    signal?.addEventListener('abort', () => done(new Error('aborted')), { once: true });
  });
}

const apiPortCheck: Check = {
  id: 'NETWORK_APISERVER_UNREACHABLE',
  title: 'API server port',
  category: 'network',
  looksAt: "a TCP connection from this host to the API server address in the profile's state.json, when the cluster runs",
  exitCode: 79,
  inapplicable: withoutKubernetes,
  async run(ctx) {
    const reason = noClusterReason(ctx);
    if (reason !== undefined) return skip(reason);
    const api = apiServerHost(ctx);
    if (api === undefined) return skip('the profile records no API server address');
    try {
      await tcpProbe(api.host, api.port, 3000, ctx.signal);
    } catch (e) {
      ctx.evidence({ command: `tcp connect ${api.host}:${api.port}`, error: errorText(e) });
      return fail(`cannot connect to ${api.host}:${api.port}: ${errorText(e)}`, {
        details: ['A VPN or firewall can capture the route to the VM; "refused" means nothing listens on the port (the API server is down).'],
        fix: { description: 'Allow local network access in the VPN client or disconnect it, and check that the VM is running.', commands: [] },
        related: ['kubernetes/minikube#4302', 'kubernetes/minikube#3388'],
      });
    }
    ctx.evidence({ command: `tcp connect ${api.host}:${api.port}`, exitCode: 0 });
    return pass(`${api.host}:${api.port} accepts connections`);
  },
};

export const NETWORK_CHECKS: readonly Check[] = [proxyCheck, subnetCheck, apiPortCheck];
