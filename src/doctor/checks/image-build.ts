import { access, constants } from 'node:fs/promises';
import { findOnPath } from '../../host/path-search.ts';
import { ImageCache } from '../../image/cache.ts';
import { loadCatalog } from '../../image/catalog.ts';
import { classifyImage } from '../../image/resolve.ts';
import { hostPackageManager, installFix } from '../install-fix.ts';
import type { NeededTool } from '../install-fix.ts';
import { pass, skip, warn } from '../outcome.ts';
import type { Check, CheckContext } from '../types.ts';

/** The keyring images/debian/build.sh verifies Debian's archive with. */
export const DEBIAN_KEYRING = '/usr/share/keyrings/debian-archive-keyring.gpg';

/**
 * What images/debian/build.sh needs from the host beyond a base system
 * (its check_tools), with the packages that provide each. mke2fs and e2fsck
 * live in /sbin, which is not on an ordinary user's PATH.
 */
export const DEBIAN_BUILD_TOOLS: readonly NeededTool[] = [
  { name: 'mmdebstrap', packages: { 'apt-get': 'mmdebstrap', dnf: 'mmdebstrap', pacman: 'mmdebstrap' } },
  { name: 'mke2fs', packages: { 'apt-get': 'e2fsprogs', dnf: 'e2fsprogs', pacman: 'e2fsprogs', zypper: 'e2fsprogs' } },
  { name: 'e2fsck', packages: { 'apt-get': 'e2fsprogs', dnf: 'e2fsprogs', pacman: 'e2fsprogs', zypper: 'e2fsprogs' } },
  { name: 'jq', packages: { 'apt-get': 'jq', dnf: 'jq', pacman: 'jq', zypper: 'jq' } },
  { name: 'dpkg-query', packages: { 'apt-get': 'dpkg', dnf: 'dpkg', pacman: 'dpkg' } },
  { name: DEBIAN_KEYRING, packages: { 'apt-get': 'debian-archive-keyring', pacman: 'debian-archive-keyring' } },
];

const SBIN = ['/usr/sbin', '/sbin'];

async function present(ctx: CheckContext, tool: NeededTool): Promise<boolean> {
  if (tool.name.startsWith('/')) {
    return access(tool.name, constants.R_OK).then(() => true, () => false);
  }
  return (await findOnPath(tool.name, { env: ctx.env, platform: ctx.host.platform, extraDirs: SBIN })) !== undefined;
}

/**
 * Why a start would build the Debian guest here, the way start chooses its
 * image (src/cluster/image-step.ts): an explicit debian-12 that is not
 * cached, or a default image when no catalog image is cached or published.
 * Undefined when no build is needed.
 */
async function buildNeeded(ctx: CheckContext): Promise<string | undefined> {
  const setting = ctx.config.settings['image'];
  const image = String(setting?.value ?? '');
  if (classifyImage(image).kind !== 'name') return undefined;
  const catalog = await loadCatalog();
  const cache = ImageCache.forHome(ctx.home);
  const offline = ctx.config.settings['offline']?.value === true;
  const usable = async (name: string) => (await cache.namedImage(name)) !== undefined || (!offline && catalog.images.some((i) => i.name === name && i.published));
  if (setting?.source !== 'default') {
    const entry = catalog.images.find((i) => i.name === image);
    return entry?.recipe === 'debian' && !(await usable(image)) ? `the image ${image} is built on this host and is not in the image cache yet` : undefined;
  }
  for (const candidate of catalog.images) if (await usable(candidate.name)) return undefined;
  return `no catalog image is ${offline ? 'cached (offline)' : 'cached or published'}, so start offers to build the Debian guest`;
}

const debianBuildCheck: Check = {
  id: 'IMAGE_BUILD_TOOLS_MISSING',
  title: 'Guest image build',
  category: 'host',
  looksAt: 'when a start would build the Debian guest (no image cached or published): mmdebstrap, mke2fs, e2fsck, jq, dpkg-query and the Debian archive keyring; --fix installs them with apt-get, dnf or pacman',
  platforms: ['linux'],
  exitCode: 35,
  timeoutMs: 30_000,
  async run(ctx) {
    if (ctx.cluster.exists) return skip(`the cluster of profile ${ctx.profile} already has its image`);
    if (ctx.host.arch !== 'x64') return skip('the Debian guest builds on x86_64 hosts only');
    const why = await buildNeeded(ctx);
    if (why === undefined) return pass('no build needed: the image start uses is cached or published');
    const missing: NeededTool[] = [];
    for (const tool of DEBIAN_BUILD_TOOLS) if (!(await present(ctx, tool))) missing.push(tool);
    ctx.evidence({ command: 'look for mmdebstrap mke2fs e2fsck jq dpkg-query on PATH and /usr/sbin, and the Debian archive keyring', stdout: missing.length === 0 ? 'all present' : `missing: ${missing.map((t) => t.name).join(', ')}` });
    if (missing.length === 0) return pass(`ready to build the Debian guest (${why})`);
    return warn(`${why}, and building it needs ${missing.map((t) => t.name).join(', ')}, which ${missing.length === 1 ? 'is' : 'are'} missing`, {
      details: ['Or start from an image file: --image <path|url> --image-sha256 <hex>.'],
      fix: installFix(await hostPackageManager(ctx), missing, 'the tools that build the Debian guest'),
    });
  },
};

export const IMAGE_BUILD_CHECKS: readonly Check[] = [debianBuildCheck];
