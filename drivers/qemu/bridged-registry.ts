import { join } from 'node:path';
import { rm } from 'node:fs/promises';
import { readJsonIfExists, writeJsonAtomic } from '../../src/profile/atomic.ts';
import { networkDir } from '../../src/profile/host-network-lock.ts';
import { DevclusterError } from '../../src/ui/errors.ts';

/**
 * $DEVCLUSTER_HOME/network/bridges.json: what devcluster created on the host
 * for bridged networking that several profiles share (bridges, the nftables
 * table, the ip_forward change), and which profile uses which address. Each
 * profile's state also records the shared resources it uses; this file is
 * what tells the last user that it is the last.
 */
export interface BridgeUser {
  mac: string;
  ip: string;
  tap: string;
}

export interface BridgeEntry {
  subnet: string;
  gateway: string;
  createdAt: string;
  /**
   * False between `ip link add` and the alias that marks it as ours: a bridge
   * without the mark is ours only while this says the mark is still pending.
   */
  marked: boolean;
  users: Record<string, BridgeUser>;
}

export interface NetworkRegistry {
  schemaVersion: 1;
  bridges: Record<string, BridgeEntry>;
  /** Set once devcluster has (or is about to have) created `table ip devcluster`. */
  nftTable?: { createdAt: string };
  /** Set when devcluster turned net.ipv4.ip_forward on; `previous` is restored by the last user. */
  ipForward?: { previous: string; changedAt: string };
}

export function registryPath(home: string): string {
  return join(networkDir(home), 'bridges.json');
}

export function bridgeDir(home: string, bridge: string): string {
  return join(networkDir(home), bridge);
}

export function emptyRegistry(): NetworkRegistry {
  return { schemaVersion: 1, bridges: {} };
}

export async function loadRegistry(home: string): Promise<NetworkRegistry> {
  const path = registryPath(home);
  let raw: unknown;
  try {
    raw = await readJsonIfExists(path);
  } catch (e) {
    throw new DevclusterError('CONFIG_FILE_CORRUPT', `${path} is not valid JSON: ${(e as Error).message}`, {
      advice: 'It lists the bridges devcluster created. Inspect them with `ip -d link show type bridge` and `nft list table ip devcluster`, remove them by hand (docs/networking.md), then delete the file.',
    });
  }
  if (raw === undefined) return emptyRegistry();
  const r = raw as Partial<NetworkRegistry>;
  return { ...r, schemaVersion: 1, bridges: r.bridges ?? {} } as NetworkRegistry;
}

/** An empty registry is removed, so a host without devcluster bridges has no network/ state. */
export async function saveRegistry(home: string, registry: NetworkRegistry): Promise<void> {
  const empty = Object.keys(registry.bridges).length === 0 && registry.nftTable === undefined && registry.ipForward === undefined;
  if (empty) {
    await rm(registryPath(home), { force: true });
    return;
  }
  await writeJsonAtomic(registryPath(home), registry, { mode: 0o600 });
}

/** Reservations of every profile on a bridge, for dnsmasq. */
export function reservationsOf(entry: BridgeEntry): Array<{ mac: string; ip: string }> {
  return Object.values(entry.users).map((u) => ({ mac: u.mac, ip: u.ip }));
}
