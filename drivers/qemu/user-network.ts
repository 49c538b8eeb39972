import { freePort, portIsFree } from '../../src/host/ports.ts';
import { DevclusterError } from '../../src/ui/errors.ts';
import type { Endpoint, NetworkPlan, PortRequest } from '../driver.ts';
import './errors.ts';

/** slirp's fixed guest address and DNS forwarder. */
export const SLIRP_GUEST_IP = '10.0.2.15';
export const SLIRP_DNS = '10.0.2.3';
export const LOOPBACK = '127.0.0.1';

/** Host port per guest port, as recorded in the profile's state (JSON keys are strings). */
export type UserForwards = Record<string, number>;

/**
 * Host ports forwarded to the guest, bound to 127.0.0.1 only. A VM keeps its
 * ports across restarts while they are free, so a kubeconfig or an SSH config
 * that names them stays valid. `stillHeld` ports are ours (a running VM holds them).
 */
export async function chooseForwards(requests: readonly PortRequest[], previous: UserForwards | undefined, stillHeld = false): Promise<UserForwards> {
  const chosen: UserForwards = {};
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

export function forwardEndpoints(forwards: UserForwards): Record<number, Endpoint> {
  const out: Record<number, Endpoint> = {};
  for (const [guest, host] of Object.entries(forwards)) out[Number(guest)] = { host: LOOPBACK, port: host };
  return out;
}

export function userNetworkPlan(mac: string, forwards: UserForwards): NetworkPlan {
  return { mode: 'user', mac, guestAddress: { kind: 'forwarded' }, dns: [SLIRP_DNS], forwards: forwardEndpoints(forwards) };
}
