import type { BootImage, Driver } from '../../drivers/driver.ts';
import { imageStateRecord, resolveImage } from '../image/resolve.ts';
import type { OpenProfile } from './profile-context.ts';

/**
 * The base image for a new VM: resolved (cache, local build or download) in
 * a format the driver boots, and recorded in the profile's state so the
 * cache never removes it while the VM's disk depends on it.
 */
export async function prepareImage(p: OpenProfile, driver: Driver, signal: AbortSignal, update: (detail: string) => void): Promise<BootImage> {
  const image = await resolveImage({
    home: p.home,
    image: String(p.settings['image']),
    imageSha256: String(p.settings['image-sha256'] ?? ''),
    formats: driver.info.diskFormats,
    offline: p.settings['offline'] === true,
    download: { signal },
    onStatus: update,
    onWait: (holder) => update(`waiting for ${holder}, which is fetching the same image`),
  });
  await p.state.update((s) => {
    s.image = { ...imageStateRecord(image) };
  });
  return {
    format: image.format,
    disk: image.disk.path,
    ...(image.kernel === undefined ? {} : { kernel: image.kernel.path }),
    ...(image.initrd === undefined ? {} : { initrd: image.initrd.path }),
    ...(image.kernelCmdline === undefined ? {} : { kernelCmdline: image.kernelCmdline }),
  };
}
