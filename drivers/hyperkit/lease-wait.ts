import { setTimeout as sleep } from 'node:timers/promises';
import { readDhcpdLease } from '../../src/host/dhcpd-leases.ts';
import { DevclusterError } from '../../src/ui/errors.ts';
import './errors.ts';

export interface LeaseWait {
  leasesFile: string;
  mac: string;
  /** Epoch milliseconds. */
  deadline: number;
  signal: AbortSignal;
  /** Whether the VM still runs: a dead VM gets no lease, and the wait says so at once. */
  alive: () => Promise<boolean>;
  /** hyperkit's own last output, for the error when it exited. */
  lastWords: () => Promise<string>;
  onProgress?: (detail: string) => void;
  pollMs?: number;
}

/**
 * Polls bootpd's leases for the VM's MAC until an address appears. Running
 * out of time names what usually causes it on a Mac, since bootpd itself
 * logs nothing a user would find.
 */
export async function waitForLease(w: LeaseWait): Promise<string> {
  const started = Date.now();
  for (;;) {
    w.signal.throwIfAborted();
    const lease = await readDhcpdLease(w.mac, w.leasesFile, { now: Math.floor(Date.now() / 1000) });
    if (lease !== undefined) return lease.ipAddress;
    if (!(await w.alive())) {
      const words = await w.lastWords();
      throw new DevclusterError('HYPERKIT_EXITED', `hyperkit exited before the guest got an address${words === '' ? '' : `: ${words.split('\n').pop() ?? ''}`}`, {
        advice: 'Its output is in the profile\'s logs/hyperkit.log and the guest\'s console in logs/console-ring.',
        details: { hyperkitOutput: words },
      });
    }
    if (Date.now() >= w.deadline) {
      throw new DevclusterError('HYPERKIT_NO_LEASE', `no DHCP lease for ${w.mac} in ${w.leasesFile} after ${Math.round((Date.now() - started) / 1000)}s`, {
        advice: [
          'The usual causes on a Mac:',
          '    - the application firewall blocks bootpd: sudo /usr/libexec/ApplicationFirewall/socketfilterfw --add /usr/libexec/bootpd --unblockapp /usr/libexec/bootpd',
          '    - a VPN routes 192.168.64.0/24 (vmnet\'s shared subnet) into its tunnel: disconnect it and start again',
          '    - the guest did not boot far enough to ask for an address: read the profile\'s logs/console-ring (a ring buffer padded with NUL bytes)',
          '    `devcluster doctor --driver hyperkit` checks the first two.',
        ].join('\n'),
      });
    }
    w.onProgress?.(`waiting for a DHCP lease for ${w.mac} (${Math.round((Date.now() - started) / 1000)}s)`);
    await sleep(w.pollMs ?? 2000, undefined, { signal: w.signal }).catch(() => undefined);
  }
}
