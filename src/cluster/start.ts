import { randomBytes } from 'node:crypto';
import { chooseDriver, loadDriver } from '../../drivers/index.ts';
import type { BootImage, Driver, DriverContext, Endpoints, NetworkPlan, VmState } from '../../drivers/driver.ts';
import { ensureProfileKeys } from '../ssh/keys.ts';
import type { ProfileKeys } from '../ssh/keys.ts';
import { pinHostKey } from '../ssh/known-hosts.ts';
import { waitForSsh } from '../ssh/readiness.ts';
import { writeSeedIso } from '../seed/seed.ts';
import type { SeedNetwork } from '../seed/seed.ts';
import { DevclusterError } from '../ui/errors.ts';
import './errors.ts';
import { runSteps } from '../ui/steps.ts';
import type { StepTiming } from '../ui/steps.ts';
import { openProfile } from './profile-context.ts';
import type { LifecycleOptions, OpenProfile } from './profile-context.ts';
import { prepareImage } from './image-step.ts';
import { DEFAULT_SEED_USER } from '../seed/spec.ts';

/** Where the guest's cloud-init writes its "provisioning done" marker. */
export const READINESS_MARKER = '/var/lib/devcluster/ready';

export interface StartOptions extends LifecycleOptions {
  noKubernetes: boolean;
  /** Per-stage limits for SSH readiness (software emulation needs minutes). */
  sshTimeouts?: { banner: number; command: number; marker: number };
}

export interface StartResult {
  profile: string;
  driver: string;
  driverReason: string;
  created: boolean;
  alreadyRunning: boolean;
  ssh: { host: string; port: number; user: string };
  guestIp: string | undefined;
  timings: StepTiming[];
  totalMs: number;
}

interface StartContext {
  profile: OpenProfile;
  driver: Driver;
  driverCtx: DriverContext;
  vmState: VmState;
  keys?: ProfileKeys;
  image?: BootImage;
  plan?: NetworkPlan;
  endpoints?: Endpoints;
  created: boolean;
}

const DEFAULT_SSH_TIMEOUTS = { banner: 10 * 60_000, command: 3 * 60_000, marker: 10 * 60_000 };

function seedNetwork(plan: NetworkPlan): SeedNetwork {
  if (plan.guestAddress.kind === 'static') {
    return { mode: 'static', mac: plan.mac, address: plan.guestAddress.cidr, gateway: plan.guestAddress.gateway, dns: plan.dns };
  }
  return { mode: 'dhcp', mac: plan.mac };
}

/**
 * `devcluster start`: every step is idempotent, so a start after an
 * interrupted one continues where it stopped, and a start of a running
 * cluster only verifies it.
 */
export async function startCluster(options: StartOptions): Promise<StartResult> {
  if (!options.noKubernetes) {
    throw new DevclusterError('KUBERNETES_BOOTSTRAP_UNAVAILABLE', 'this build of devcluster starts the VM but cannot install Kubernetes in it yet', {
      advice: 'Run `devcluster start --no-kubernetes` for the VM alone (SSH, networking, the guest image). The kubeadm bootstrap is the next milestone.',
      input: true,
    });
  }
  const started = performance.now();
  const p = await openProfile(options, true);
  try {
    const existing = p.state.state;
    let driver: Driver;
    let reason: string;
    if (existing !== undefined) {
      const requested = String(p.settings['driver']);
      if (requested !== 'auto' && requested !== existing.driver) {
        throw new DevclusterError('DRIVER_MISMATCH', `profile ${p.name} was created with the ${existing.driver} driver, not ${requested}`, {
          advice: `Run \`devcluster delete -p ${p.name}\` first to recreate it with another driver, or use another profile (-p).`,
          input: true,
        });
      }
      driver = await loadDriver(existing.driver);
      reason = 'the driver this profile was created with';
    } else {
      ({ driver, reason } = await chooseDriver(String(p.settings['driver'])));
    }
    options.out.info(`Using the ${driver.info.name} driver (${reason})`);
    await preflight(options, p.name, driver.info.name);
    if (existing === undefined) await p.state.init(p.name, driver.info.name);
    else warnImmutable(p, options);

    const driverCtx = p.driverContext();
    const c: StartContext = { profile: p, driver, driverCtx, vmState: await driver.state(driverCtx), created: false };
    const alreadyRunning = c.vmState === 'running';

    const timings = await runSteps(options.out, [
      {
        title: 'Preparing the guest image and SSH keys',
        run: async (x, update) => {
          // An existing VM keeps the base image its disk was made from.
          const needImage = x.profile.state.require().created === undefined;
          const [image, keys] = await Promise.all([
            needImage ? prepareImage(x.profile, x.driver, options.signal, update) : Promise.resolve(undefined),
            ensureProfileKeys(x.profile.paths.keys),
          ]);
          if (image !== undefined) x.image = image;
          x.keys = keys;
        },
      },
      {
        title: 'Setting up the VM network',
        run: async (x) => {
          x.plan = await x.driver.ensureNetwork(x.driverCtx);
        },
      },
      {
        title: 'Creating the VM',
        skip: (x) => (x.profile.state.require().created !== undefined ? 'it exists' : false),
        run: async (x) => {
          const s = x.profile.state.require();
          const instanceId = (s.driverData['instanceId'] as string | undefined) ?? `devcluster-${x.profile.name}-${randomBytes(4).toString('hex')}`;
          await x.profile.state.update((st) => {
            st.driverData['instanceId'] = instanceId;
          });
          await x.profile.state.record('file', x.profile.paths.seedIso);
          await writeSeedIso(x.profile.paths.seedIso, {
            instanceId,
            hostname: x.profile.name,
            authorizedKeys: [x.keys?.clientPublicKey ?? ''],
            hostKey: { privateKey: x.keys?.hostPrivateKey ?? '', publicKey: x.keys?.hostPublicKey ?? '' },
            network: seedNetwork(x.plan as NetworkPlan),
            readinessMarker: READINESS_MARKER,
          });
          const image = x.image as BootImage;
          await x.driver.create(x.driverCtx, {
            cpus: Number(x.profile.settings['cpus']),
            memoryMiB: Number(x.profile.settings['memory']),
            diskMiB: Number(x.profile.settings['disk-size']),
            image,
            seedIso: x.profile.paths.seedIso,
            network: x.plan as NetworkPlan,
          });
          await x.profile.state.update((st) => {
            st.created = {
              cpus: Number(x.profile.settings['cpus']),
              memoryMiB: Number(x.profile.settings['memory']),
              diskMiB: Number(x.profile.settings['disk-size']),
              image: String(x.profile.settings['image']),
              kubernetes: !options.noKubernetes,
            };
            st.status = 'Stopped';
          });
          x.created = true;
        },
      },
      {
        title: 'Starting the VM',
        skip: (x) => (x.vmState === 'running' ? 'already running' : false),
        run: async (x) => {
          if (x.vmState === 'broken' || x.vmState === 'paused') {
            x.driverCtx.report(`the VM was ${x.vmState}; restarting it`, 'warn');
            await x.driver.kill(x.driverCtx);
          }
          await x.driver.start(x.driverCtx);
        },
      },
      {
        title: 'Waiting for the guest (SSH)',
        run: async (x, update) => {
          const endpoints = await x.driver.endpoints(x.driverCtx);
          x.endpoints = endpoints;
          const keys = x.keys as ProfileKeys;
          await pinHostKey(x.profile.paths.knownHosts, endpoints.ssh.host, endpoints.ssh.port, keys.hostPublicKey);
          const result = await waitForSsh({
            host: endpoints.ssh.host,
            port: endpoints.ssh.port,
            username: DEFAULT_SEED_USER,
            privateKeyPath: keys.clientPrivateKeyPath,
            expectedHostKey: keys.hostPublicKey,
            marker: READINESS_MARKER,
            signal: options.signal,
            timeouts: options.sshTimeouts ?? DEFAULT_SSH_TIMEOUTS,
            hint: { serialLog: x.profile.paths.serialLog },
            onProgress: (stage, elapsed) => update(`${stage} (${Math.round(elapsed / 1000)}s)`),
          });
          update(`ssh ready in ${(result.totalMs / 1000).toFixed(1)}s (${result.banner})`);
          await x.profile.state.update((st) => {
            st.status = 'Running';
            st.ssh = { host: endpoints.ssh.host, port: endpoints.ssh.port, user: DEFAULT_SEED_USER };
            if (endpoints.guestIp !== undefined) st.ip = endpoints.guestIp;
          });
        },
      },
    ], c);

    const ep = c.endpoints as Endpoints;
    return {
      profile: p.name,
      driver: driver.info.name,
      driverReason: reason,
      created: c.created,
      alreadyRunning,
      ssh: { host: ep.ssh.host, port: ep.ssh.port, user: DEFAULT_SEED_USER },
      guestIp: ep.guestIp,
      timings,
      totalMs: Math.round(performance.now() - started),
    };
  } finally {
    await p.release();
  }
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
async function preflight(options: StartOptions, profile: string, driver: string): Promise<void> {
  const { createDoctorContext } = await import('../doctor/context.ts');
  const { runPreflight } = await import('../doctor/preflight.ts');
  const { envName } = await import('../profile/settings.ts');
  // The doctor resolves settings itself; the start's flags reach it as the
  // environment variables they outrank, so it sees the same values.
  const env: NodeJS.ProcessEnv = { ...process.env };
  for (const [key, value] of Object.entries(options.flags ?? {})) if (value !== undefined) env[envName(key)] = value;
  const ctx = await createDoctorContext({ home: options.home, profileFlag: profile, driverFlag: driver, env });
  for (const r of await runPreflight(ctx, driver)) {
    if (r.status === 'warn' && !r.muted) options.out.warn(`${r.title}: ${r.summary}`);
  }
}
