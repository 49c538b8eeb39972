import { freePort, portIsFree } from '../../src/host/ports.ts';
import { DevclusterError } from '../../src/ui/errors.ts';
import type { NetworkPlan } from '../driver.ts';
import './errors.ts';

export const GUEST_API_SERVER_PORT = 8443;
/** slirp's fixed guest address and DNS forwarder. */
export const SLIRP_GUEST_IP = '10.0.2.15';
export const SLIRP_DNS = '10.0.2.3';
export const LOOPBACK = '127.0.0.1';

export interface UserPorts {
  sshPort: number;
  apiServerPort: number;
}

/**
 * Host ports forwarded to the guest, bound to 127.0.0.1 only. A VM keeps its
 * ports across restarts while they are free, so kubeconfig stays valid.
 */
export async function choosePorts(previous: Partial<UserPorts> | undefined): Promise<UserPorts> {
  const pick = async (prev: number | undefined, avoid: number[]): Promise<number> => {
    if (prev !== undefined && !avoid.includes(prev) && (await portIsFree(prev, LOOPBACK))) return prev;
    for (let i = 0; i < 20; i += 1) {
      const p = await freePort(LOOPBACK);
      if (!avoid.includes(p)) return p;
    }
    throw new DevclusterError('NETWORK_PORT_UNAVAILABLE', 'could not find a free TCP port on 127.0.0.1');
  };
  const sshPort = await pick(previous?.sshPort, []);
  const apiServerPort = await pick(previous?.apiServerPort, [sshPort]);
  return { sshPort, apiServerPort };
}

export function userNetworkPlan(mac: string, ports: UserPorts): NetworkPlan {
  return {
    mode: 'user',
    mac,
    guestAddress: { kind: 'user-mode' },
    dns: [SLIRP_DNS],
    forwards: { ssh: { host: LOOPBACK, port: ports.sshPort }, apiServer: { host: LOOPBACK, port: ports.apiServerPort } },
  };
}
