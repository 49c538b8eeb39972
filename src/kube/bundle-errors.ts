import { errorDef, registerErrors } from '../ui/errors.ts';

/**
 * The Kubernetes node bundle cache's error IDs (bundle list, import, build,
 * and installs by the downloader). A bundle that is refused leaves the cache
 * exactly as it was: the exit code tells a script that nothing was installed.
 */
export const BUNDLE_ERRORS = {
  KUBE_BUNDLE_SOURCE_NOT_FOUND: errorDef('usage', 2, 'The directory or archive given to `bundle import` does not exist or is neither a directory nor a regular file.'),
  KUBE_BUNDLE_INVALID: errorDef('kubernetes', 102, 'A Kubernetes node bundle to import or install has no manifest.json, a malformed one, or files that do not match it (missing, extra, wrong size, mode or sha256), or its archive cannot be read; nothing was installed and the cache is unchanged.'),
  KUBE_BUNDLE_ARCHIVE_UNSAFE: errorDef('kubernetes', 102, 'A bundle archive holds a member that would be written outside the bundle (an absolute path, `..`, a link pointing outside) or is not a file, directory or link; nothing was extracted into the cache.'),
  KUBE_BUNDLE_NOT_CACHED: errorDef('usage', 2, 'The version given to `bundle rm` is not a version, or no bundle of it is cached.'),
  KUBE_BUNDLE_IN_USE: errorDef('usage', 2, 'The bundle version given to `bundle rm` is the one a profile\'s cluster was made with; nothing was removed.'),
  KUBE_BUNDLE_BUSY: errorDef('program', 11, 'Another devcluster command is building the same Kubernetes bundle version.'),
  KUBE_BUNDLE_BUILD_UNAVAILABLE: errorDef('host', 38, 'The Kubernetes bundle cannot be built on this host: the build needs Linux on x86_64 with Go, gcc, bash, libseccomp\'s static library, and Debian 12\'s apt for kube-proxy\'s image.'),
  KUBE_BUNDLE_BUILD_FAILED: errorDef('host', 39, 'The Kubernetes bundle build (images/kubernetes/build.sh) failed; its files are kept so the next build reuses them.'),
};

registerErrors(BUNDLE_ERRORS);
