import { Option } from 'commander';
import type { Command } from 'commander';
import { action } from './run-command.ts';
import type { CommandContext } from './run-command.ts';
import { withExamples } from './examples.ts';
import { GROUP_IMAGES } from './groups.ts';
import type { BaseMediaHolder } from '../image/references.ts';

const FORMATS = ['qcow2', 'vhdx', 'vmdk', 'ova', 'raw'];

export function registerImage(program: Command): void {
  const image = program
    .command('image')
    .description('Guest images: the catalog, the verified download cache, local builds')
    .helpGroup(GROUP_IMAGES);
  withExamples(image, [
    ['devcluster image list', 'what is in the cache'],
    ['devcluster image build debian', 'build the Debian guest locally (Linux, root)'],
    ['devcluster image prune', 'free the space of images no cluster uses'],
  ]);

  withExamples(
    image
      .command('list')
      .alias('ls')
      .description('List cached images: name, version, format, size, last use, digest and the profiles using each')
      .option('-o, --output <format>', 'text or json', 'text')
      .action(action(async (ctx) => list(ctx), { formats: ['text', 'json'] })),
    [['devcluster image list', 'a table'], ['devcluster image list -o json', 'for scripts']],
  );

  withExamples(
    image
      .command('pull <name>')
      .description('Download a catalog image into the cache and verify its sha256 (a local build of the name is used when present)')
      .addOption(new Option('--format <format>', 'disk format to fetch (default: the first the catalog offers)').choices(FORMATS))
      .option('--offline', 'use only the cache; fail if the image is not there')
      .option('-o, --output <format>', 'text or json', 'text')
      .addHelpText('after', '\nDEVCLUSTER_IMAGE_MIRROR=URL fetches catalog images from URL instead of the release site\n(the path below the release base is kept); FROM=TO rewrites any URL starting with FROM.\nHTTPS_PROXY, HTTP_PROXY and NO_PROXY are honoured. An interrupted download resumes.\n')
      .action(action(async (ctx, [name], opts) => pull(ctx, name as string, opts), { formats: ['text', 'json'], persistLog: true })),
    [['devcluster image pull photon-5', 'the default image, qcow2'], ['devcluster image pull photon-5 --format vhdx', 'for Hyper-V']],
  );

  withExamples(
    image
      .command('rm <name>')
      .alias('remove')
      .description('Remove a name from the cache (its files go once no other name and no profile uses them), or an unused entry by sha256 prefix')
      .option('--force', 'remove files even when a profile\'s state.json cannot be read (files a known name or profile uses are always kept)')
      .addHelpText('after', '\nSeveral names can share one cached file (the same bytes imported twice). rm NAME removes the\nname; the files stay while another name or a profile\'s VM uses them, and rm says which.\n')
      .action(action(async (ctx, [name], opts) => remove(ctx, name as string, opts))),
    [['devcluster image rm debian-12', 'the local Debian build'], ['devcluster image rm 3f2a9c01b7d4', 'one entry by digest prefix']],
  );

  withExamples(
    image
      .command('prune')
      .description('Remove every cached image no profile uses, plus partial downloads')
      .option('--dry-run', 'list what would be removed, remove nothing')
      .option('--force', 'prune even when a profile\'s state cannot be read')
      .addHelpText('after', '\nPrune removes every cache entry that no profile\'s state.json references: catalog\ndownloads (fetched again when needed), imported files and local builds (which must be\nbuilt again), older versions, partial downloads and leftovers of interrupted imports.\nImages a cluster uses are kept (prune says which profile); an unreadable state.json stops\nthe prune unless --force.\n')
      .action(action(async (ctx, _args, opts) => prune(ctx, opts))),
    [['devcluster image prune --dry-run', 'see what would go'], ['devcluster image prune', 'free the space']],
  );

  withExamples(
    image
      .command('build <recipe>')
      .description('Build a guest image from its recipe (images/<recipe>/build.sh) and import it into the cache')
      .option('--offline', 'refuse (a build downloads packages)')
      .action(action(async (ctx, [recipe], opts) => build(ctx, recipe as string, opts), { persistLog: true })),
    [['sudo -E devcluster image build debian', 'Debian guest (Linux x86_64, root)'], ['devcluster image build photon', 'Photon golden image (Docker, internet)']],
  );

  withExamples(
    image
      .command('import <manifest>')
      .description('Import a built image from its manifest.json (or the directory holding it) into the cache')
      .action(action(async (ctx, [manifest]) => importManifest(ctx, manifest as string))),
    [['devcluster image import /tmp/debian-out', 'after `sudo images/debian/build.sh --out /tmp/debian-out`']],
  );
}

async function offlineSetting(ctx: CommandContext, flag: unknown): Promise<boolean> {
  const { resolveConfig, settingValue } = await import('../profile/config.ts');
  const config = await resolveConfig({ home: ctx.home, profileFlag: ctx.profileFlag, flags: { offline: flag === true ? 'true' : undefined } });
  return settingValue<boolean>(config, 'offline');
}

/** Progress on stderr: one redrawn line on a terminal, one line per 10% otherwise. */
async function progressReporter(ctx: CommandContext) {
  const { progressPrinter } = await import('../image/progress.ts');
  let printer = progressPrinter(process.stderr, 'download');
  return {
    onStatus: (message: string) => {
      ctx.out.info(message);
      printer = progressPrinter(process.stderr, `  ${message.replace(/^Fetching /, '')}`);
    },
    onProgress: (p: Parameters<typeof printer>[0]) => printer(p),
    onWait: (holder: string) => ctx.out.info(`Waiting for ${holder}, which is fetching the same image`),
  };
}

async function settingValues(ctx: CommandContext): Promise<Record<string, unknown>> {
  const config = await import('../profile/config.ts');
  return config.settingValues(await config.resolveConfig({ home: ctx.home, profileFlag: ctx.profileFlag }));
}

/**
 * The hypervisors that register cached bases as their own media
 * (features.registersBaseMedia, Driver.baseMedia), as holders the image
 * cache asks before it removes a file. Only drivers of this build that run
 * on this platform are asked.
 */
async function baseMediaHolders(ctx: CommandContext): Promise<BaseMediaHolder[]> {
  const { drivers } = await import('../../drivers/index.ts');
  const host = { home: ctx.home, settings: {} as Record<string, unknown>, platform: process.platform, signal: ctx.signal };
  const holders: BaseMediaHolder[] = [];
  for (const d of drivers.shipped().filter((x) => x.platforms.includes(host.platform))) {
    const driver = await drivers.load(d.name, host.platform);
    const media = driver.baseMedia;
    if (!driver.info.features.registersBaseMedia || media === undefined) continue;
    if (holders.length === 0) host.settings = await settingValues(ctx);
    holders.push({ name: driver.info.displayName, holds: (path) => media.inUse(host, path), release: (path) => media.release(host, path) });
  }
  return holders;
}

async function list(ctx: CommandContext): Promise<void> {
  const { ImageCache } = await import('../image/cache.ts');
  const { imageUsage } = await import('../image/references.ts');
  const { imageListItems, imageListTable, IMAGE_LIST_HEADERS } = await import('../image/listing.ts');
  const { loadCatalog } = await import('../image/catalog.ts');
  const cache = ImageCache.forHome(ctx.home);
  const index = await cache.readIndex();
  const usage = await imageUsage(ctx.home, index, await baseMediaHolders(ctx));
  const items = imageListItems(await cache.list(), usage, index.images);
  for (const u of usage.unreadable) ctx.out.warn(`The state of profile ${u.profile} cannot be read (${u.problem}); the images it uses are not shown as used.`);
  if (ctx.out.format === 'json') {
    ctx.out.json({ cache: cache.root, images: items });
    return;
  }
  if (items.length === 0) ctx.out.line(`The image cache (${cache.root}) is empty.`);
  else ctx.out.table(IMAGE_LIST_HEADERS, imageListTable(items, Date.now()));
  const catalog = await loadCatalog();
  const missing = catalog.images.filter((i) => !items.some((item) => item.name === i.name));
  if (missing.length > 0) {
    ctx.out.line();
    ctx.out.line('Not cached:');
    for (const i of missing) {
      const how = i.published ? `devcluster image pull ${i.name}` : `devcluster image build ${i.recipe}${Object.keys(i.formats).length > 0 ? ' (not published yet)' : ''}`;
      ctx.out.line(`  ${i.name} ${i.version}: ${how}`);
    }
  }
}

async function pull(ctx: CommandContext, name: string, opts: Record<string, unknown>): Promise<void> {
  const { pullImage, classifyImage } = await import('../image/resolve.ts');
  const { inputError } = await import('../ui/errors.ts');
  if (classifyImage(name).kind !== 'name') {
    throw inputError('USAGE_INVALID_ARGUMENT', `image pull takes a catalog image name, not ${JSON.stringify(name)}`, {
      advice: 'Paths and URLs are used directly: devcluster start --image <path|url> --image-sha256 <sha256>.',
    });
  }
  const offline = await offlineSetting(ctx, opts['offline']);
  const reporter = await progressReporter(ctx);
  const resolved = await pullImage({
    home: ctx.home,
    image: name,
    offline,
    env: ctx.env,
    ...(opts['format'] === undefined ? {} : { format: opts['format'] as 'qcow2' }),
    download: { signal: ctx.signal, onProgress: reporter.onProgress },
    onStatus: reporter.onStatus,
    onWait: reporter.onWait,
  });
  if (ctx.out.format === 'json') {
    ctx.out.json(resolved);
    return;
  }
  ctx.out.success(`${resolved.name}${resolved.version === undefined ? '' : ` ${resolved.version}`} (${resolved.format}, ${resolved.origin === 'build' ? 'local build' : 'verified'}) is in the cache: ${resolved.disk.path}`);
}

async function remove(ctx: CommandContext, name: string, opts: Record<string, unknown>): Promise<void> {
  const { removeImage } = await import('../image/removal.ts');
  const { findCatalogImage, loadCatalog } = await import('../image/catalog.ts');
  const { inputError } = await import('../ui/errors.ts');
  const { formatBytes } = await import('../image/progress.ts');
  const result = await removeImage(ctx.home, name, { force: opts['force'] === true, holders: await baseMediaHolders(ctx) });
  if (result === undefined) {
    if (findCatalogImage(await loadCatalog(), name) !== undefined) {
      ctx.out.info(`${name} is not in the cache; nothing to remove.`);
      return;
    }
    throw inputError('IMAGE_UNKNOWN', `${JSON.stringify(name)} is not in the image cache; accepted: a name or sha256 prefix (12+ characters) from \`devcluster image list\``);
  }
  if (result.nameRemoved !== undefined) ctx.out.line(`Removed the name ${result.label}`);
  for (const r of result.removed) ctx.out.line(`Removed ${r.file ?? r.sha256.slice(0, 12)} (${r.sha256.slice(0, 12)}, ${formatBytes(r.size)})`);
  for (const k of result.kept) ctx.out.line(`Kept ${k.file ?? k.sha256.slice(0, 12)} (${k.sha256.slice(0, 12)}): still used by ${k.why}`);
  const freed = result.removed.reduce((sum, r) => sum + r.size, 0);
  const files = `${result.removed.length} file${result.removed.length === 1 ? '' : 's'}`;
  ctx.out.success(`Removed ${result.label} (${files}, ${formatBytes(freed)}${result.kept.length === 0 ? '' : `; kept ${result.kept.length} in use`})`);
}

async function prune(ctx: CommandContext, opts: Record<string, unknown>): Promise<void> {
  const { pruneImages } = await import('../image/removal.ts');
  const { formatBytes } = await import('../image/progress.ts');
  const dryRun = opts['dryRun'] === true;
  const result = await pruneImages(ctx.home, { dryRun, force: opts['force'] === true, holders: await baseMediaHolders(ctx) });
  if (result.ignoredUnreadable.length > 0) ctx.out.warn(`Pruning as if ${result.ignoredUnreadable.join(', ')} used nothing (--force): their state cannot be read.`);
  for (const r of result.removed) ctx.out.line(`${dryRun ? 'Would remove' : 'Removed'} ${r.file ?? r.sha256.slice(0, 12)} (${r.sha256.slice(0, 12)}, ${formatBytes(r.size)})`);
  for (const k of result.kept) ctx.out.line(`Kept ${k.file ?? k.sha256.slice(0, 12)} (${k.sha256.slice(0, 12)}): used by ${k.why}`);
  if (result.partialsRemoved > 0) ctx.out.line(`${dryRun ? 'Would remove' : 'Removed'} ${result.partialsRemoved} partial download${result.partialsRemoved === 1 ? '' : 's'}`);
  ctx.out.success(`${dryRun ? 'Would free' : 'Freed'} ${formatBytes(result.bytesFreed)}; kept ${result.kept.length} image${result.kept.length === 1 ? '' : 's'} in use`);
}

async function build(ctx: CommandContext, recipe: string, opts: Record<string, unknown>): Promise<void> {
  const { buildImage } = await import('../image/build.ts');
  const offline = await offlineSetting(ctx, opts['offline']);
  const imported = await buildImage({ home: ctx.home, recipe, offline, env: ctx.env, signal: ctx.signal, onStatus: (m) => ctx.out.info(m) });
  reportImported(ctx, imported);
}

async function importManifest(ctx: CommandContext, path: string): Promise<void> {
  const { stat } = await import('node:fs/promises');
  const { join, resolve } = await import('node:path');
  const { importBuiltImage } = await import('../image/built.ts');
  const absolute = resolve(path);
  const isDir = await stat(absolute).then((s) => s.isDirectory(), () => false);
  const imported = await importBuiltImage(isDir ? join(absolute, 'manifest.json') : absolute, { home: ctx.home, signal: ctx.signal, onStatus: (m) => ctx.out.info(m) });
  reportImported(ctx, imported);
}

function reportImported(ctx: CommandContext, imported: { name: string; record: { version: string; formats: Record<string, string | undefined> } }): void {
  const formats = Object.entries(imported.record.formats).map(([k, sha]) => `${k} ${(sha ?? '').slice(0, 12)}`).join(', ');
  ctx.out.success(`${imported.name} ${imported.record.version} is in the cache (${formats}); use it with --image ${imported.name}`);
}
