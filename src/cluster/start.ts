import { randomBytes } from 'node:crypto';
import { endpointFor } from '../../drivers/driver.ts';
import type { AddressSource, Availability, BootImage, Driver, DriverContext, Endpoint, GuestAddress, NetworkPlan, PortRequest, VmState } from '../../drivers/driver.ts';
import { ensureProfileKeys } from '../ssh/keys.ts';
import type { ProfileKeys } from '../ssh/keys.ts';
import { pinHostKey } from '../ssh/known-hosts.ts';
import { waitForSsh } from '../ssh/readiness.ts';
import { writeSeedIso } from '../seed/seed.ts';
import type { SeedNetwork } from '../seed/seed.ts';
import { DevclusterError, isDevclusterError } from '../ui/errors.ts';
import './errors.ts';
import { StepRunner } from '../ui/steps.ts';
import type { StepTiming } from '../ui/steps.ts';
import { openProfile } from './profile-context.ts';
import type { LifecycleOptions, OpenProfile } from './profile-context.ts';
import { chooseImage, recordImage } from './image-step.ts';
import type { ImageChoice } from './image-step.ts';
import { DEFAULT_SEED_USER } from '../seed/spec.ts';
import { whileVmAlive } from './vm-watch.ts';
import { bootStalledError, watchBoot } from './boot-watchdog.ts';
import { checkElevation } from './elevation.ts';
import type { ProfileState } from '../profile/state.ts';
import { connect } from '../ssh/session.ts';
import { API_SERVER_PORT_REQUEST, startKubernetes } from './kubernetes-step.ts';
import type { ClusterDeadlines, KubernetesStepResult } from './kubernetes-step.ts';
import { ensureBundle, planBundle, resolveStartVersion } from './bundle-step.ts';
import type { BundlePlanOptions, BundleSource } from './bundle-step.ts';

/** Where the guest's cloud-init writes its "provisioning done" marker. */
export const READINESS_MARKER = '/var/lib/devcluster/ready';

const SSH_PORT: PortRequest = { name: 'ssh', guestPort: 22 };

const ADDRESS_SOURCE: Readonly<Record<AddressSource, string>> = {
  static: 'the static address in the network plan',
  'hypervisor-api': 'the hypervisor reports it once the guest tools run',
  'dhcp-leases': 'the DHCP server\'s leases',
  'port-forward': 'ports forwarded on 127.0.0.1',
};

export interface StartOptions extends LifecycleOptions, Pick<BundlePlanOptions, 'interactive' | 'confirmBuild'> {
  /** false with --no-kubernetes, true with --kubernetes; undefined: what the profile was created with (new: true). */
  kubernetes: boolean | undefined;
  /** Per-stage limits for SSH readiness (software emulation needs minutes). */
  sshTimeouts?: { banner: number; command: number; marker: number };
  /** For tests: how often a wait looks at the VM. */
  vmPollMs?: number;
  /** Console silence during boot, before SSH answered, after which the VM is reset once (default 3 min). */
  bootSilenceMs?: number;
  /** --keep-context: write the kubeconfig entries but leave kubectl's current context alone. */
  keepContext?: boolean;
  /** Limits of the waits after kubeadm (software emulation needs minutes). */
  clusterDeadlines?: ClusterDeadlines;
}

export interface StartResult {
  profile: string;
  driver: string;
  driverReason: string;
  created: boolean;
  alreadyRunning: boolean;
  ssh: { host: string; port: number; user: string };
  guestIp: string | undefined;
  kubernetes: Pick<KubernetesStepResult, 'version' | 'server' | 'context' | 'bootstrap' | 'images' | 'reissued'> | undefined;
  timings: StepTiming[];
  totalMs: number;
}

const DEFAULT_SSH_TIMEOUTS = { banner: 10 * 60_000, command: 3 * 60_000, marker: 10 * 60_000 };
// A booting guest under software emulation prints every few seconds; three silent minutes is a hang.
const DEFAULT_BOOT_SILENCE_MS = 3 * 60_000;

/** What a start needs to know before it writes anything. */
interface StartPlan {
  driver: Driver;
  reason: string;
  availability: Availability;
  kubernetes: boolean;
  /** The Kubernetes version to run, resolved and checked before anything is written. */
  kubernetesVersion: string | undefined;
  /** Where its node bundle comes from: the cache, or release servers that answered. */
  bundleSource: BundleSource | undefined;
  /** For a new VM; an existing VM keeps the base its disk was made from. */
  image: ImageChoice | undefined;
}

/**
 * `devcluster start`: everything is validated and chosen before the first
 * byte is written (driver, elevation, preflight, image), then each step is
 * idempotent, so a start after an interrupted one continues where it stopped,
 * and a start of a running cluster only verifies it.
 */
export async function startCluster(options: StartOptions): Promise<StartResult> {
  const started = performance.now();
  const p = await openProfile(options, false);
  const plan = await planStart(options, p);
  await p.acquire();
  let vmBooted = false;
  try {
    const existing = p.state.state;
    if (existing === undefined) {
      await p.state.init(p.name, plan.driver.info.name);
      await p.state.update((st) => {
        st.requested = { kubernetes: plan.kubernetes };
      });
    } else warnImmutable(p, options);
    const dctx = p.driverContext();
    const steps = new StepRunner(options.out);
    const vmState = await plan.driver.state(dctx);

    const { image, keys } = await steps.run('Preparing the guest image and SSH keys', async (update) => ({
      image: plan.image === undefined ? undefined : await recordImage(p, plan.image, plan.driver, options.signal, update),
      keys: await ensureProfileKeys(p.paths.keys),
    }));
    const bundle = plan.kubernetesVersion === undefined ? undefined : await steps.run(`Preparing the Kubernetes ${plan.kubernetesVersion} node bundle`, (update) => ensureBundle(p, plan.kubernetesVersion as string, plan.bundleSource ?? { kind: 'cached' }, options.signal, update));
    const ports = plan.kubernetes ? [SSH_PORT, API_SERVER_PORT_REQUEST] : [SSH_PORT];
    const network = await steps.run('Setting up the VM network', () => plan.driver.ensureNetwork(dctx, { ports }));
    let created = false;
    if (p.state.require().created !== undefined) await steps.skip('Creating the VM', 'it exists');
    else {
      // Another start may have created the VM between planning and locking; then the branch above is taken.
      if (image === undefined) throw new Error('start: no base image was chosen for a VM that does not exist yet');
      await steps.run('Creating the VM', () => createVm(p, plan, dctx, { image, keys, network, dataIsos: bundle === undefined ? [] : [bundle.medium.path] }));
      created = true;
    }
    // Set before the boot: a driver that fails after its VM came up leaves it running too
    // (withNextSteps asks the driver whether it runs).
    vmBooted = true;
    // Only a boot this start begins is watched for a stall: a resumed or running guest is never reset.
    const freshBoot = vmState !== 'running' && vmState !== 'paused' && vmState !== 'saved' ? Date.now() : undefined;
    if (vmState === 'running') await steps.skip('Starting the VM', 'already running');
    else await steps.run('Starting the VM', () => bootVm(plan.driver, dctx, vmState));
    const reached = await steps.run('Waiting for the guest (SSH)', (update) => waitForGuest(options, p, plan.driver, dctx, { keys, network, freshBoot }, update));
    let kubernetes: KubernetesStepResult | undefined;
    if (bundle !== undefined) {
      const ssh = await connect({ host: reached.ssh.host, port: reached.ssh.port, username: DEFAULT_SEED_USER, privateKeyPath: keys.clientPrivateKeyPath, expectedHostKey: keys.hostPublicKey, signal: options.signal });
      try {
        kubernetes = await whileVmAlive(plan.driver, dctx, (signal) => startKubernetes({
          p,
          steps,
          ssh,
          address: reached.address,
          bundle,
          registryMirror: registryMirror(p.settings),
          keepContext: options.keepContext === true,
          ...(options.clusterDeadlines === undefined ? {} : { deadlines: options.clusterDeadlines }),
          signal,
        }), options.vmPollMs === undefined ? {} : { pollMs: options.vmPollMs });
      } finally {
        ssh.dispose();
      }
    }
    return {
      profile: p.name,
      driver: plan.driver.info.name,
      driverReason: plan.reason,
      created,
      alreadyRunning: vmState === 'running',
      ssh: { ...reached.ssh, user: DEFAULT_SEED_USER },
      guestIp: reached.address.ip,
      kubernetes: kubernetes === undefined ? undefined : { version: kubernetes.version, server: kubernetes.server, context: kubernetes.context, bootstrap: kubernetes.bootstrap, images: kubernetes.images, reissued: kubernetes.reissued },
      timings: steps.timings,
      totalMs: Math.round(performance.now() - started),
    };
  } catch (e) {
    throw vmBooted ? await withNextSteps(e, p, plan.driver) : e;
  } finally {
    await p.release();
  }
}

/** Chooses everything a start depends on, changing nothing on disk. */
async function planStart(options: StartOptions, p: OpenProfile): Promise<StartPlan> {
  const existing = p.state.state;
  if (existing?.status === 'Deleting') {
    const flag = p.name === 'devcluster' ? '' : ` -p ${p.name}`;
    throw new DevclusterError('PROFILE_BEING_DELETED', `profile ${p.name} was being deleted when that command stopped; its VM may be partly removed`, {
      advice: `Finish the delete with \`devcluster delete${flag}\`, then \`devcluster start${flag}\` creates it anew.`,
    });
  }
  const kubernetes = options.kubernetes ?? existing?.created?.kubernetes ?? existing?.requested?.kubernetes ?? true;
  if (existing?.created !== undefined && options.kubernetes !== undefined && options.kubernetes !== existing.created.kubernetes) {
    const flag = p.name === 'devcluster' ? '' : ` -p ${p.name}`;
    throw new DevclusterError('KUBERNETES_CHOICE_IMMUTABLE', `profile ${p.name} was created ${existing.created.kubernetes ? 'with' : 'without'} Kubernetes`, {
      advice: `Start it as it was created (\`devcluster start${flag}\`), or \`devcluster delete${flag}\` and start it again ${options.kubernetes ? 'without --no-kubernetes' : 'with --no-kubernetes'}.`,
      input: true,
    });
  }
  const kubernetesVersion = kubernetes ? await resolveStartVersion(p, options.signal) : undefined;
  const hostCtx = { home: p.home, settings: p.settings, platform: process.platform, signal: options.signal };
  let driver: Driver;
  let reason: string;
  let availability: Availability;
  if (existing !== undefined) {
    const requested = String(p.settings['driver']);
    if (requested !== 'auto' && requested !== existing.driver) {
      throw new DevclusterError('DRIVER_MISMATCH', `profile ${p.name} was created with the ${existing.driver} driver, not ${requested}`, {
        advice: `Run \`devcluster delete -p ${p.name}\` first to recreate it with another driver, or use another profile (-p).`,
        input: true,
      });
    }
    driver = await p.registry.loadForProfile(existing.driver);
    reason = 'the driver this profile was created with';
    availability = await driver.available(hostCtx);
  } else {
    ({ driver, reason, availability } = await p.registry.choose(String(p.settings['driver']), hostCtx));
  }
  options.out.info(`Using the ${driver.info.name} driver (${reason})`);
  const legacy = p.registry.find(driver.info.name)?.legacy;
  if (legacy !== undefined) options.out.warn(`${driver.info.displayName} is a legacy driver: ${legacy}.`);
  checkElevation(driver, availability, p.settings, existing === undefined ? 'create' : 'start');
  // The image first: its checks only read, while the preflight may run the hypervisor.
  const image = existing?.created === undefined ? await chooseImage(p, driver, options) : undefined;
  const bundleSource = kubernetesVersion === undefined ? undefined : await planBundle(p, kubernetesVersion, options);
  await preflight(options, p, driver.info.name);
  return { driver, reason, availability, kubernetes, kubernetesVersion, bundleSource, image };
}

async function createVm(p: OpenProfile, plan: StartPlan, dctx: DriverContext, input: { image: BootImage; keys: ProfileKeys; network: NetworkPlan; dataIsos: readonly string[] }): Promise<void> {
  const s = p.state.require();
  const instanceId = (s.driverData['instanceId'] as string | undefined) ?? `devcluster-${p.name}-${randomBytes(4).toString('hex')}`;
  await p.state.update((st) => {
    st.driverData['instanceId'] = instanceId;
  });
  await p.state.record('file', p.paths.seedIso);
  await writeSeedIso(p.paths.seedIso, {
    instanceId,
    hostname: p.name,
    authorizedKeys: [input.keys.clientPublicKey],
    hostKey: { privateKey: input.keys.hostPrivateKey, publicKey: input.keys.hostPublicKey },
    network: seedNetwork(plan.driver, input.network),
    readinessMarker: READINESS_MARKER,
  });
  const vm = { cpus: Number(p.settings['cpus']), memoryMiB: Number(p.settings['memory']), diskMiB: Number(p.settings['disk-size']) };
  await plan.driver.create(dctx, { ...vm, image: input.image, seedIso: p.paths.seedIso, dataIsos: input.dataIsos, network: input.network });
  await p.state.update((st) => {
    st.created = {
      ...vm,
      image: plan.image?.image ?? String(p.settings['image']),
      kubernetes: plan.kubernetes,
      ...(plan.kubernetesVersion === undefined ? {} : { kubernetesVersion: plan.kubernetesVersion }),
    };
    st.status = 'Stopped';
  });
}

function registryMirror(settings: Record<string, unknown>): string | undefined {
  const v = settings['registry-mirror'];
  return typeof v === 'string' && v !== '' ? v : undefined;
}

/** The seed matches the NIC by MAC only when the driver knows the MAC before the VM exists. */
function seedNetwork(driver: Driver, plan: NetworkPlan): SeedNetwork {
  const match = driver.info.features.macKnown === 'plan' && plan.mac !== undefined ? { mac: plan.mac } : {};
  if (plan.guestAddress.kind === 'static') {
    return { mode: 'static', ...match, address: plan.guestAddress.cidr, gateway: plan.guestAddress.gateway, dns: plan.dns };
  }
  return { mode: 'dhcp', ...match };
}

/** A paused or saved VM keeps its memory: it is resumed, never killed. */
async function bootVm(driver: Driver, dctx: DriverContext, state: VmState): Promise<void> {
  if (state === 'paused' || state === 'saved') {
    dctx.report(`the VM was ${state}; resuming it`);
    await driver.resume(dctx);
    return;
  }
  if (state === 'broken') {
    dctx.report('the VM was broken (its process runs but does not answer); restarting it', 'warn');
    await driver.kill(dctx);
  }
  await driver.start(dctx);
}

async function waitForGuest(
  options: StartOptions,
  p: OpenProfile,
  driver: Driver,
  dctx: DriverContext,
  guest: { keys: ProfileKeys; network: NetworkPlan; /** Epoch ms when this start began the VM's boot; undefined when it resumed or found it running. */ freshBoot: number | undefined },
  update: (detail: string) => void,
): Promise<{ address: GuestAddress; ssh: Endpoint }> {
  const { keys, network } = guest;
  const timeouts = options.sshTimeouts ?? DEFAULT_SSH_TIMEOUTS;
  const watch = options.vmPollMs === undefined ? {} : { pollMs: options.vmPollMs };
  const reach = async (signal: AbortSignal, disarm: () => void): Promise<{ address: GuestAddress; ssh: Endpoint }> => {
    const mode = driver.info.features.networkModes[network.mode];
    update(`finding the guest's address (${ADDRESS_SOURCE[mode?.address ?? 'static']})`);
    const address = await driver.address({ ...dctx, signal }, { deadline: Date.now() + timeouts.banner, onProgress: update });
    const ssh = endpointFor(address, SSH_PORT.guestPort);
    await pinHostKey(p.paths.knownHosts, ssh.host, ssh.port, keys.hostPublicKey);
    const result = await waitForSsh({
      host: ssh.host,
      port: ssh.port,
      username: DEFAULT_SEED_USER,
      privateKeyPath: keys.clientPrivateKeyPath,
      expectedHostKey: keys.hostPublicKey,
      marker: READINESS_MARKER,
      signal,
      timeouts,
      hint: { serialLog: p.paths.serialLog },
      onProgress: (stage, elapsed) => {
        if (stage !== 'banner') disarm();
        update(`${stage} (${Math.round(elapsed / 1000)}s)`);
      },
    });
    update(`ssh ready in ${(result.totalMs / 1000).toFixed(1)}s (${result.banner})`);
    await p.state.update((st) => {
      st.status = 'Running';
      st.ssh = { host: ssh.host, port: ssh.port, user: DEFAULT_SEED_USER };
      if (address.ip !== undefined) st.ip = address.ip;
      else delete st.ip;
    });
    return { address, ssh };
  };
  if (guest.freshBoot === undefined) return whileVmAlive(driver, dctx, (signal) => reach(signal, () => undefined), watch);
  const boot = { serialLog: p.paths.serialLog, silenceMs: options.bootSilenceMs ?? DEFAULT_BOOT_SILENCE_MS, bootStartedAt: guest.freshBoot, ...watch };
  try {
    return await whileVmAlive(driver, dctx, (signal) => watchBoot(boot, signal, reach), watch);
  } catch (e) {
    if (!isDevclusterError(e) || e.id !== 'GUEST_BOOT_STALLED') throw e;
    dctx.report(`${e.message}; resetting the VM once`, 'warn');
    await driver.kill(dctx);
    boot.bootStartedAt = Date.now();
    await driver.start(dctx);
  }
  try {
    return await whileVmAlive(driver, dctx, (signal) => watchBoot(boot, signal, reach), watch);
  } catch (e) {
    throw isDevclusterError(e) && e.id === 'GUEST_BOOT_STALLED' ? bootStalledError(boot.serialLog, boot.silenceMs, 1) : e;
  }
}

/**
 * A start that fails after the VM booted leaves it running (its memory and
 * CPUs in use): the error says so and what to do next, Ctrl-C included.
 */
async function withNextSteps(e: unknown, p: OpenProfile, driver: Driver): Promise<unknown> {
  const state = await driver.state(p.driverContext()).catch(() => undefined);
  if (state !== 'running' && state !== 'starting' && state !== 'paused') return e;
  const created: ProfileState['created'] = p.state.state?.created;
  const size = created === undefined ? '' : ` (${created.memoryMiB} MiB, ${created.cpus} vCPUs)`;
  const flag = p.name === 'devcluster' ? '' : ` -p ${p.name}`;
  const next = `The VM is still running${size}. Continue with \`devcluster start${flag}\`, look inside with \`devcluster ssh${flag}\`, or remove it with \`devcluster delete${flag}\`.`;
  if (!isDevclusterError(e)) return new DevclusterError('INTERNAL_ERROR', e instanceof Error ? e.message : String(e), { advice: next, details: { vmStillRunning: true }, cause: e });
  return new DevclusterError(e.id, e.message, {
    advice: e.advice === undefined ? next : `${e.advice}\n${next}`,
    ...(e.docs === undefined ? {} : { docs: e.docs }),
    details: { ...e.details, vmStillRunning: true },
    cause: e,
  });
}

/** A created VM keeps its size: say so rather than silently ignoring a flag. */
function warnImmutable(p: OpenProfile, options: StartOptions): void {
  const created = p.state.state?.created;
  if (created === undefined) return;
  const pairs: Array<[string, unknown, unknown]> = [
    ['cpus', created.cpus, p.settings['cpus']],
    ['memory', created.memoryMiB, p.settings['memory']],
    ['disk-size', created.diskMiB, p.settings['disk-size']],
  ];
  for (const [key, was, now] of pairs) {
    if (p.config.settings[key]?.source === 'flag' && Number(was) !== Number(now)) {
      options.out.warn(`${key} of an existing cluster cannot change (it has ${String(was)}); delete it and start again to change it`);
    }
  }
}

/**
 * The doctor's fatal checks for this driver, before anything is created: a
 * failure stops the start with the check's ID and advice; warnings are shown.
 */
async function preflight(options: StartOptions, p: OpenProfile, driver: string): Promise<void> {
  const { createDoctorContext } = await import('../doctor/context.ts');
  const { runPreflight } = await import('../doctor/preflight.ts');
  // The driver was chosen from p.registry, which the doctor's name lookup does not
  // know; runPreflight sets it. The fatal checks need no live VM (vm: null).
  const ctx = await createDoctorContext({ home: options.home, profileFlag: p.name, config: p.config, vm: null });
  for (const r of await runPreflight(ctx, driver)) {
    if (r.status === 'warn' && !r.muted) options.out.warn(`${r.title}: ${r.summary}`);
  }
}
