import type { Command } from 'commander';
import { action } from './run-command.ts';
import type { CommandContext } from './run-command.ts';
import { withExamples } from './examples.ts';
import { GROUP_IMAGES } from './groups.ts';
import type { BundleLeftover, BundleListItem, InstalledBundle } from '../kube/bundle-store.ts';

export function registerBundle(program: Command): void {
  const bundle = program
    .command('bundle')
    .description('Kubernetes node bundles: the verified cache, imports, builds from Go modules')
    .helpGroup(GROUP_IMAGES);
  withExamples(bundle, [
    ['devcluster bundle list', 'what is in the cache'],
    ['devcluster bundle import ./kube-bundle-v1.37.2.tgz', 'a bundle built elsewhere'],
    ['devcluster bundle build', 'build the default version from Go modules (Linux)'],
  ]);

  withExamples(
    bundle
      .command('list')
      .alias('ls')
      .description('List cached Kubernetes node bundles: version, source, components, images, size and status')
      .option('-o, --output <format>', 'text or json', 'text')
      .action(action(async (ctx) => list(ctx), { formats: ['text', 'json'] })),
    [['devcluster bundle list', 'a table'], ['devcluster bundle list -o json', 'for scripts']],
  );

  withExamples(
    bundle
      .command('import <source>')
      .description('Import a Kubernetes node bundle (a directory or a .tar, .tar.gz or .tgz archive of one) into the cache, verified against its manifest')
      .addHelpText('after', '\nThe bundle\'s manifest.json must be at the root of the directory or archive, or in its single\ntop-level directory. Every file is checked (size, mode, sha256) and nothing else may be there;\na bundle that fails is refused and the cache is left as it was. The version comes from the manifest.\n')
      .action(action(async (ctx, [source]) => importCommand(ctx, source as string), { persistLog: true })),
    [
      ['devcluster bundle import /srv/kube-bundle/v1.37.2', 'a bundle directory'],
      ['devcluster bundle import kube-bundle-v1.37.2.tgz', 'made with `tar -C <bundle> -czf kube-bundle-v1.37.2.tgz .`'],
    ],
  );

  withExamples(
    bundle
      .command('rm <version>')
      .alias('remove')
      .description('Remove a cached Kubernetes node bundle and its guest medium (refused while a profile\'s cluster was made with that version)')
      .option('-o, --output <format>', 'text or json', 'text')
      .action(action(async (ctx, [version]) => removeCommand(ctx, version as string), { formats: ['text', 'json'], persistLog: true })),
    [['devcluster bundle rm v1.36.3', 'free the space a version no cluster uses']],
  );

  withExamples(
    bundle
      .command('build')
      .description('Build a Kubernetes node bundle from the release\'s Go modules (images/kubernetes/build.sh) and cache it')
      .option('--kubernetes-version <version>', 'the Kubernetes release to build (default: devcluster\'s default version)')
      .addHelpText('after', '\nNeeds Linux x86_64 (Debian 12) with Go, gcc, bash and libseccomp-dev, and a Go module proxy\n(GOPROXY). Go\'s caches are kept in $DEVCLUSTER_GO_CACHE (default: <home>/cache/go): a first build\ntakes about an hour, a rebuild a few minutes. An interrupted build continues where it stopped.\n')
      .action(action(async (ctx, _args, opts) => buildCommand(ctx, opts), { persistLog: true })),
    [['devcluster bundle build', 'the default version'], ['devcluster bundle build --kubernetes-version v1.36.3', 'another supported version']],
  );
}

/** containerd, runc and etcd, the parts whose versions users ask about, then how many more. */
function componentsSummary(components: Readonly<Record<string, string>>): string {
  const shown = ['containerd', 'runc', 'etcd'].filter((c) => components[c] !== undefined);
  const others = Object.keys(components).filter((c) => c !== 'kubernetes' && !shown.includes(c)).length;
  if (shown.length === 0 && others === 0) return '-';
  return [...shown.map((c) => `${c} ${components[c] as string}`), ...(others > 0 ? [`+${others} more`] : [])].join(', ');
}

function statusText(item: BundleListItem): string {
  if (item.status === 'ok') return 'ok';
  const first = item.problems[0] ?? '';
  return `${item.status}: ${first}${item.problems.length > 1 ? ` (+${item.problems.length - 1} more)` : ''}`;
}

function leftoverText(l: BundleLeftover, size: string): string {
  if (l.kind === 'build') return `interrupted build of ${l.version ?? '?'}: ${size} in ${l.path}; \`devcluster bundle build --kubernetes-version ${l.version ?? '?'}\` continues it`;
  if (l.kind === 'downloads') return `downloaded release artifacts: ${size} in ${l.path} (kept to resume or reuse a download)`;
  if (l.kind === 'replaced') return `replaced ${l.version ?? '?'} bundle not yet removed: ${size} in ${l.path}`;
  return l.inProgress
    ? `import or download in progress: ${size} in ${l.path}`
    : `unfinished import or download: ${size} in ${l.path} (its process is gone; the next import or download removes it)`;
}

async function list(ctx: CommandContext): Promise<void> {
  const { listBundles } = await import('../kube/bundle-store.ts');
  const { formatBytes } = await import('../image/progress.ts');
  const { SUPPORTED_KUBERNETES_VERSIONS } = await import('../kube/versions.ts');
  const listing = await listBundles(ctx.home);
  if (ctx.out.format === 'json') {
    ctx.out.json(listing);
    return;
  }
  if (listing.bundles.length === 0) {
    ctx.out.line(`The Kubernetes bundle cache (${listing.cache}) is empty.`);
  } else {
    ctx.out.table(['VERSION', 'SOURCE', 'COMPONENTS', 'IMAGES', 'SIZE', 'STATUS'], listing.bundles.map((b) => [
      b.version,
      b.source ?? 'unknown',
      componentsSummary(b.components),
      b.images === null ? '-' : String(b.images),
      formatBytes(b.sizeBytes),
      statusText(b),
    ]));
    const damaged = listing.bundles.filter((b) => b.problems.length > 1);
    for (const b of damaged) {
      ctx.out.line();
      ctx.out.line(`${b.version} (${b.dir}) is ${b.status}:`);
      for (const p of b.problems.slice(0, 10)) ctx.out.line(`  ${p}`);
      if (b.problems.length > 10) ctx.out.line(`  … and ${b.problems.length - 10} more (devcluster bundle list -o json)`);
    }
  }
  if (listing.leftovers.length > 0) {
    ctx.out.line();
    ctx.out.line('Also in the cache:');
    for (const l of listing.leftovers) ctx.out.line(`  ${leftoverText(l, formatBytes(l.sizeBytes))}`);
  }
  const missing = SUPPORTED_KUBERNETES_VERSIONS.filter((v) => !listing.bundles.some((b) => b.version === v && b.status === 'ok'));
  if (missing.length > 0) {
    ctx.out.line();
    ctx.out.line('Not cached (devcluster start downloads them):');
    for (const v of missing) ctx.out.line(`  ${v}: devcluster bundle build --kubernetes-version ${v}, or devcluster bundle import <dir|archive>`);
  }
}

async function reportInstalled(ctx: CommandContext, installed: InstalledBundle, verb: string): Promise<void> {
  const { formatBytes } = await import('../image/progress.ts');
  const { kubernetesRelease, supportedVersionsText } = await import('../kube/versions.ts');
  const bytes = installed.manifest.files.reduce((sum, f) => sum + f.size, 0);
  const what = `${installed.manifest.files.length} files, ${installed.manifest.images.length} images, ${formatBytes(bytes)}`;
  if (installed.outcome === 'unchanged') {
    ctx.out.success(`Kubernetes ${installed.version} is already cached with the same manifest in ${installed.dir} (${what}); nothing changed`);
  } else {
    ctx.out.success(`Kubernetes ${installed.version} node bundle ${verb}${installed.outcome === 'replaced' ? ', replacing the cached one' : ''}: ${installed.dir} (${what})`);
  }
  if (kubernetesRelease(installed.version) === undefined) {
    ctx.out.warn(`devcluster start installs Kubernetes ${supportedVersionsText()}; this ${installed.version} bundle is cached but not used.`);
  }
}

async function removeCommand(ctx: CommandContext, version: string): Promise<void> {
  const { removeBundle } = await import('../kube/bundle-removal.ts');
  const removed = await removeBundle(ctx.home, version);
  if (ctx.out.format === 'json') {
    ctx.out.json(removed);
    return;
  }
  ctx.out.success(`Removed the Kubernetes ${removed.version} node bundle: ${removed.removed.join(', ')}`);
}

async function importCommand(ctx: CommandContext, source: string): Promise<void> {
  const { importBundle } = await import('../kube/bundle-import.ts');
  const installed = await importBundle(ctx.home, source, { signal: ctx.signal, onStatus: (m) => ctx.out.info(m) });
  await reportInstalled(ctx, installed, 'imported');
}

async function buildCommand(ctx: CommandContext, opts: Record<string, unknown>): Promise<void> {
  const { buildBundle } = await import('../kube/bundle-build.ts');
  const { DEFAULT_KUBERNETES_VERSION } = await import('../kube/versions.ts');
  const { formatDuration } = await import('../image/progress.ts');
  const version = typeof opts['kubernetesVersion'] === 'string' ? opts['kubernetesVersion'] : DEFAULT_KUBERNETES_VERSION;
  const started = performance.now();
  const installed = await buildBundle({
    home: ctx.home,
    version,
    env: ctx.env,
    signal: ctx.signal,
    onStatus: (m) => ctx.out.info(m),
    onOutput: (line) => ctx.out.debug(line),
  });
  await reportInstalled(ctx, installed, `built in ${formatDuration((performance.now() - started) / 1000)}`);
}
