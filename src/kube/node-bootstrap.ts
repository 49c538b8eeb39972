import { setTimeout as sleep } from 'node:timers/promises';
import { quoteShellArg } from '../host/posix-quote.ts';
import type { SshSession } from '../ssh/session.ts';
import { DevclusterError } from '../ui/errors.ts';
import type { BundleManifest } from './bundle-manifest.ts';
import { verifyBundleMedium } from './bundle-medium.ts';
import type { BundleMedium } from './bundle-medium.ts';
import { finishBundleInstall, importBundleImages, installBundleInGuest, mountBundleMedium, sudo, writeGuestFiles } from './guest-bundle.ts';
import type { MediumAccess } from './guest-bundle.ts';
import { CONTROL_PLANE_NAME, GUEST_ADMIN_KUBECONFIG, GUEST_KUBEADM_CONFIG, NODE_POD_CIDR, staticPodPatches } from './kubeadm-config.ts';
import { GUEST_BIN_DIR, MIRRORED_REGISTRIES, nodeFiles } from './node-files.ts';
import type { GuestFile } from './node-files.ts';
import './bootstrap-errors.ts';

/** Written after `kubeadm init` succeeded: a cluster with it starts warm, without kubeadm. */
const INIT_DONE_MARKER = '/var/lib/devcluster/kubeadm-init.done';
export const KUBEADM_INIT_LOG = '/var/log/devcluster/kubeadm-init.log';
const KUBECTL = `${GUEST_BIN_DIR}/kubectl --kubeconfig=${GUEST_ADMIN_KUBECONFIG} --request-timeout=15s`;

type Progress = (detail: string) => void;

/** The guest's address on its default route: what the API server advertises and the kubelet registers. */
export async function guestPrimaryAddress(ssh: SshSession): Promise<string> {
  const r = await ssh.run('ip -4 -o route get 1.1.1.1');
  const m = /\bsrc (\d+\.\d+\.\d+\.\d+)/.exec(r.stdout);
  if (m === null) {
    throw new DevclusterError('GUEST_COMMAND_FAILED', `the guest has no IPv4 default route, so the API server has no address to advertise (ip route get said: ${r.stdout.trim()})`, {
      advice: 'Look at the guest\'s network with `devcluster ssh -- ip addr; ip route`; the VM\'s network is set up by the driver and cloud-init.',
    });
  }
  return m[1] as string;
}

export interface PrepareNodeInput {
  bundle: { dir: string; manifest: BundleManifest };
  /** The ISO the VM has attached, holding this bundle. */
  medium: BundleMedium;
  sandboxImage: string;
  registryMirror?: string;
}

export interface PrepareNodeResult {
  bundle: 'installed' | 'unchanged';
  /** The images came with the bundle's preload. */
  imagesPreloaded: boolean;
  imagesImported: number;
  changedFiles: string[];
}

/**
 * Everything below Kubernetes: the bundle's binaries, containerd configured
 * and running with the bundle's images, the kernel modules and sysctls.
 * Each part is checked first, so a prepared node is only verified.
 */
export async function prepareNode(ssh: SshSession, input: PrepareNodeInput, progress: Progress): Promise<PrepareNodeResult> {
  const { medium } = input;
  // The host hashes the medium while the guest answers its first question; the guest reads nothing from it before the hash matched.
  const verified = verifyBundleMedium(medium);
  verified.catch(() => undefined);
  const access: MediumAccess = {
    label: medium.label,
    manifestSha256: medium.manifestSha256,
    mounted: false,
    async ready() {
      if (!this.mounted) {
        await mountBundleMedium(ssh, medium);
        this.mounted = true;
      }
      await verified;
    },
  };
  const { bundle, preloaded } = await installBundleInGuest(ssh, input.bundle.manifest, access, progress);
  progress('configuring containerd, the CNI network and kernel settings');
  const files = nodeFiles({ sandboxImage: input.sandboxImage, podCidr: NODE_POD_CIDR, ...(input.registryMirror === undefined ? {} : { registryMirror: input.registryMirror }) });
  const changedFiles = await writeGuestFiles(ssh, files);
  if (input.registryMirror === undefined) {
    // A mirror given to an earlier start and not to this one must stop applying.
    const stale = MIRRORED_REGISTRIES.map((r) => `/etc/containerd/certs.d/${r}/hosts.toml`);
    const removed = await ssh.run(sudo(`for f in ${stale.join(' ')}; do if [ -e "$f" ]; then rm -f "$f"; echo "$f"; fi; done`));
    changedFiles.push(...removed.stdout.split('\n').filter((l) => l !== ''));
  }
  const reload = changedFiles.some((f) => f.startsWith('/etc/systemd/')) ? `${reloadIfNeeded(['containerd.service', 'kubelet.service'])} && ` : '';
  const restart = changedFiles.some((f) => f.startsWith('/etc/containerd/') || f === '/etc/systemd/system/containerd.service');
  progress('starting containerd');
  const started = await ssh.run(sudo(`modprobe overlay && modprobe br_netfilter && sysctl --quiet --system >/dev/null && ${reload}{ ${ENABLE} containerd >/dev/null 2>&1; systemctl ${restart ? 'restart' : 'start'} containerd; } && ${awaitContainerd()}`), {
    timeoutMs: 5 * 60_000,
    okExitCodes: [CONTAINERD_NOT_READY_EXIT],
  });
  if (started.code === CONTAINERD_NOT_READY_EXIT) {
    throw new DevclusterError('CONTAINERD_NOT_READY', `containerd did not answer on its socket within 2 minutes: ${started.stderr.trim().split('\n').pop() ?? ''}`, {
      advice: 'Read its log with `devcluster ssh -- sudo journalctl -u containerd -n 50`.',
    });
  }
  const imagesImported = await importBundleImages(ssh, input.bundle.manifest, access, progress).catch((e: unknown) => {
    throw new DevclusterError('KUBE_IMAGE_IMPORT_FAILED', `importing the node bundle's images into containerd failed: ${(e as Error).message}`, {
      advice: 'Read containerd\'s log with `devcluster ssh -- sudo journalctl -u containerd`; a full guest disk is the usual cause (`devcluster ssh -- df -h`).',
      cause: e,
    });
  });
  const marker = bundle === 'installed' ? { kubernetesVersion: input.bundle.manifest.kubernetesVersion, manifestSha256: medium.manifestSha256 } : undefined;
  if (marker !== undefined || access.mounted) await finishBundleInstall(ssh, marker);
  return { bundle, imagesPreloaded: preloaded, imagesImported, changedFiles };
}

/** The exit code of awaitContainerd() when containerd never answered. */
const CONTAINERD_NOT_READY_EXIT = 75;

/**
 * Shell that waits, in the guest, up to 2 minutes for containerd to answer
 * on its socket (systemd's start returns once containerd said it is ready,
 * so this is normally one call), then exits 75 with ctr's last error.
 */
function awaitContainerd(): string {
  const ctr = `${GUEST_BIN_DIR}/ctr version`;
  return `{ i=0; until ${ctr} >/dev/null 2>&1; do i=$((i+1)); if [ $i -ge 120 ]; then ${ctr} >&2; exit ${CONTAINERD_NOT_READY_EXIT}; fi; sleep 1; done; }`;
}

/**
 * A daemon-reload only when systemd holds an outdated copy of one of these
 * units (it takes about 5 s in an emulated guest). A unit systemd never
 * loaded, as on a new node, is read from disk when first used.
 */
function reloadIfNeeded(units: readonly string[]): string {
  return `{ if systemctl show --property=NeedDaemonReload --value ${units.join(' ')} | grep -qx yes; then systemctl daemon-reload; fi; }`;
}

/** Enabling only adds the boot-time links; without --no-reload it would reload all of systemd as well. */
const ENABLE = 'systemctl --no-reload enable';

/** /etc/hosts maps the control-plane name to the guest's current address (the guest's kubeconfigs use the name). */
export async function mapControlPlaneName(ssh: SshSession, address: string): Promise<boolean> {
  const line = `${address}\t${CONTROL_PLANE_NAME}`;
  const script = `if grep -qxF ${quoteShellArg(line)} /etc/hosts; then echo unchanged; else t=$(mktemp) && grep -v ${quoteShellArg(`[[:space:]]${CONTROL_PLANE_NAME}$`)} /etc/hosts >"$t"; echo ${quoteShellArg(line)} >>"$t" && cat "$t" >/etc/hosts && rm -f "$t" && echo changed; fi`;
  return (await ssh.run(sudo(script))).stdout.trim() === 'changed';
}

export interface ControlPlaneInput {
  kubeadmConfig: string;
  /** The host-made PKI, paths relative to /etc/kubernetes/pki. */
  pki: ReadonlyArray<{ path: string; content: string; mode: number }>;
}

/** Files kubeadm wrote with the guest's address in them (the kubelet's and the components' kubeconfigs point at the local API server). */
const ADDRESS_BEARING_FILES = [
  '/etc/kubernetes/manifests/kube-apiserver.yaml',
  '/etc/kubernetes/kubelet.conf',
  '/etc/kubernetes/admin.conf',
  '/etc/kubernetes/super-admin.conf',
  '/etc/kubernetes/controller-manager.conf',
  '/etc/kubernetes/scheduler.conf',
  '/var/lib/kubelet/kubeadm-flags.env',
];

/**
 * Moves an initialized control plane to the guest's new address (a DHCP
 * lease that changed): the reissued API server certificate, then the old
 * address replaced by the new one wherever kubeadm wrote it, then the kubelet
 * restarted so it re-creates the API server's static pod. etcd listens on
 * loopback only and needs nothing.
 */
export async function readdressControlPlane(ssh: SshSession, from: string, to: string, apiServerPki: ReadonlyArray<{ path: string; content: string; mode: number }>): Promise<void> {
  await writeGuestFiles(ssh, apiServerPki.map((f) => ({ path: `/etc/kubernetes/pki/${f.path}`, content: f.content, mode: f.mode })));
  await ssh.run(sudo([...readdressScript(from, to, ADDRESS_BEARING_FILES), 'systemctl restart kubelet'].join('\n')));
}

/** Shell lines that replace one IPv4 address by another in files, whole addresses only (10.0.2.1 never matches inside 10.0.2.15). */
export function readdressScript(from: string, to: string, files: readonly string[]): string[] {
  const pattern = `\\(^\\|[^0-9.]\\)${from.replace(/\./g, '\\.')}\\([^0-9.]\\|$\\)`;
  return ['set -e', ...files.map((f) => `[ ! -e ${quoteShellArg(f)} ] || sed -i ${quoteShellArg(`s/${pattern}/\\1${to}\\2/g`)} ${quoteShellArg(f)}`)];
}

export async function isInitialized(ssh: SshSession): Promise<boolean> {
  return (await ssh.exec(`test -e ${INIT_DONE_MARKER}`)).code === 0;
}

/**
 * `kubeadm init` with the host's PKI, or, for a cluster that was initialized,
 * nothing but the kubelet's start. A half-done init (kubeadm interrupted) is
 * reset first: kubeadm refuses to run over its own leftovers.
 */
export async function startControlPlane(ssh: SshSession, input: ControlPlaneInput, progress: Progress): Promise<'initialized' | 'warm'> {
  if (await isInitialized(ssh)) {
    // A certificate the host reissued (expiring, a new address) replaces the guest's copy; the API server reloads its serving certificate from the file.
    const changed = await writeGuestFiles(ssh, input.pki.map((f) => ({ path: `/etc/kubernetes/pki/${f.path}`, content: f.content, mode: f.mode })));
    if (changed.length > 0) progress(`updated ${changed.map((f) => f.replace('/etc/kubernetes/pki/', '')).join(', ')}`);
    await ssh.run(sudo(`${ENABLE} kubelet >/dev/null 2>&1; systemctl start kubelet`));
    return 'warm';
  }
  await ssh.run(sudo('mkdir -p /var/log/devcluster'));
  const leftovers = await ssh.exec(sudo(`test -e ${GUEST_ADMIN_KUBECONFIG} || test -d /etc/kubernetes/manifests -a -n "$(ls -A /etc/kubernetes/manifests 2>/dev/null)"`));
  if (leftovers.code === 0) {
    progress('an earlier kubeadm init did not finish; resetting it');
    // kubeadm reset left pods of the first attempt running in our slow guests; crictl removes what it missed.
    await ssh.run(sudo(`${GUEST_BIN_DIR}/kubeadm reset --force --cleanup-tmp-dir >/var/log/devcluster/kubeadm-reset.log 2>&1; ${GUEST_BIN_DIR}/crictl rmp --all --force >/dev/null`), { timeoutMs: 10 * 60_000 });
  }
  const files: GuestFile[] = [
    { path: GUEST_KUBEADM_CONFIG, content: input.kubeadmConfig, mode: 0o600 },
    ...staticPodPatches(),
    ...input.pki.map((f) => ({ path: `/etc/kubernetes/pki/${f.path}`, content: f.content, mode: f.mode })),
  ];
  await writeGuestFiles(ssh, files);
  await ssh.run(sudo(`${ENABLE} kubelet >/dev/null 2>&1`));
  progress('kubeadm init (minutes under software emulation)');
  const watcher = new AbortController();
  const watching = followLog(ssh, KUBEADM_INIT_LOG, progress, watcher.signal);
  let r;
  try {
    r = await ssh.exec(sudo(`${GUEST_BIN_DIR}/kubeadm init --config ${GUEST_KUBEADM_CONFIG} --skip-token-print >${KUBEADM_INIT_LOG} 2>&1`), { timeoutMs: 40 * 60_000 });
  } finally {
    watcher.abort();
    await watching;
  }
  if (r.code !== 0) {
    const log = await ssh.exec(sudo(`tail -n 15 ${KUBEADM_INIT_LOG}`));
    throw new DevclusterError('KUBEADM_INIT_FAILED', `kubeadm init failed in the guest (exit ${r.code}):\n${log.stdout.trim()}`, {
      advice: `The whole log is ${KUBEADM_INIT_LOG} in the guest (\`devcluster ssh -- sudo cat ${KUBEADM_INIT_LOG}\`); the kubelet's is \`devcluster ssh -- sudo journalctl -u kubelet\`. \`devcluster start\` tries again from a reset.`,
    });
  }
  await ssh.run(sudo(`date -u +%Y-%m-%dT%H:%M:%SZ >${INIT_DONE_MARKER}`));
  return 'initialized';
}

/** Shows kubeadm's phase lines as they come ("[control-plane] Creating static Pod manifest ..."). */
async function followLog(ssh: SshSession, path: string, progress: Progress, signal: AbortSignal): Promise<void> {
  let last = '';
  while (!signal.aborted) {
    await sleep(3000, undefined, { signal }).catch(() => undefined);
    if (signal.aborted) return;
    const r = await ssh.exec(sudo(`grep -E '^\\[[a-z-]+\\]' ${path} 2>/dev/null | tail -n 1`), { timeoutMs: 30_000 }).catch(() => undefined);
    const line = r?.stdout.trim() ?? '';
    if (line !== '' && line !== last) {
      last = line;
      progress(`kubeadm init: ${line.length > 100 ? `${line.slice(0, 97)}...` : line}`);
    }
  }
}

export interface ClusterWaitOptions {
  nodeName: string;
  /** Absolute deadlines, ms since the epoch. */
  deadlines: { apiServer: number; node: number; systemPods: number };
  signal?: AbortSignal;
}

async function pollGuest(
  ssh: SshSession,
  what: { command: string; done: (stdout: string) => boolean; deadline: number; describe: (stdout: string) => string; signal?: AbortSignal },
  progress: Progress,
): Promise<string | undefined> {
  for (;;) {
    const r = await ssh.exec(what.command, { timeoutMs: 60_000, ...(what.signal === undefined ? {} : { signal: what.signal }) });
    const out = r.code === 0 ? r.stdout.trim() : '';
    if (r.code === 0 && what.done(out)) return undefined;
    const seen = r.code === 0 ? out : (r.stderr.trim().split('\n').pop() ?? '');
    progress(what.describe(seen));
    if (Date.now() > what.deadline) return seen;
    await sleep(3000);
  }
}

/** Waits for the API server, the node and the system pods, each with its own deadline and a hint naming the log to read. */
export async function waitForCluster(ssh: SshSession, options: ClusterWaitOptions, progress: Progress): Promise<void> {
  const signal = options.signal === undefined ? {} : { signal: options.signal };
  const api = await pollGuest(ssh, {
    command: sudo(`${KUBECTL} get --raw=/readyz`),
    done: (o) => o === 'ok',
    deadline: options.deadlines.apiServer,
    describe: (o) => `waiting for the API server (${o || 'no answer yet'})`,
    ...signal,
  }, progress);
  if (api !== undefined) {
    throw new DevclusterError('KUBE_APISERVER_NOT_READY', `the API server did not become ready in time (last answer: ${api || 'none'})`, {
      advice: 'Read `devcluster ssh -- sudo journalctl -u kubelet -n 100` and the API server\'s log under /var/log/pods/kube-system_kube-apiserver-*/ in the guest (`devcluster logs --bundle` collects both).',
    });
  }
  const node = await pollGuest(ssh, {
    command: sudo(`${KUBECTL} get node ${quoteShellArg(options.nodeName)} -o 'jsonpath={.status.conditions[?(@.type=="Ready")].status}'`),
    done: (o) => o === 'True',
    deadline: options.deadlines.node,
    describe: (o) => `waiting for node ${options.nodeName} to be Ready (${o === '' ? 'not registered yet' : `Ready=${o}`})`,
    ...signal,
  }, progress);
  if (node !== undefined) {
    throw new DevclusterError('KUBE_NODE_NOT_READY', `node ${options.nodeName} did not become Ready in time (Ready=${node || 'unknown'})`, {
      advice: 'Read the kubelet\'s log (`devcluster ssh -- sudo journalctl -u kubelet -n 100`) and containerd\'s (`-u containerd`); `devcluster kubectl -- describe node` shows the condition\'s reason.',
    });
  }
  const wanted = ['kube-dns', 'kube-proxy'];
  const pods = await pollGuest(ssh, {
    command: sudo(`${KUBECTL} -n kube-system get pods -l 'k8s-app in (kube-dns,kube-proxy)' -o 'jsonpath={range .items[*]}{.metadata.labels.k8s-app}={.status.phase}{"\\n"}{end}'`),
    done: (o) => {
      const rows = o.split('\n').filter((l) => l !== '').map((l) => l.split('='));
      return wanted.every((app) => rows.some(([a]) => a === app)) && rows.every(([, phase]) => phase === 'Running');
    },
    deadline: options.deadlines.systemPods,
    describe: (o) => `waiting for CoreDNS and kube-proxy (${o.replace(/\n/g, ', ') || 'not created yet'})`,
    ...signal,
  }, progress);
  if (pods !== undefined) {
    throw new DevclusterError('KUBE_SYSTEM_PODS_NOT_RUNNING', `CoreDNS and kube-proxy did not all reach Running in time (${pods.replace(/\n/g, ', ') || 'none created'})`, {
      advice: 'See why with `devcluster kubectl -- -n kube-system describe pods -l \'k8s-app in (kube-dns,kube-proxy)\'` and `devcluster kubectl -- get events -A`.',
    });
  }
}
