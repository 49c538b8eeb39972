import type { BootImage, Driver } from '../../drivers/driver.ts';
import { ImageCache } from '../image/cache.ts';
import { loadCatalog } from '../image/catalog.ts';
import type { Catalog } from '../image/catalog.ts';
import { classifyImage, imageStateRecord, resolveImage } from '../image/resolve.ts';
import type { ResolveImageOptions, ResolvedImage } from '../image/resolve.ts';
import { DevclusterError } from '../ui/errors.ts';
import type { Output } from '../ui/output.ts';
import type { OpenProfile } from './profile-context.ts';
import './errors.ts';

/** The image a new VM boots, chosen before anything is written. */
export interface ImageChoice {
  /** An `image` setting value: a catalog or built name, a path, or a URL. */
  image: string;
  /** A local file is verified and cached while planning, so a bad path or digest fails before the profile exists. */
  resolved?: ResolvedImage;
}

async function usable(cache: ImageCache, catalog: Catalog, name: string, offline: boolean): Promise<boolean> {
  if ((await cache.namedImage(name)) !== undefined) return true;
  const entry = catalog.images.find((i) => i.name === name);
  return entry !== undefined && entry.published && !offline;
}

/**
 * Resolves the image setting the way a user expects: an explicit name must be
 * cached, built or published (else its own error, before the profile
 * exists); the default is the first catalog image that is cached or
 * published; with none, Linux offers to build the Debian guest.
 */
export async function chooseImage(p: OpenProfile, driver: Driver, options: { out: Output; signal: AbortSignal; env?: NodeJS.ProcessEnv }): Promise<ImageChoice> {
  const setting = String(p.settings['image']);
  const offline = p.settings['offline'] === true;
  const kind = classifyImage(setting).kind;
  if (kind === 'url') return { image: setting };
  if (kind === 'path') return { image: setting, resolved: await resolveImage(resolveOptions(p, setting, driver, options.signal, () => undefined)) };
  const catalog = await loadCatalog();
  const cache = ImageCache.forHome(p.home);
  if (p.config.settings['image']?.source !== 'default') {
    if (!(await usable(cache, catalog, setting, offline))) {
      // Raises the specific reason (unknown, not built here, not published, offline) without writing.
      await resolveImage({ home: p.home, image: setting, formats: driver.info.features.diskFormats, offline: true, catalog });
    }
    return { image: setting };
  }
  for (const candidate of catalog.images) {
    if (await usable(cache, catalog, candidate.name, offline)) {
      if (candidate.name !== setting) options.out.info(`Using the ${candidate.name} image: ${setting} is not published yet and ${candidate.name} is in the image cache.`);
      return { image: candidate.name };
    }
  }
  return offerDebianBuild(p, options);
}

async function offerDebianBuild(p: OpenProfile, options: { out: Output; signal: AbortSignal; env?: NodeJS.ProcessEnv }): Promise<ImageChoice> {
  const linux = process.platform === 'linux';
  const root = process.getuid?.() === 0;
  const advice = linux
    ? 'Build the Debian 12 guest once (about 5 minutes; needs root and Debian\'s package mirror): `sudo devcluster image build debian`, then run `devcluster start` again; or pass --image <path|url> --image-sha256 <hex>.'
    : 'Pass a guest image with --image <path|url> --image-sha256 <hex>, or build one on a Linux machine with `devcluster image build debian` and copy it here with `devcluster image import`.';
  const message = 'no guest image is available: the default photon-5 image is not published yet and the image cache holds none';
  if (!linux || !root || process.stdin.isTTY !== true || options.out.format !== 'text' || p.settings['offline'] === true) {
    throw new DevclusterError('IMAGE_NONE_AVAILABLE', message, { advice, input: true });
  }
  const { confirm } = await import('@inquirer/prompts');
  const yes = await confirm({ message: 'No guest image is available yet. Build the Debian 12 guest now (about 5 minutes, from Debian\'s packages)?', default: true }, { signal: options.signal });
  if (!yes) throw new DevclusterError('IMAGE_NONE_AVAILABLE', message, { advice, input: true });
  const { buildImage } = await import('../image/build.ts');
  const built = await buildImage({ home: p.home, recipe: 'debian', signal: options.signal, ...(options.env === undefined ? {} : { env: options.env }), onStatus: (m) => options.out.info(m) });
  return { image: built.name };
}

/**
 * The chosen image in a format the driver boots (cache, local build or
 * download, verified), recorded in the profile's state so the cache never
 * removes it while the VM's disk depends on it.
 */
function resolveOptions(p: OpenProfile, image: string, driver: Driver, signal: AbortSignal, update: (detail: string) => void): ResolveImageOptions {
  return {
    home: p.home,
    image,
    imageSha256: String(p.settings['image-sha256'] ?? ''),
    formats: driver.info.features.diskFormats,
    offline: p.settings['offline'] === true,
    download: { signal },
    onStatus: update,
    onWait: (holder) => update(`waiting for ${holder}, which is fetching the same image`),
  };
}

export async function recordImage(p: OpenProfile, choice: ImageChoice, driver: Driver, signal: AbortSignal, update: (detail: string) => void): Promise<BootImage> {
  const image = choice.resolved ?? (await resolveImage(resolveOptions(p, choice.image, driver, signal, update)));
  await p.state.update((s) => {
    s.image = { ...imageStateRecord(image) };
  });
  const boot = driver.info.features.directKernelBoot;
  return {
    format: image.format,
    disk: image.disk.path,
    sha256: image.disk.sha256,
    ...(!boot || image.kernel === undefined ? {} : { kernel: image.kernel.path }),
    ...(!boot || image.initrd === undefined ? {} : { initrd: image.initrd.path }),
    ...(!boot || image.kernelCmdline === undefined ? {} : { kernelCmdline: image.kernelCmdline }),
  };
}
