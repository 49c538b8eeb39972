import { join } from 'node:path';
import { acquireProfileLock } from './lock.ts';

/** $DEVCLUSTER_HOME/network: the host-wide records of what devcluster created on the host's network, shared by profiles. */
export function networkDir(home: string): string {
  return join(home, 'network');
}

/**
 * Serialises changes to the host's network across devcluster processes (two
 * profiles starting at once share one bridge or switch, one NAT). Taken
 * inside the profile lock, never the other way round.
 */
export async function withNetworkLock<T>(home: string, signal: AbortSignal, fn: () => Promise<T>): Promise<T> {
  const lock = await acquireProfileLock('host network', join(networkDir(home), 'lock.json'), {
    command: 'network',
    wait: true,
    waitTimeoutMs: 120_000,
    signal,
  });
  try {
    return await fn();
  } finally {
    await lock.release();
  }
}
