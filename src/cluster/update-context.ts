import { mergeClusterIntoKubeconfig } from '../kube/kubeconfig-merge.ts';
import type { MergeClusterResult } from '../kube/kubeconfig-merge.ts';
import { DevclusterError } from '../ui/errors.ts';
import './errors.ts';
import { readProfileCredentials, userKubeconfig } from './kubeconfig-entries.ts';
import { openProfile } from './profile-context.ts';
import type { LifecycleOptions } from './profile-context.ts';

export interface UpdateContextOptions extends LifecycleOptions {
  /** Leave kubectl's current context as it is. */
  keepContext: boolean;
}

export interface UpdateContextResult {
  profile: string;
  server: string;
  context: string;
  entries: MergeClusterResult['entries'];
  /** The file current-context was set in (not with keepContext). */
  currentContextFile?: string;
  /** Files that changed; none when the entries were already right. */
  written: string[];
}

/**
 * Writes the profile's cluster, user and context again from what the
 * profile knows (the API server address its last start recorded, its CA and
 * admin certificate), with start's rules: an entry deleted or edited by hand
 * is repaired, every other entry stays as it is. The profile is locked, so a
 * start that reissues the certificates is not read half-way.
 */
export async function updateContext(options: UpdateContextOptions): Promise<UpdateContextResult> {
  const p = await openProfile(options, true, { mustExist: true });
  try {
    const s = p.existingState();
    const flag = p.name === 'devcluster' ? '' : ` -p ${p.name}`;
    if (s.created?.kubernetes === false) {
      throw new DevclusterError('KUBERNETES_NOT_IN_PROFILE', `profile ${p.name} was created without Kubernetes, so it has no kubectl context`, {
        advice: `Delete it and start it again without --no-kubernetes: \`devcluster delete${flag}\`, \`devcluster start${flag}\`.`,
      });
    }
    if (s.apiServer === undefined) {
      throw new DevclusterError('KUBERNETES_NOT_STARTED', `Kubernetes in profile ${p.name} has not finished a start, so there is no API server address to write`, {
        advice: `Run \`devcluster start${flag}\`; its last step writes the kubectl context.`,
      });
    }
    const credentials = await readProfileCredentials(p.paths.pki, p.name);
    const r = await mergeClusterIntoKubeconfig({ ...userKubeconfig(), ...credentials, profile: p.name, server: s.apiServer, setCurrent: !options.keepContext });
    return {
      profile: p.name,
      server: s.apiServer,
      context: r.names.context,
      entries: r.entries,
      ...(r.currentContextFile === undefined ? {} : { currentContextFile: r.currentContextFile }),
      written: r.written,
    };
  } finally {
    await p.release();
  }
}
