import { errorDef, registerErrors } from '../ui/errors.ts';

/**
 * The image module's error IDs. Exit codes:
 * - internet decade (40s): the image could not be fetched or did not verify.
 *   40 transport failure after retries (resets, timeouts, stalls, 5xx, proxy),
 *   41 bytes that do not match the pinned sha256 (or size),
 *   42 the server refused the request (4xx: not retried),
 *   43 offline and not in the cache (or the cached copy was corrupt and removed),
 *   44 the catalog image has no published download yet,
 *   45 the image names another file (backing file, data file, VMDK extent, OVA link),
 *   46 qemu-img cannot read the image as the format it claims.
 * - usage (2): what the user typed names no usable image.
 * - program decade (10s): the cache or a catalog/manifest is inconsistent, or an
 *   image is still used by a name or a profile.
 * - host decade (30s): a recipe cannot be built on this host, or its build failed;
 *   33 qemu-img, which every image is checked with, is missing.
 *   Root for `image build debian` reuses HOST_NEEDS_ROOT (37).
 */
export const IMAGE_ERRORS = {
  IMAGE_DOWNLOAD_FAILED: errorDef('internet', 40, 'An image download failed after its retries (connection reset, timeout, stall, server error or proxy failure).'),
  IMAGE_CHECKSUM_MISMATCH: errorDef('internet', 41, 'A downloaded or imported image does not match its expected sha256 (or size); nothing was cached.'),
  IMAGE_DOWNLOAD_REJECTED: errorDef('internet', 42, 'The server refused the image download (an HTTP 4xx answer such as 404 or 403); it is not retried.'),
  IMAGE_NOT_CACHED: errorDef('internet', 43, 'Offline mode (or an image that cannot be downloaded) and the image is not in the cache.'),
  IMAGE_NOT_PUBLISHED: errorDef('internet', 44, 'The catalog image has no published download yet; it has to be built locally or given with --image.'),
  IMAGE_REFERENCES_FILE: errorDef('internet', 45, 'The image names another file (a qcow2 backing or data file, VMDK extents, an OVA link or outside path), which a guest could read through its disk; it was refused, nothing was cached or booted.'),
  IMAGE_UNREADABLE: errorDef('internet', 46, 'qemu-img cannot read the image as the disk format its signature or name claims (damaged or mislabelled); it was not used.'),

  IMAGE_UNKNOWN: errorDef('usage', 2, 'The image name is neither in the catalog nor imported into the cache.'),
  IMAGE_SHA256_REQUIRED: errorDef('usage', 2, 'An image given as a URL or path needs --image-sha256 to be verified.'),
  IMAGE_FORMAT_UNSUPPORTED: errorDef('usage', 2, 'The image has no disk format the driver (or --format) accepts.'),
  IMAGE_FILE_NOT_FOUND: errorDef('usage', 2, 'The image path does not exist or is not a readable file.'),
  IMAGE_RECIPE_UNKNOWN: errorDef('usage', 2, 'The image recipe name is not one devcluster ships.'),
  IMAGE_MIRROR_INVALID: errorDef('usage', 2, 'DEVCLUSTER_IMAGE_MIRROR is not an http(s) URL or a FROM=TO pair of them.'),

  IMAGE_NOT_BUILT: errorDef('program', 14, 'The catalog image is built locally and has not been built (imported) on this host yet.'),
  IMAGE_IN_USE: errorDef('program', 16, 'The cached image is still used by a name or by a profile\'s VM (or a profile\'s state cannot be read, so it may be); nothing was removed.'),
  IMAGE_CATALOG_INVALID: errorDef('program', 17, 'The image catalog shipped with devcluster, or the cache index, is malformed.'),
  IMAGE_MANIFEST_INVALID: errorDef('program', 19, 'A built image\'s manifest.json is missing, malformed or does not match its files.'),

  IMAGE_CHECK_UNAVAILABLE: errorDef('host', 33, 'qemu-img is not installed: every image is checked with it for references to other files, so without it no image is used.'),
  IMAGE_BUILD_UNAVAILABLE: errorDef('host', 38, 'The image recipe cannot be built on this host (it needs Docker, the internet, or a recipe that is not shipped).'),
  IMAGE_BUILD_FAILED: errorDef('host', 39, 'The image recipe\'s build script failed.'),
};

registerErrors(IMAGE_ERRORS);

export type ImageErrorId = keyof typeof IMAGE_ERRORS;
