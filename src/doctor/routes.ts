import { formatCidr } from '../host/ipv4.ts';
import { powershellJsonText } from '../host/powershell.ts';
import { parseLinuxRoutes, parseMacRoutes, parseWindowsRoutes } from './net.ts';
import type { Route } from './net.ts';
import type { CheckContext } from './types.ts';
import { WINDOWS_QUERIES } from './windows-queries.ts';

/**
 * The host's IPv4 routing table, read once per doctor run and shared by the
 * checks that look for routes over the VM's subnet (the core subnet check and
 * drivers' own, such as HyperKit's VPN check; drivers may not import
 * src/doctor/checks).
 */
export async function hostRoutes(ctx: CheckContext): Promise<Route[]> {
  return ctx.memo('routes', async (c) => {
    switch (c.host.platform) {
      case 'linux':
        return parseLinuxRoutes((await c.exec('ip', ['-j', '-4', 'route', 'show', 'table', 'main'], { timeoutMs: 5000, parse: true })).stdout);
      case 'darwin':
        return parseMacRoutes((await c.exec('netstat', ['-rn', '-f', 'inet'], { timeoutMs: 5000, parse: true })).stdout);
      case 'win32':
        return parseWindowsRoutes(await powershellJsonText(c.exec, WINDOWS_QUERIES.routes));
      default:
        return [];
    }
  });
}

/** "192.168.0.0/16 via utun4 (gateway 10.8.0.1)". */
export function describeRoute(r: Route): string {
  return `${formatCidr(r.destination)} via ${r.iface || '?'}${r.gateway === undefined ? '' : ` (gateway ${r.gateway})`}`;
}
