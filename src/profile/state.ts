import { readTextFile, unreadableReason, writeJsonAtomic } from './atomic.ts';
import { DevclusterError } from '../ui/errors.ts';

/**
 * Something devcluster created on the host. It is recorded in the profile's
 * state BEFORE it is created, so `delete` can remove exactly what devcluster
 * made, even after a crash half-way through a start.
 */
export interface HostResource {
  /** e.g. file, dir, process, bridge, tap, nft-table, dnsmasq, sysctl, vm, switch, nat. */
  kind: string;
  /** Unique within its kind: a path, an interface name, a VM name. */
  id: string;
  createdAt: string;
  /** Whatever the owner needs to undo it (previous sysctl value, ...). */
  details?: Record<string, unknown>;
  /** Resources shared by several profiles (a bridge) name their users here. */
  shared?: boolean;
}

export type ClusterStatus = 'Creating' | 'Running' | 'Stopped' | 'Stopping' | 'Deleting' | 'Broken';

export interface ProfileState {
  schemaVersion: 1;
  profile: string;
  driver: string;
  status: ClusterStatus;
  createdAt: string;
  updatedAt: string;
  /** What the first start asked for, kept so a start that continues it needs no flag repeated. */
  requested?: { kubernetes: boolean };
  /** The settings the VM was created with; later flags cannot change them. */
  created?: { cpus: number; memoryMiB: number; diskMiB: number; image: string; kubernetes: boolean; kubernetesVersion?: string };
  /** The base image the VM's disk depends on (src/image/resolve.ts ImageStateRecord). */
  image?: { name: string; sha256: string; format: string; [more: string]: unknown };
  ip?: string;
  ssh?: { host: string; port: number; user: string };
  /** The API server URL the host's kubeconfig uses. */
  apiServer?: string;
  /** Set once Kubernetes answered: the version, the address the API server advertises, the kubeconfig context. */
  kubernetes?: { version: string; guestIp: string; context: string; bootstrappedAt: string };
  resources: HostResource[];
  /** Driver-private facts (ports, pid file, tap name); only the driver reads them. */
  driverData: Record<string, unknown>;
}

const RECOVERY_ADVICE = '`devcluster delete` still removes this profile: it stops the VM it can prove is this profile\'s, removes the profile\'s files and its entries in devcluster\'s shared network registry, and says what it could not verify.';

/** Why a state file's text is not a usable state, or undefined when it is. */
export function stateProblem(text: string): string | undefined {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (e) {
    return unreadableReason(e);
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return 'it does not hold a JSON object';
  const o = value as Record<string, unknown>;
  const missing = (['profile', 'driver'] as const).filter((key) => typeof o[key] !== 'string').map((key) => `the field "${key}" is missing or not a string`);
  // Every state devcluster writes has a status: without one the file was cut short or is not ours.
  if (typeof o['status'] !== 'string' || o['status'] === '') missing.push('it records no status (the file is truncated or was not written by devcluster)');
  if (missing.length > 0) return missing.join('; ');
  if (o['resources'] !== undefined && !Array.isArray(o['resources'])) return 'the field "resources" is not a list';
  return undefined;
}

/** Serialises every change to one state file through an atomic write. */
export class StateStore {
  readonly path: string;
  private current: ProfileState | undefined;
  private raw: string | undefined;

  constructor(path: string) {
    this.path = path;
  }

  async load(): Promise<ProfileState | undefined> {
    const text = await readTextFile(this.path);
    if (text === undefined) {
      this.current = undefined;
      return undefined;
    }
    this.raw = text;
    const problem = stateProblem(text);
    if (problem !== undefined) {
      throw new DevclusterError('CONFIG_FILE_CORRUPT', `${this.path} is damaged: ${problem}`, { advice: RECOVERY_ADVICE, details: { stateFile: this.path } });
    }
    const state = JSON.parse(text) as ProfileState;
    state.resources ??= [];
    state.driverData ??= {};
    this.current = state;
    return state;
  }

  /**
   * For `delete` of a profile whose state is damaged: an in-memory state
   * with the driver named in the damaged text (when it can be read), so
   * the driver removes what it can prove from its own files and the
   * shared registries.
   */
  recover(profile: string, fallbackDriver: string): ProfileState {
    const now = new Date().toISOString();
    const driver = /"driver"\s*:\s*"([a-z0-9-]+)"/.exec(this.raw ?? '')?.[1] ?? fallbackDriver;
    this.current = { schemaVersion: 1, profile, driver, status: 'Deleting', createdAt: now, updatedAt: now, resources: [], driverData: {} };
    return this.current;
  }

  get state(): ProfileState | undefined {
    return this.current;
  }

  require(): ProfileState {
    if (this.current === undefined) throw new Error(`state ${this.path} was not loaded or created`);
    return this.current;
  }

  async init(profile: string, driver: string): Promise<ProfileState> {
    const now = new Date().toISOString();
    this.current = { schemaVersion: 1, profile, driver, status: 'Creating', createdAt: now, updatedAt: now, resources: [], driverData: {} };
    await this.save();
    return this.current;
  }

  async update(change: (s: ProfileState) => void): Promise<ProfileState> {
    const s = this.require();
    change(s);
    await this.save();
    return s;
  }

  /** Records a resource before it is created (idempotent). */
  async record(kind: string, id: string, details?: Record<string, unknown>, shared = false): Promise<void> {
    await this.update((s) => {
      if (s.resources.some((r) => r.kind === kind && r.id === id)) return;
      s.resources.push({ kind, id, createdAt: new Date().toISOString(), ...(details === undefined ? {} : { details }), ...(shared ? { shared } : {}) });
    });
  }

  async forget(kind: string, id: string): Promise<void> {
    await this.update((s) => {
      s.resources = s.resources.filter((r) => !(r.kind === kind && r.id === id));
    });
  }

  has(kind: string, id: string): boolean {
    return this.current?.resources.some((r) => r.kind === kind && r.id === id) ?? false;
  }

  private async save(): Promise<void> {
    const s = this.require();
    s.updatedAt = new Date().toISOString();
    await writeJsonAtomic(this.path, s, { mode: 0o600 });
  }
}
