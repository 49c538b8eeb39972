import { DevclusterError, errorDef, registerErrors } from '../ui/errors.ts';
import { freePort, portIsFree } from './ports.ts';

registerErrors({
  NETWORK_PORT_UNAVAILABLE: errorDef('network', 78, 'A host port for forwarding to the VM could not be reserved.'),
});

export const LOOPBACK = '127.0.0.1';

/** Host port per guest port, as recorded in the profile's state (JSON keys are strings). */
export type PortForwards = Record<string, number>;

/**
 * Host ports forwarded to a NAT'd guest (QEMU's user network, VirtualBox's
 * NAT), bound to 127.0.0.1 only. A VM keeps its ports across restarts while
 * they are free, so a kubeconfig or an SSH config that names them stays
 * valid. `stillHeld` ports are ours (a running VM holds them).
 */
export async function chooseForwards(requests: ReadonlyArray<{ guestPort: number }>, previous: PortForwards | undefined, stillHeld = false): Promise<PortForwards> {
  const chosen: PortForwards = {};
  const taken: number[] = [];
  for (const r of requests) {
    const prev = previous?.[String(r.guestPort)];
    let port: number | undefined;
    if (prev !== undefined && !taken.includes(prev) && (stillHeld || (await portIsFree(prev, LOOPBACK)))) port = prev;
    for (let i = 0; port === undefined && i < 20; i += 1) {
      const p = await freePort(LOOPBACK);
      if (!taken.includes(p)) port = p;
    }
    if (port === undefined) throw new DevclusterError('NETWORK_PORT_UNAVAILABLE', 'could not find a free TCP port on 127.0.0.1');
    taken.push(port);
    chosen[String(r.guestPort)] = port;
  }
  return chosen;
}

/** The host endpoint of each forwarded guest port. */
export function forwardEndpoints(forwards: PortForwards): Record<number, { host: string; port: number }> {
  const out: Record<number, { host: string; port: number }> = {};
  for (const [guest, host] of Object.entries(forwards)) out[Number(guest)] = { host: LOOPBACK, port: host };
  return out;
}
