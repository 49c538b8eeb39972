import { forwardEndpoints } from '../../src/host/port-forwards.ts';
import type { PortForwards } from '../../src/host/port-forwards.ts';
import type { NetworkPlan } from '../driver.ts';

/** slirp's DNS forwarder. */
export const SLIRP_DNS = '10.0.2.3';

export function userNetworkPlan(mac: string, forwards: PortForwards): NetworkPlan {
  return { mode: 'user', mac, guestAddress: { kind: 'forwarded' }, dns: [SLIRP_DNS], forwards: forwardEndpoints(forwards) };
}
