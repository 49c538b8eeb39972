import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { rm } from 'node:fs/promises';
import type { DriverContext, NetworkPlan } from '../driver.ts';
import { formatCidr, intToIpv4, parseCidr } from '../../src/host/ipv4.ts';
import { readJsonIfExists, writeJsonAtomic } from '../../src/profile/atomic.ts';
import { DevclusterError } from '../../src/ui/errors.ts';
import { networkDir, withNetworkLock } from '../../src/profile/host-network-lock.ts';
import { chooseNatSubnet, natConflict, parseHostAddresses, parseNetNats, parseRoutes } from './host-network.ts';
import {
  DEVCLUSTER_NOTE,
  findAdapterScript,
  findSwitchScript,
  hostAdapterScript,
  hostNetworkScript,
  icsDisableScript,
  icsEnableScript,
  icsStatusScript,
  newExternalSwitchScript,
  newInternalSwitchScript,
  newNetNatScript,
  removeHostAddressScript,
  removeNetNatScript,
  removeSwitchScript,
  setHostAddressScript,
  switchVmsScript,
} from './network-scripts.ts';
import { DEFAULT_SWITCH_ID, parseVmSwitches, records, stringField } from './output.ts';
import type { VmSwitchInfo } from './output.ts';
import type { Runner } from './runner.ts';

/**
 * The VM's network on the Windows host, per mode:
 * - winnat (default): devcluster's Internal switch, the gateway address on
 *   its host adapter, a NetNat over the subnet, a static guest address;
 * - ics: devcluster's Internal switch shared through Internet Connection
 *   Sharing (DHCP in 192.168.137.0/24);
 * - switch: an existing switch (the Default Switch by its fixed Id);
 * - external: an External switch on a physical adapter.
 * What devcluster creates is shared by every profile of the mode, so it
 * lives in a host-wide registry ($DEVCLUSTER_HOME/network/hyperv.json) that
 * says what devcluster created and who uses it; each thing is written there
 * (and in the profile's state) before the script that creates it runs, and
 * the last user removes only what the registry says devcluster created.
 */

export type HypervNetworkMode = 'winnat' | 'ics' | 'switch' | 'external';

export const OWN_SWITCH = 'devcluster';
export const ICS_SWITCH = 'devcluster-ics';
export const EXTERNAL_SWITCH = 'devcluster-external';
export const NAT_NAME = 'devcluster-nat';
export const ICS_SUBNET = '192.168.137.0/24';
export const ICS_GATEWAY = '192.168.137.1';
/** WinNAT has no DNS proxy: the guest asks public resolvers. */
export const WINNAT_DNS = ['1.1.1.1', '8.8.8.8'];

export interface RegistryEntry {
  kind: 'switch' | 'host-address' | 'netnat' | 'ics';
  /** Known once created (a switch's Id); a pending entry is what a crash left between recording and creating. */
  id?: string;
  name?: string;
  subnet?: string;
  gateway?: string;
  switchId?: string;
  publicGuid?: string;
  privateGuid?: string;
  createdByDevcluster: boolean;
  createdAt: string;
  /** Profile name -> the guest address it was given (winnat) or '' */
  users: Record<string, string>;
}

export interface HypervRegistry {
  schemaVersion: 1;
  entries: Record<string, RegistryEntry>;
}

export function hypervRegistryPath(home: string): string {
  return join(networkDir(home), 'hyperv.json');
}

export async function loadHypervRegistry(home: string): Promise<HypervRegistry> {
  const path = hypervRegistryPath(home);
  let raw: unknown;
  try {
    raw = await readJsonIfExists(path);
  } catch (e) {
    throw new DevclusterError('CONFIG_FILE_CORRUPT', `${path} is not valid JSON: ${(e as Error).message}`, {
      advice: 'It lists the switches, addresses and NetNats devcluster created. Compare with Hyper-V\\Get-VMSwitch and NetNat\\Get-NetNat, remove what devcluster made by hand (docs/drivers/hyperv.md), then delete the file.',
    });
  }
  const r = (raw ?? {}) as Partial<HypervRegistry>;
  return { schemaVersion: 1, entries: r.entries ?? {} };
}

async function saveHypervRegistry(home: string, registry: HypervRegistry): Promise<void> {
  if (Object.keys(registry.entries).length === 0) {
    await rm(hypervRegistryPath(home), { force: true });
    return;
  }
  await writeJsonAtomic(hypervRegistryPath(home), registry, { mode: 0o600 });
}

/** The mode a profile uses: the one it was made with, else from the settings. */
export function modeFromSettings(settings: Readonly<Record<string, unknown>>): HypervNetworkMode {
  if (String(settings['hyperv-external-adapter'] ?? '') !== '') return 'external';
  if (String(settings['hyperv-virtual-switch'] ?? '') !== '') return 'switch';
  return settings['hyperv-nat'] === 'ics' ? 'ics' : 'winnat';
}

/**
 * Whether devcluster's network for the mode already exists (recorded in the
 * registry), so that using it needs only the right to manage VMs; creating
 * it needs Administrator.
 */
export async function networkRecorded(home: string, mode: HypervNetworkMode): Promise<boolean> {
  const entries = Object.entries((await loadHypervRegistry(home)).entries);
  const has = (test: (key: string, e: RegistryEntry) => boolean) => entries.some(([k, e]) => test(k, e));
  switch (mode) {
    case 'switch':
      return true;
    case 'winnat':
      return has((k, e) => k === `switch:${OWN_SWITCH}` && e.id !== undefined) && has((k) => k.startsWith('host-address:'));
    case 'ics':
      return has((k, e) => k === `switch:${ICS_SWITCH}` && e.id !== undefined) && has((k) => k.startsWith('ics:'));
    case 'external':
      return has((k, e) => k.startsWith(`switch:${EXTERNAL_SWITCH}:`) && e.id !== undefined);
  }
}

/** What the driver keeps about the network in the profile's driver data. */
export interface NetworkData {
  mode: HypervNetworkMode;
  switchId: string;
  switchName: string;
  mac: string;
  subnet?: string;
  gateway?: string;
  guest?: string;
  /** Registry keys this profile is a user of. */
  uses: string[];
}

/** A locally administered unicast MAC (02:...), stable for the profile: Hyper-V's own 00:15:5D pool could hand it out again. */
export function newMac(): string {
  const b = randomBytes(5);
  return ['02', ...[...b].map((x) => x.toString(16).padStart(2, '0'))].join(':');
}

/** 02:ab:... -> 02AB... (Set-VMNetworkAdapter -StaticMacAddress's spelling). */
export function hypervMac(mac: string): string {
  return mac.replace(/:/g, '').toUpperCase();
}

export interface NetworkDeps {
  run: Runner;
  /** Throws HYPERV_RIGHTS unless the token has the right. */
  requireAdministrator(what: string): Promise<void>;
}

interface Session {
  ctx: DriverContext;
  deps: NetworkDeps;
  registry: HypervRegistry;
}

async function commit(s: Session): Promise<void> {
  await saveHypervRegistry(s.ctx.home, s.registry);
}

/** Records this profile as a user of an entry (registry and the profile's state, as a shared resource). */
async function use(s: Session, key: string, entry: RegistryEntry, value = ''): Promise<void> {
  entry.users[s.ctx.profile] = value;
  s.registry.entries[key] = entry;
  await commit(s);
  await s.ctx.state.record(`hyperv-${entry.kind}`, key, { createdByDevcluster: entry.createdByDevcluster }, true);
}

function fresh(kind: RegistryEntry['kind'], fields: Partial<RegistryEntry>): RegistryEntry {
  return { kind, createdByDevcluster: true, createdAt: new Date().toISOString(), users: {}, ...fields };
}

async function switches(s: Session, by: { id: string } | { name: string }): Promise<VmSwitchInfo[]> {
  return parseVmSwitches(await s.deps.run(findSwitchScript(by), { signal: s.ctx.signal }));
}

/**
 * devcluster's Internal switch of this name: the one the registry knows, or
 * one our notes mark that a crash left pending; created (after recording)
 * when there is none.
 */
async function ownInternalSwitch(s: Session, name: string): Promise<VmSwitchInfo> {
  const key = `switch:${name}`;
  const known = s.registry.entries[key];
  // By the recorded Id when there is one: a switch renamed by hand is still ours, and must not be made twice.
  const found = await switches(s, known?.id !== undefined ? { id: known.id } : { name });
  const ours = known?.id !== undefined ? found.find((x) => x.id === known.id) : found.find((x) => x.switchType === 'internal' && x.notes === DEVCLUSTER_NOTE && known !== undefined);
  if (ours !== undefined && known !== undefined) {
    known.id = ours.id;
    await use(s, key, known);
    return ours;
  }
  // Our note on a switch the registry does not know (the registry was lost, or another DEVCLUSTER_HOME made it):
  // used rather than duplicated, and never removed, since nothing here proves which devcluster made it.
  const noted = known === undefined ? found.find((x) => x.switchType === 'internal' && x.notes === DEVCLUSTER_NOTE) : undefined;
  if (noted !== undefined) {
    s.ctx.report(`using the existing switch "${noted.name}" (made by devcluster, but not recorded in this DEVCLUSTER_HOME: delete leaves it)`);
    await use(s, key, fresh('switch', { name, id: noted.id, createdByDevcluster: false }));
    return noted;
  }
  await s.deps.requireAdministrator(`creating the Internal switch "${name}"`);
  // A switch the registry knew but that is gone (removed by hand) is made again for the same users.
  const entry = known ?? fresh('switch', { name });
  entry.createdByDevcluster = true;
  delete entry.id;
  await use(s, key, entry);
  s.ctx.report(`creating the Hyper-V Internal switch "${name}"`);
  const created = parseVmSwitches(await s.deps.run(newInternalSwitchScript(name), { signal: s.ctx.signal }))[0];
  if (created === undefined) throw new Error('New-VMSwitch printed no switch');
  entry.id = created.id;
  await commit(s);
  return created;
}

interface HostAdapter {
  interfaceIndex: number;
  interfaceGuid: string;
  addresses: string[];
}

async function hostAdapter(s: Session, switchId: string): Promise<HostAdapter | undefined> {
  const row = records(await s.deps.run(hostAdapterScript(switchId), { signal: s.ctx.signal }))[0];
  if (row === undefined) return undefined;
  const addresses = Array.isArray(row['Addresses']) ? (row['Addresses'] as unknown[]).filter((a): a is string => typeof a === 'string') : typeof row['Addresses'] === 'string' ? [row['Addresses']] : [];
  return { interfaceIndex: Number(row['InterfaceIndex']), interfaceGuid: stringField(row, 'InterfaceGuid') ?? '', addresses };
}

/** The next address in the subnet no other profile of the registry entry holds (from .2; .1 is the host). */
function guestAddressFor(entry: RegistryEntry, profile: string, subnet: string): string {
  const mine = entry.users[profile];
  if (mine !== undefined && mine !== '') return mine;
  const net = parseCidr(subnet);
  if (net === undefined) throw new Error(`bad subnet ${subnet}`);
  const taken = new Set(Object.values(entry.users));
  const size = 2 ** (32 - net.prefix);
  for (let i = 2; i < size - 1; i++) {
    const ip = intToIpv4(net.base + i);
    if (!taken.has(ip)) return ip;
  }
  throw new DevclusterError('HYPERV_NO_SUBNET', `every address of ${subnet} is given to another devcluster profile`, { advice: 'Delete a profile you no longer need.' });
}

async function ensureWinnat(s: Session, mac: string): Promise<NetworkData> {
  const sw = await ownInternalSwitch(s, OWN_SWITCH);
  const switchKey = `switch:${OWN_SWITCH}`;
  const adapter = await hostAdapter(s, sw.id);
  if (adapter === undefined) throw new Error(`the switch "${sw.name}" has no host adapter`);
  const addressKey = `host-address:${sw.id}`;
  let addressEntry = s.registry.entries[addressKey];
  const facts = records(await s.deps.run(hostNetworkScript(), { signal: s.ctx.signal }))[0] ?? {};
  const nats = parseNetNats(facts['NetNats']);
  if (addressEntry?.subnet === undefined) {
    const preferred = String(s.ctx.settings['hyperv-nat-subnet'] ?? 'auto');
    const plan = chooseNatSubnet(
      { routes: parseRoutes(facts['Routes']), addresses: parseHostAddresses(facts['Addresses']), nats, ownInterfaceIndexes: [adapter.interfaceIndex], ownNatName: NAT_NAME },
      preferred === 'auto' ? undefined : preferred,
    );
    if (plan === undefined) {
      throw new DevclusterError('HYPERV_NO_SUBNET', preferred === 'auto' ? 'no free /24 for the devcluster switch: routes, addresses or NetNats cover every candidate in 172.16.0.0/12' : `--hyperv-nat-subnet ${preferred} overlaps a route, an address or a NetNat on this host`, {
        advice: 'Pick a free subnet with --hyperv-nat-subnet=<cidr>, or use --hyperv-nat=ics. `devcluster doctor --driver hyperv` lists what is in the way.',
      });
    }
    const net = parseCidr(plan.subnet) as { base: number; prefix: number };
    addressEntry = fresh('host-address', { switchId: sw.id, subnet: formatCidr(net), gateway: plan.gateway, createdByDevcluster: !adapter.addresses.includes(`${plan.gateway}/${net.prefix}`) });
  }
  const subnet = addressEntry.subnet as string;
  const gateway = addressEntry.gateway as string;
  const prefix = (parseCidr(subnet) as { prefix: number }).prefix;
  const guest = guestAddressFor(addressEntry, s.ctx.profile, subnet);
  await use(s, addressKey, addressEntry, guest);
  if (!adapter.addresses.includes(`${gateway}/${prefix}`)) {
    await s.deps.requireAdministrator(`giving the switch's host adapter the address ${gateway}`);
    s.ctx.report(`giving the devcluster switch's host adapter ${gateway}/${prefix}`);
    await s.deps.run(setHostAddressScript(sw.id, gateway, prefix), { signal: s.ctx.signal });
  }

  const natKey = `netnat:${NAT_NAME}`;
  // Our own NetNat from an earlier start is not an obstacle; any other one over the subnet is judged by natConflict.
  const oursExists = nats.some((n) => n.name === NAT_NAME && n.internalPrefix === subnet);
  const conflict = natConflict(nats.filter((n) => !(n.name === NAT_NAME && n.internalPrefix === subnet)), subnet);
  const uses = [switchKey, addressKey];
  if (conflict.kind === 'conflict') {
    throw new DevclusterError('HYPERV_NAT_CONFLICT', `the NetNat "${conflict.name}" (${conflict.prefix}) overlaps ${subnet}, and Windows translates a prefix for one NetNat only`, {
      advice: `Choose another subnet with --hyperv-nat-subnet=<cidr> (\`devcluster doctor --driver hyperv\` shows which are free), or remove that NetNat if nothing uses it any more (NetNat\\Remove-NetNat -Name '${conflict.name}', as Administrator), or use --hyperv-nat=ics.`,
    });
  }
  if (conflict.kind === 'reuse') {
    s.ctx.report(`reusing the existing NetNat "${conflict.name}", which already translates ${subnet}`);
  } else {
    const natEntry = s.registry.entries[natKey] ?? fresh('netnat', { name: NAT_NAME, subnet, createdByDevcluster: !oursExists });
    await use(s, natKey, natEntry);
    uses.push(natKey);
    if (!oursExists) {
      await s.deps.requireAdministrator('creating the NetNat for the devcluster switch');
      s.ctx.report(`creating the NetNat "${NAT_NAME}" for ${subnet}`);
      await s.deps.run(newNetNatScript(NAT_NAME, subnet), { signal: s.ctx.signal });
    }
  }
  return { mode: 'winnat', switchId: sw.id, switchName: sw.name, mac, subnet, gateway, guest, uses };
}

async function ensureIcs(s: Session, mac: string): Promise<NetworkData> {
  const sw = await ownInternalSwitch(s, ICS_SWITCH);
  const status = records(await s.deps.run(icsStatusScript(sw.id), { signal: s.ctx.signal }))[0] ?? {};
  const publicGuid = (stringField(status, 'Public') ?? '').toUpperCase();
  const privateGuid = (stringField(status, 'Private') ?? '').toUpperCase();
  if (publicGuid === '') {
    throw new DevclusterError('HYPERV_ICS_BUSY', 'this host has no default route, so there is no connection to share', { advice: 'Connect to a network first, or use --hyperv-nat=winnat.' });
  }
  if (privateGuid === '') throw new Error(`the switch "${sw.name}" has no host adapter`);
  const connections = records(status['Connections']);
  const sharedOthers = connections.filter((c) => c['SharingEnabled'] === true && ![publicGuid, privateGuid].includes((stringField(c, 'Guid') ?? '').toUpperCase()));
  if (sharedOthers.length > 0) {
    throw new DevclusterError('HYPERV_ICS_BUSY', `Internet Connection Sharing already shares ${sharedOthers.map((c) => `"${stringField(c, 'Name') ?? '?'}"`).join(' and ')}; Windows shares one pair of connections at a time`, {
      advice: 'Turn that sharing off (the adapter\'s Properties > Sharing) if you no longer need it, or use --hyperv-nat=winnat.',
    });
  }
  const key = `ics:${privateGuid}`;
  const enabled = (guid: string, type: number) => connections.some((c) => (stringField(c, 'Guid') ?? '').toUpperCase() === guid && c['SharingEnabled'] === true && Number(c['SharingConnectionType']) === type);
  const already = enabled(publicGuid, 0) && enabled(privateGuid, 1);
  const entry = s.registry.entries[key] ?? fresh('ics', { publicGuid, privateGuid, switchId: sw.id, createdByDevcluster: !already });
  await use(s, key, entry);
  if (!already) {
    await s.deps.requireAdministrator('sharing the internet connection with the devcluster switch');
    s.ctx.report(`sharing "${stringField(status, 'PublicName') ?? publicGuid}" with the switch "${sw.name}" (Internet Connection Sharing)`);
    await s.deps.run(icsEnableScript(publicGuid, privateGuid), { signal: s.ctx.signal });
  }
  return { mode: 'ics', switchId: sw.id, switchName: sw.name, mac, subnet: ICS_SUBNET, gateway: ICS_GATEWAY, uses: [`switch:${ICS_SWITCH}`, key] };
}

async function ensureExistingSwitch(s: Session, mac: string): Promise<NetworkData> {
  const wanted = String(s.ctx.settings['hyperv-virtual-switch'] ?? '');
  const isDefault = /^default( switch)?$/i.test(wanted);
  const found = isDefault ? await switches(s, { id: DEFAULT_SWITCH_ID }) : await switches(s, { name: wanted });
  // Two switches may share a name: an External one is what a user naming a switch usually means (minikube's rule too).
  const chosen = [...found].sort((a, b) => Number(b.switchType === 'external') - Number(a.switchType === 'external'))[0];
  if (chosen === undefined) {
    throw new DevclusterError('HYPERV_SWITCH_NOT_FOUND', isDefault ? 'this host has no Default Switch (Windows Server and some Enterprise editions do not create one)' : `no virtual switch is named "${wanted}"`, {
      advice: 'List the switches with Hyper-V\\Get-VMSwitch; or leave --hyperv-virtual-switch empty and devcluster creates its own switch with NAT.',
      input: true,
    });
  }
  if (chosen.switchType === 'private') s.ctx.report(`the switch "${chosen.name}" is Private: the host cannot reach the VM through it`, 'warn');
  return { mode: 'switch', switchId: chosen.id, switchName: chosen.name, mac, uses: [] };
}

async function ensureExternal(s: Session, mac: string): Promise<NetworkData> {
  const wanted = String(s.ctx.settings['hyperv-external-adapter'] ?? '');
  const row = records(await s.deps.run(findAdapterScript(wanted), { signal: s.ctx.signal }))[0];
  if (row === undefined) {
    throw new DevclusterError('HYPERV_ADAPTER_NOT_FOUND', `no physical network adapter is named or described "${wanted}"`, {
      advice: 'List them with NetAdapter\\Get-NetAdapter -Physical (the Name or the InterfaceDescription column).',
      input: true,
    });
  }
  const bound = parseVmSwitches(row['Switches'])[0];
  const key = `switch:${EXTERNAL_SWITCH}:${(stringField(row, 'InterfaceGuid') ?? '').toUpperCase()}`;
  const known = s.registry.entries[key];
  if (bound !== undefined) {
    if (known === undefined) return { mode: 'external', switchId: bound.id, switchName: bound.name, mac, uses: [] };
    // Ours only if it has the Id we recorded, or a crash left our entry pending and the switch bears our note; any other
    // switch on the adapter (ours removed by hand, the user's own made since) is used but never removed by delete.
    const ours = known.id === bound.id || (known.id === undefined && bound.notes === DEVCLUSTER_NOTE);
    if (!ours && known.createdByDevcluster) {
      s.ctx.report(`using the External switch "${bound.name}" now bound to that adapter (not the one devcluster made: delete leaves it)`);
      known.createdByDevcluster = false;
    }
    known.id = bound.id;
    await use(s, key, known);
    return { mode: 'external', switchId: bound.id, switchName: bound.name, mac, uses: [key] };
  }
  await s.deps.requireAdministrator(`creating an External switch on "${wanted}"`);
  // A recorded switch that is gone is made again for the same users: a fresh entry would drop the other profiles.
  const entry = known ?? fresh('switch', { name: EXTERNAL_SWITCH });
  entry.createdByDevcluster = true;
  delete entry.id;
  await use(s, key, entry);
  s.ctx.report(`creating the External switch "${EXTERNAL_SWITCH}" on "${stringField(row, 'Name') ?? wanted}" (the host's connection drops for a few seconds)`);
  const created = parseVmSwitches(await s.deps.run(newExternalSwitchScript(EXTERNAL_SWITCH, stringField(row, 'InterfaceDescription') ?? wanted), { signal: s.ctx.signal }))[0];
  if (created === undefined) throw new Error('New-VMSwitch printed no switch');
  entry.id = created.id;
  await commit(s);
  return { mode: 'external', switchId: created.id, switchName: created.name, mac, uses: [key] };
}

/** Builds (or finds) the network for the profile's mode and returns what the driver keeps. */
export async function ensureHypervNetwork(ctx: DriverContext, deps: NetworkDeps, previous: NetworkData | undefined): Promise<NetworkData> {
  const mode = previous?.mode ?? modeFromSettings(ctx.settings);
  const mac = previous?.mac ?? newMac();
  return withNetworkLock(ctx.home, ctx.signal, async () => {
    const s: Session = { ctx, deps, registry: await loadHypervRegistry(ctx.home) };
    switch (mode) {
      case 'winnat':
        return ensureWinnat(s, mac);
      case 'ics':
        return ensureIcs(s, mac);
      case 'switch':
        return ensureExistingSwitch(s, mac);
      case 'external':
        return ensureExternal(s, mac);
    }
  });
}

export function planOf(data: NetworkData): NetworkPlan {
  const base = { mode: data.mode, mac: data.mac, ...(data.subnet === undefined ? {} : { subnet: data.subnet }), ...(data.gateway === undefined ? {} : { gateway: data.gateway }) };
  if (data.mode === 'winnat' && data.guest !== undefined && data.subnet !== undefined && data.gateway !== undefined) {
    return { ...base, guestAddress: { kind: 'static', cidr: `${data.guest}/${data.subnet.split('/')[1] ?? '24'}`, gateway: data.gateway }, dns: WINNAT_DNS };
  }
  return { ...base, guestAddress: { kind: 'dhcp' }, dns: [] };
}

/** Undoes one registry entry devcluster created. */
async function removeEntry(s: Session, entry: RegistryEntry): Promise<void> {
  const opts = { signal: s.ctx.signal };
  switch (entry.kind) {
    case 'ics':
      if (entry.publicGuid !== undefined && entry.privateGuid !== undefined) await s.deps.run(icsDisableScript(entry.publicGuid, entry.privateGuid), opts);
      return;
    case 'netnat':
      if (entry.name !== undefined && entry.subnet !== undefined) await s.deps.run(removeNetNatScript(entry.name, entry.subnet), opts);
      return;
    case 'host-address':
      if (entry.switchId !== undefined && entry.gateway !== undefined) await s.deps.run(removeHostAddressScript(entry.switchId, entry.gateway), opts);
      return;
    case 'switch':
      if (entry.id !== undefined) await s.deps.run(removeSwitchScript(entry.id), opts);
      return;
  }
}

/** Teardown order: sharing and translation before the address, the address before its switch. */
const REMOVAL_ORDER: readonly RegistryEntry['kind'][] = ['ics', 'netnat', 'host-address', 'switch'];

/**
 * Drops the profile from every entry it uses; an entry nobody uses any more
 * is removed from the host when devcluster created it, and from the
 * registry either way.
 */
export async function releaseHypervNetwork(ctx: DriverContext, deps: NetworkDeps): Promise<void> {
  const recorded = (ctx.state.state?.resources ?? []).filter((r) => r.kind.startsWith('hyperv-') && r.shared === true).map((r) => r.id);
  await withNetworkLock(ctx.home, ctx.signal, async () => {
    const s: Session = { ctx, deps, registry: await loadHypervRegistry(ctx.home) };
    const mine = Object.entries(s.registry.entries).filter(([key, e]) => ctx.profile in e.users || recorded.includes(key));
    mine.sort(([, a], [, b]) => REMOVAL_ORDER.indexOf(a.kind) - REMOVAL_ORDER.indexOf(b.kind));
    const lastUser = (e: RegistryEntry) => Object.keys(e.users).every((u) => u === ctx.profile);
    const switchIds = mine.flatMap(([, e]) => (e.kind === 'switch' && e.createdByDevcluster && e.id !== undefined && lastUser(e) ? [e.id] : []));
    // A VM devcluster does not manage, connected to our switch since, would lose its network: the network stays (and
    // stays recorded, unused, for a later delete to remove).
    const strangers = switchIds.length === 0 ? [] : (await deps.run(switchVmsScript(switchIds), { signal: ctx.signal })).filter((n): n is string => typeof n === 'string');
    if (strangers.length > 0) ctx.report(`leaving devcluster's switch, host address and NAT in place: ${[...new Set(strangers)].map((n) => `"${n}"`).join(', ')} still connected to it`, 'warn');
    for (const [key, entry] of mine) {
      delete entry.users[ctx.profile];
      const kept = entry.createdByDevcluster && strangers.length > 0;
      if (Object.keys(entry.users).length === 0 && !kept) {
        if (entry.createdByDevcluster) {
          ctx.report(`removing ${describeEntry(entry)} (devcluster created it and no other profile uses it)`);
          await removeEntry(s, entry);
        }
        delete s.registry.entries[key];
      }
      await commit(s);
      await ctx.state.forget(`hyperv-${entry.kind}`, key);
    }
  });
}

function describeEntry(e: RegistryEntry): string {
  switch (e.kind) {
    case 'switch':
      return `the switch "${e.name ?? e.id ?? '?'}"`;
    case 'host-address':
      return `the host address ${e.gateway ?? '?'}`;
    case 'netnat':
      return `the NetNat "${e.name ?? '?'}"`;
    case 'ics':
      return 'Internet Connection Sharing';
  }
}
