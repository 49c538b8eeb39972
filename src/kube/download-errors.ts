import { errorDef, registerErrors } from '../ui/errors.ts';

/**
 * The node bundle download's error IDs (internet decade). They share their
 * exit codes with the image download's IDs of the same meaning: 41 bytes
 * that do not match the published sha256, 43 offline, 47 a transfer or a
 * lookup that failed, 49 a published file that is not what its project
 * publishes (a checksum file or archive a mirror got wrong).
 */
export const DOWNLOAD_ERRORS = {
  KUBE_DOWNLOAD_OFFLINE: errorDef('internet', 43, 'The Kubernetes node bundle (or kubectl) for this version is not cached and offline is set, so it cannot be downloaded; nothing was requested.'),
  KUBE_DOWNLOAD_FAILED: errorDef('internet', 47, 'A Kubernetes release artifact or its checksum file could not be downloaded (unreachable, refused with an HTTP error, or failed after its retries); the message names the URL and the setting that points there.'),
  KUBE_DOWNLOAD_CHECKSUM_MISMATCH: errorDef('internet', 41, 'A downloaded Kubernetes release artifact does not have the sha256 its published checksum file gives; it was deleted and nothing was cached.'),
  KUBE_CHECKSUM_FILE_INVALID: errorDef('internet', 49, 'A published checksum file (.sha256, .sha256sum) is empty, malformed or does not list the artifact, so the artifact cannot be verified; nothing was downloaded.'),
  KUBE_DOWNLOAD_ARCHIVE_INVALID: errorDef('internet', 49, 'A verified release archive (containerd, CNI plugins, crictl) lacks a file the node bundle needs, holds it as something other than a regular file, or cannot be unpacked.'),
};

registerErrors(DOWNLOAD_ERRORS);
