import { join } from 'node:path';
import { DevclusterError } from '../ui/errors.ts';
import './errors.ts';
import { endpointFor } from '../../drivers/driver.ts';
import type { Endpoint } from '../../drivers/driver.ts';
import { openProfile } from './profile-context.ts';
import type { LifecycleOptions } from './profile-context.ts';
import { CLIENT_KEY_FILE } from '../ssh/keys.ts';
import { DEFAULT_SEED_USER } from '../seed/spec.ts';

export interface SshTarget {
  profile: string;
  host: string;
  port: number;
  user: string;
  privateKeyPath: string;
  knownHostsPath: string;
  /** The guest's own address when the host can route to it; undefined behind NAT port forwards. */
  guestIp: string | undefined;
  /** Forwarded guest ports (guest port -> host endpoint), when the guest sits behind NAT. */
  forwards: Record<number, Endpoint>;
  serialLog: string;
}

/** How to reach a running profile's guest; a clear error when it is not running. */
export async function sshTarget(options: LifecycleOptions): Promise<SshTarget> {
  const p = await openProfile(options, false);
  const s = p.existingState();
  const driver = await p.registry.loadForProfile(s.driver);
  const ctx = p.driverContext();
  const vm = await driver.state(ctx);
  if (vm !== 'running') {
    throw new DevclusterError('GUEST_NOT_RUNNING', `profile ${p.name} is not running (${vm})`, { advice: `Start it with \`devcluster start${p.name === 'devcluster' ? '' : ` -p ${p.name}`} --no-kubernetes\`.` });
  }
  const address = await driver.address(ctx, { deadline: Date.now() + 10_000 });
  const ssh = endpointFor(address, 22);
  return {
    profile: p.name,
    host: ssh.host,
    port: ssh.port,
    user: s.ssh?.user ?? DEFAULT_SEED_USER,
    privateKeyPath: join(p.paths.keys, CLIENT_KEY_FILE),
    knownHostsPath: p.paths.knownHosts,
    guestIp: address.ip,
    forwards: { ...address.forwards },
    serialLog: p.paths.serialLog,
  };
}
