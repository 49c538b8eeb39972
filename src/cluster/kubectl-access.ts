import { access, constants } from 'node:fs/promises';
import { join } from 'node:path';
import { downloadHostKubectl } from '../kube/bundle-download.ts';
import { findBundle } from '../kube/bundle-store.ts';
import { goArch, hostOs, releaseUrlsFrom } from '../kube/release-urls.ts';
import { homePaths } from '../profile/paths.ts';
import { DevclusterError } from '../ui/errors.ts';
import { openProfile } from './profile-context.ts';
import type { LifecycleOptions } from './profile-context.ts';

export interface KubectlInvocation {
  binary: string;
  /** Put before the user's arguments. */
  args: string[];
  context: string;
}

/**
 * The kubectl `devcluster kubectl` runs: the bundle's own on a host of the
 * bundle's platform (Linux), else the release's build for this OS, fetched
 * once into the cache. No kubectl on PATH is needed either way.
 */
export async function kubectlFor(options: LifecycleOptions): Promise<KubectlInvocation> {
  const p = await openProfile(options, false, { mustExist: true });
  const s = p.existingState();
  const flag = p.name === 'devcluster' ? '' : ` -p ${p.name}`;
  if (s.created?.kubernetes !== true) {
    throw new DevclusterError('KUBERNETES_NOT_IN_PROFILE', `profile ${p.name} was created without Kubernetes`, {
      advice: `Delete it and start it again without --no-kubernetes: \`devcluster delete${flag}\`, \`devcluster start${flag}\`.`,
      input: true,
    });
  }
  if (s.kubernetes === undefined) {
    throw new DevclusterError('KUBERNETES_NOT_STARTED', `Kubernetes in profile ${p.name} has not finished starting yet`, {
      advice: `Run \`devcluster start${flag}\`; its last step writes the kubectl context.`,
    });
  }
  const { version, context } = s.kubernetes;
  const os = hostOs(process.platform);
  const arch = goArch(process.arch);
  if (os === undefined || arch === undefined) {
    throw new DevclusterError('HOST_UNSUPPORTED', `kubectl is published for Linux, macOS and Windows on amd64 and arm64; this host is ${process.platform}/${process.arch}`);
  }
  const args = ['--context', context];
  const bundle = await findBundle(p.home, version);
  if (os === 'linux' && bundle !== undefined && bundle.manifest.platform.architecture === arch) {
    return { binary: join(bundle.dir, 'bin', 'kubectl'), args, context };
  }
  const dir = join(homePaths(p.home).kubernetesCache, 'host-kubectl', `${version}-${os}-${arch}`);
  const binary = join(dir, os === 'windows' ? 'kubectl.exe' : 'kubectl');
  const present = await access(binary, constants.X_OK).then(() => true, () => false);
  if (!present) {
    options.out.info(`Downloading kubectl ${version} for ${os}/${arch} (once)`);
    await downloadHostKubectl({
      version,
      os,
      arch,
      urls: releaseUrlsFrom(p.settings),
      destination: binary,
      partDir: join(homePaths(p.home).kubernetesCache, '.downloads'),
      offline: p.settings['offline'] === true,
      signal: options.signal,
    });
  }
  return { binary, args, context };
}
