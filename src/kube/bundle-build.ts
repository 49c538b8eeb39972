import { access, mkdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { run } from '../host/exec.ts';
import { findOnPath } from '../host/path-search.ts';
import { logLine } from '../ui/context.ts';
import { DevclusterError, isDevclusterError } from '../ui/errors.ts';
import './bundle-errors.ts';
import { buildStagingDir, bundleCacheDir, installBundle } from './bundle-store.ts';
import type { InstalledBundle } from './bundle-store.ts';
import { kubernetesRelease, unsupportedVersionError } from './versions.ts';
import type { KubernetesRelease } from './versions.ts';
import { homePaths } from '../profile/paths.ts';
import { writeFileAtomic } from '../profile/atomic.ts';
import { acquireProfileLock } from '../profile/lock.ts';
import { imagesDir } from '../image/package-root.ts';

/**
 * `bundle build`: images/kubernetes/build.sh VERSION <cache>/.staging-build-VERSION
 * --versions <Go caches>/work/versions-VERSION.env (the release's pins from
 * versions.ts), then installBundle. The staging directory is fixed per
 * version and kept when the build fails or is interrupted; with Go's module and build caches
 * (DEVCLUSTER_GO_CACHE, default <home>/cache/go) a second run only relinks.
 * What the recipe needs is checked before it starts, since its own checks
 * come late (runc's, after the Kubernetes binaries' long first build).
 */

/** What the recipe needs from the host, as found. */
export interface BundleBuildHost {
  readonly platform: NodeJS.Platform;
  readonly arch: string;
  /** Programs not found on PATH, of go, gcc, bash, apt-get, dpkg-deb. */
  readonly missingPrograms: readonly string[];
  readonly libseccompStatic: boolean;
  /** VERSION_CODENAME of /etc/os-release, when there is one. */
  readonly codename: string | undefined;
}

const PROGRAMS = ['go', 'gcc', 'bash', 'apt-get', 'dpkg-deb'] as const;
/** Where build.sh looks for it (runc links it statically). */
const LIBSECCOMP_STATIC = '/usr/lib/x86_64-linux-gnu/libseccomp.a';
const INSTALL_HINT: Record<string, string> = {
  go: 'go (Go 1.26 or newer: https://go.dev/dl/)',
  gcc: 'gcc (apt-get install gcc libc6-dev: runc and pause are C)',
  bash: 'bash (apt-get install bash)',
  'apt-get': 'apt-get (kube-proxy\'s image takes iptables and nftables from Debian 12\'s archive)',
  'dpkg-deb': 'dpkg-deb (apt-get install dpkg)',
};
const DEFAULT_BUILD_TIMEOUT_MS = 4 * 60 * 60 * 1000;

export async function bundleBuildHost(env: NodeJS.ProcessEnv = process.env): Promise<BundleBuildHost> {
  const missingPrograms: string[] = [];
  if (process.platform === 'linux') {
    for (const p of PROGRAMS) if ((await findOnPath(p, { env })) === undefined) missingPrograms.push(p);
  }
  const libseccompStatic = await access(LIBSECCOMP_STATIC).then(() => true, () => false);
  const osRelease = await readFile('/etc/os-release', 'utf8').catch(() => '');
  const codename = /^VERSION_CODENAME=["']?([^"'\n]*)/m.exec(osRelease)?.[1];
  return { platform: process.platform, arch: process.arch, missingPrograms, libseccompStatic, codename };
}

function unavailable(why: string, advice: string, details: Record<string, unknown> = {}): DevclusterError {
  return new DevclusterError('KUBE_BUNDLE_BUILD_UNAVAILABLE', `the Kubernetes node bundle cannot be built here: ${why}`, { advice, details });
}

const ELSEWHERE = 'Or build it on a Linux x86_64 machine and bring it here with `devcluster bundle import <dir|archive>`; `devcluster start` downloads it when it is not cached.';

/** Every requirement the host lacks, in one error; undefined when it has them all. */
export function checkBundleBuildHost(host: BundleBuildHost): DevclusterError | undefined {
  if (host.platform !== 'linux') {
    return unavailable(`the build needs Linux (this host is ${host.platform})`,
      'Build it on a Linux x86_64 machine (Debian 12 with Go) with `devcluster bundle build` and import it here with `devcluster bundle import <dir|archive>`; `devcluster start` downloads it when it is not cached.');
  }
  if (host.arch !== 'x64') {
    return unavailable(`the build makes linux/amd64 bundles and needs an x86_64 host (this one is ${host.arch})`, ELSEWHERE);
  }
  const lacking = host.missingPrograms.map((p) => INSTALL_HINT[p] ?? p);
  if (!host.libseccompStatic) lacking.push(`libseccomp's static library ${LIBSECCOMP_STATIC} (apt-get install libseccomp-dev: runc links it)`);
  if (host.codename !== 'bookworm') {
    lacking.push(`Debian 12 (this host is ${host.codename === undefined ? 'not Debian' : `"${host.codename}"`}): kube-proxy's image is made from Debian 12's iptables and nftables packages through this host's apt`);
  }
  if (lacking.length === 0) return undefined;
  return unavailable(`it needs\n  ${lacking.join('\n  ')}`, `Install what is missing and run the build again. ${ELSEWHERE}`, { missing: lacking });
}

export interface BuildBundleOptions {
  readonly home: string;
  readonly version: string;
  readonly env?: NodeJS.ProcessEnv;
  readonly signal?: AbortSignal;
  /** Progress: devcluster's own messages and build.sh's step lines. */
  readonly onStatus?: (message: string) => void;
  /** Every other line of the build's output (Go's); all lines also go to the log file. */
  readonly onOutput?: (line: string) => void;
  readonly timeoutMs?: number;
  /** Tests: host facts instead of this host's. */
  readonly host?: BundleBuildHost;
}

const STEP_PREFIX = 'kube-bundle: ';

/**
 * build.sh's --versions file for a release: the recipe's own versions.env
 * holds the default release's pins only, and a bundle built with another
 * release's pins would differ from the downloaded bundle of that version.
 */
export function recipeVersionsFile(release: KubernetesRelease): string {
  return [
    `# Written by devcluster bundle build for Kubernetes ${release.version} (src/kube/versions.ts); read by images/kubernetes/build.sh --versions.`,
    `CONTAINERD_VERSION=${release.containerd}`,
    `RUNC_VERSION=${release.runc}`,
    `CNI_PLUGINS_VERSION=${release.cniPlugins}`,
    `CRI_TOOLS_VERSION=${release.crictl}`,
    '',
  ].join('\n');
}

/** Beside build.sh's generated wrapper modules, outside the staging directory, whose every file goes into the bundle. */
export function recipeVersionsPath(goCache: string, version: string): string {
  return join(goCache, 'work', `versions-${version}.env`);
}

/**
 * Runs build.sh ("$@") in a process group of its own and, when this shell is
 * told to stop (devcluster interrupted, the time limit), stops the whole
 * group: killing only the script would leave its go build running on, an
 * orphan still writing into the staging directory. Exits with the build's status.
 */
const GROUP_WRAPPER = `set -m
bash "$@" &
build=$!
trap 'kill -TERM -- "-$build" 2>/dev/null' TERM INT HUP
while :; do
  wait "$build"
  status=$?
  kill -0 "$build" 2>/dev/null || exit "$status"
done`;

export async function buildBundle(options: BuildBundleOptions): Promise<InstalledBundle> {
  const { home, version } = options;
  const env = options.env ?? process.env;
  const release = kubernetesRelease(version);
  if (release === undefined) throw unsupportedVersionError(version, '--kubernetes-version');
  const refused = checkBundleBuildHost(options.host ?? (await bundleBuildHost(env)));
  if (refused !== undefined) throw refused;
  const script = join(imagesDir(), 'kubernetes', 'build.sh');
  if (!(await access(script).then(() => true, () => false))) {
    throw unavailable(`its recipe is not shipped with this devcluster (${script} is missing)`, ELSEWHERE);
  }

  const cache = bundleCacheDir(home);
  let lock;
  try {
    lock = await acquireProfileLock(`Kubernetes bundle build ${version}`, join(cache, '.locks', `build-${version}.lock`), { command: `bundle build ${version}`, wait: false });
  } catch (e) {
    if (!isDevclusterError(e) || e.id !== 'PROFILE_BUSY') throw e;
    throw new DevclusterError('KUBE_BUNDLE_BUSY', `another devcluster command (pid ${String(e.details['pid'])}) is building the Kubernetes ${version} bundle`, {
      advice: `Wait for it to finish; its bundle is then in the cache (\`devcluster bundle list\`). If no such command runs (a crash on another machine sharing this home), remove ${String(e.details['lock'])}.`,
      details: e.details,
    });
  }
  try {
    const staging = buildStagingDir(home, version);
    const goCache = env['DEVCLUSTER_GO_CACHE'] !== undefined && env['DEVCLUSTER_GO_CACHE'] !== '' ? env['DEVCLUSTER_GO_CACHE'] : homePaths(home).goCache;
    const resumed = await access(staging).then(() => true, () => false);
    await mkdir(staging, { recursive: true, mode: 0o755 });
    const versionsFile = recipeVersionsPath(goCache, version);
    await writeFileAtomic(versionsFile, recipeVersionsFile(release));
    options.onStatus?.(resumed
      ? `Continuing the interrupted build of Kubernetes ${version} in ${staging} (Go caches: ${goCache})`
      : `Building the Kubernetes ${version} node bundle from Go modules (Go caches: ${goCache}; a first build takes about an hour, a rebuild minutes)`);
    let lastError = '';
    try {
      await run('bash', ['-c', GROUP_WRAPPER, 'kube-bundle-build', script, version, staging, '--versions', versionsFile], {
        timeoutMs: options.timeoutMs ?? DEFAULT_BUILD_TIMEOUT_MS,
        env: { ...env, DEVCLUSTER_GO_CACHE: goCache },
        ...(options.signal === undefined ? {} : { signal: options.signal }),
        onLine: (line) => {
          logLine('info', `build.sh: ${line}`);
          if (line.startsWith(STEP_PREFIX)) {
            const step = line.slice(STEP_PREFIX.length);
            if (step.startsWith('ERROR: ')) lastError = step.slice('ERROR: '.length);
            options.onStatus?.(`  ${step}`);
          } else {
            options.onOutput?.(line);
          }
        },
      });
    } catch (e) {
      if (isDevclusterError(e) && e.id === 'INTERRUPTED') {
        throw new DevclusterError('INTERRUPTED', `the Kubernetes ${version} bundle build was interrupted`, {
          advice: `The files built so far stay in ${staging}: run \`devcluster bundle build --kubernetes-version ${version}\` again to continue.`,
          details: e.details,
          cause: e,
        });
      }
      if (!isDevclusterError(e) || (e.id !== 'HOST_COMMAND_FAILED' && e.id !== 'HOST_COMMAND_TIMEOUT')) throw e;
      // The wrapper's job control reports the script's exit ("[1]+  Exit 1  bash "$@""): not the cause.
      const lines = typeof e.details['stderrTail'] === 'string'
        ? (e.details['stderrTail'] as string).trim().split('\n').filter((l) => !/^\[\d+\][+-]?\s/.test(l))
        : [];
      const why = lastError !== '' ? lastError : ([...lines].reverse().find((l) => /error|cannot|missing|not found/i.test(l)) ?? lines.at(-1) ?? '');
      throw new DevclusterError('KUBE_BUNDLE_BUILD_FAILED', `the Kubernetes ${version} bundle build failed${e.id === 'HOST_COMMAND_TIMEOUT' ? ' (timed out)' : ''}${why === '' ? '' : `: ${why}`}`, {
        advice: `The files built so far stay in ${staging} and Go's caches in ${goCache}: fix the cause and run \`devcluster bundle build --kubernetes-version ${version}\` again to continue. The log file has the build's whole output.`,
        details: e.details,
        cause: e,
      });
    }
    return await installBundle(home, staging, 'build', {
      origin: script,
      ...(options.signal === undefined ? {} : { signal: options.signal }),
      ...(options.onStatus === undefined ? {} : { onStatus: options.onStatus }),
    });
  } finally {
    await lock.release();
  }
}
