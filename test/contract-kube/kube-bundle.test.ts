/**
 * A Kubernetes node bundle built by images/kubernetes/build.sh, checked with
 * the real binaries and real archives:
 * - manifest.json lists exactly the files on disk, each with its size, mode
 *   and sha256 (recomputed here);
 * - every binary runs and prints the version the bundle claims, the
 *   Kubernetes ones in the exact form kubeadm's preflight parses;
 * - every binary is statically linked (no ELF interpreter);
 * - the images are exactly what the bundle's kubeadm lists for the version,
 *   each an OCI layout whose index names it in full, whose blobs match their
 *   digests, and whose config's diff_id is the sha256 of the unpacked layer;
 * - the bundle's own containerd (a throwaway instance on a private socket)
 *   imports every archive with `ctr -n k8s.io images import`, under the name
 *   kubeadm asks for, complete and unpacked; then its shim and runc run pause,
 *   kube-proxy, and the iptables and nft inside the kube-proxy image (needs root);
 * - the preload (containerd's state made by build.sh), extracted by the very
 *   script the guest runs, gives that containerd exactly these images,
 *   complete, unpacked for overlayfs, and runnable (needs root).
 *
 * Building a bundle takes a long time, so this file reads one that exists:
 * DEVCLUSTER_KUBE_BUNDLE (default /var/cache/devcluster-test/kube-bundle/<version>),
 * version DEVCLUSTER_KUBE_VERSION (default v1.37.2). Without one it is skipped
 * off CI and fails under CI. It lives outside test/contract/ so `npm test`
 * does not pick it up.
 */
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, lstatSync, mkdtempSync, openSync, readSync, closeSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { join, relative } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { skipUnlessPresent } from '../helpers/prerequisite.ts';
import { parseBundleManifest, verifyBundleFiles } from '../../src/kube/bundle-manifest.ts';
import { preloadScript } from '../../src/kube/guest-bundle.ts';

const version = process.env['DEVCLUSTER_KUBE_VERSION'] ?? 'v1.37.2';
const bundle = process.env['DEVCLUSTER_KUBE_BUNDLE'] ?? `/var/cache/devcluster-test/kube-bundle/${version}`;
const minor = /^v1\.(\d+)\.\d+$/.exec(version)?.[1];
if (minor === undefined) throw new Error(`DEVCLUSTER_KUBE_VERSION must look like v1.37.2, not ${version}`);

const skip = skipUnlessPresent(existsSync(join(bundle, 'manifest.json'))
  ? false
  : `no complete bundle at ${bundle} (no manifest.json); build one with images/kubernetes/build.sh ${version} ${bundle}`);

interface ManifestFile { path: string; size: number; mode: string; sha256: string }
interface ManifestImage { ref: string; file: string; manifestDigest: string }
interface Manifest {
  schemaVersion: number;
  kubernetesVersion: string;
  platform: { os: string; architecture: string };
  goVersion: string;
  components: Record<string, string>;
  images: ManifestImage[];
  preload?: { file: string; snapshotter: string; namespace: string };
  files: ManifestFile[];
}

function loadManifest(): Manifest {
  return JSON.parse(readFileSync(join(bundle, 'manifest.json'), 'utf8')) as Manifest;
}

function run(file: string, args: string[], env: NodeJS.ProcessEnv = {}): string {
  const r = spawnSync(join(bundle, file), args, { encoding: 'utf8', env: { PATH: '/usr/bin:/bin', ...env }, timeout: 60_000 });
  assert.equal(r.error, undefined, `${file} ${args.join(' ')} did not run: ${String(r.error)}`);
  return `${r.stdout}${r.stderr}`;
}

function sha256(data: Buffer): string {
  return createHash('sha256').update(data).digest('hex');
}

function walk(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((d) =>
    d.isDirectory() ? walk(join(dir, d.name)) : [relative(bundle, join(dir, d.name))]);
}

/** Members of an uncompressed tar (ustar/pax), by name; enough for OCI layouts and layers. */
function untar(data: Buffer): Map<string, { type: string; mode: number; body: Buffer }> {
  const members = new Map<string, { type: string; mode: number; body: Buffer }>();
  let offset = 0;
  let paxPath: string | undefined;
  while (offset + 512 <= data.length) {
    const header = data.subarray(offset, offset + 512);
    if (header.every((b) => b === 0)) break;
    const field = (start: number, length: number): string => header.subarray(start, start + length).toString('latin1').replace(/\0.*$/s, '');
    const size = Number.parseInt(field(124, 12).trim() || '0', 8);
    const type = field(156, 1) || '0';
    const prefix = field(345, 155);
    const body = data.subarray(offset + 512, offset + 512 + size);
    offset += 512 + Math.ceil(size / 512) * 512;
    if (type === 'x') {
      paxPath = /\d+ path=([^\n]*)\n/.exec(body.toString('utf8'))?.[1];
      continue;
    }
    const name = paxPath ?? (prefix === '' ? field(0, 100) : `${prefix}/${field(0, 100)}`);
    paxPath = undefined;
    members.set(name, { type, mode: Number.parseInt(field(100, 8).trim() || '0', 8), body });
  }
  return members;
}

/** True when the ELF file asks for a dynamic loader (a PT_INTERP program header). */
function hasInterpreter(path: string): boolean {
  const fd = openSync(path, 'r');
  try {
    const ehdr = Buffer.alloc(64);
    readSync(fd, ehdr, 0, 64, 0);
    assert.equal(ehdr.subarray(0, 4).toString('latin1'), '\x7fELF', `${path} is not an ELF file`);
    assert.equal(ehdr[4], 2, `${path} is not a 64-bit ELF file`);
    const phoff = Number(ehdr.readBigUInt64LE(32));
    const phentsize = ehdr.readUInt16LE(54);
    const phnum = ehdr.readUInt16LE(56);
    const ph = Buffer.alloc(phentsize * phnum);
    readSync(fd, ph, 0, ph.length, phoff);
    for (let i = 0; i < phnum; i++) if (ph.readUInt32LE(i * phentsize) === 3) return true;
    return false;
  } finally {
    closeSync(fd);
  }
}

const K8S = ['kubeadm', 'kubelet', 'kubectl', 'kube-apiserver', 'kube-controller-manager', 'kube-scheduler', 'kube-proxy'];
const BINARIES = [
  'bin/kubeadm', 'bin/kubelet', 'bin/kubectl', 'bin/containerd', 'bin/ctr', 'bin/containerd-shim-runc-v2', 'bin/runc', 'bin/crictl',
  'cni/bridge', 'cni/host-local', 'cni/loopback', 'cni/portmap',
  'components/kube-apiserver', 'components/kube-controller-manager', 'components/kube-scheduler', 'components/kube-proxy',
  'components/etcd', 'components/coredns', 'components/pause',
];

describe(`Kubernetes node bundle ${version} at ${bundle}`, { skip }, () => {
  test('manifest.json describes exactly the files on disk, with sizes, modes and sha256s that match', () => {
    const m = loadManifest();
    assert.equal(m.schemaVersion, 1);
    assert.equal(m.kubernetesVersion, version);
    assert.deepEqual(m.platform, { os: 'linux', architecture: 'amd64' });
    const onDisk = walk(bundle).filter((p) => p !== 'manifest.json').sort();
    assert.deepEqual(m.files.map((f) => f.path), onDisk);
    for (const f of m.files) {
      const full = join(bundle, f.path);
      const data = readFileSync(full);
      assert.equal(data.length, f.size, `${f.path}: size`);
      assert.equal(sha256(data), f.sha256, `${f.path}: sha256`);
      assert.equal((lstatSync(full).mode & 0o7777).toString(8).padStart(4, '0'), f.mode, `${f.path}: mode`);
    }
    for (const b of BINARIES) assert.ok(onDisk.includes(b), `${b} is missing from the bundle`);
  });

  test('src/kube/bundle-manifest.ts accepts the manifest and the files', async () => {
    const parsed = parseBundleManifest(JSON.parse(readFileSync(join(bundle, 'manifest.json'), 'utf8')));
    assert.deepEqual(parsed.ok ? [] : parsed.problems, []);
    assert.ok(parsed.ok);
    const verified = await verifyBundleFiles(bundle, parsed.value);
    assert.deepEqual(verified.ok ? [] : verified.problems, []);
  });

  test('every binary is executable and statically linked', () => {
    for (const b of BINARIES) {
      assert.ok((lstatSync(join(bundle, b)).mode & 0o111) !== 0, `${b} is not executable`);
      assert.equal(hasInterpreter(join(bundle, b)), false, `${b} is dynamically linked`);
    }
  });

  test('the Kubernetes binaries print the release version, in the form kubeadm preflight parses', () => {
    assert.equal(run('bin/kubeadm', ['version', '-o', 'short']).trim(), version);
    const kubectl = JSON.parse(run('bin/kubectl', ['version', '--client', '-o', 'json'])) as { clientVersion: Record<string, string> };
    assert.equal(kubectl.clientVersion['gitVersion'], version);
    assert.equal(kubectl.clientVersion['major'], '1');
    assert.equal(kubectl.clientVersion['minor'], minor);
    // kubeadm's KubeletVersion check: cmd/kubeadm/app/preflight/utils.go.
    const kubeletVersionPattern = /^\s*Kubernetes v(\d+\.\d+\.\d+)([-0-9a-zA-Z_.+]*)?\s*$/;
    for (const name of K8S.filter((n) => n !== 'kubeadm' && n !== 'kubectl')) {
      const file = name === 'kubelet' ? 'bin/kubelet' : `components/${name}`;
      const out = run(file, ['--version']);
      assert.equal(out.trim(), `Kubernetes ${version}`, `${name} --version`);
      assert.equal(kubeletVersionPattern.exec(out)?.[1], version.slice(1), `${name} --version does not parse`);
    }
  });

  test('the other binaries print the versions the manifest records', () => {
    const c = loadManifest().components;
    for (const key of ['etcd', 'containerd', 'runc', 'crictl', 'cni-plugins', 'coredns', 'pause']) {
      assert.match(c[key] ?? '', /^v?\d+\.\d+\.\d+(-\d+)?$/, `components.${key}`);
    }
    const bare = (v: string | undefined): string => (v ?? '').replace(/^v/, '');
    assert.match(run('components/etcd', ['--version']), new RegExp(`^etcd Version: ${bare(c['etcd'])}$`, 'm'));
    assert.match(run('bin/containerd', ['--version']), new RegExp(`^containerd github.com/containerd/containerd/v2 ${c['containerd']} `));
    assert.match(run('bin/ctr', ['--version']), new RegExp(`^ctr github.com/containerd/containerd/v2 ${c['containerd']}$`, 'm'));
    assert.match(run('bin/containerd-shim-runc-v2', ['-v']), new RegExp(`Version:\\s+${c['containerd']}$`, 'm'));
    assert.match(run('bin/runc', ['--version']), new RegExp(`^runc version ${bare(c['runc'])}$`, 'm'));
    assert.match(run('bin/runc', ['--version']), /^libseccomp: \d+\.\d+\.\d+$/m, 'runc without seccomp');
    assert.match(run('bin/crictl', ['--version']), new RegExp(`^crictl version ${c['crictl']}$`, 'm'));
    for (const plugin of ['bridge', 'host-local', 'loopback', 'portmap']) {
      // With CNI_COMMAND=VERSION a plugin answers with the spec versions it supports.
      const versions = JSON.parse(run(`cni/${plugin}`, [], { CNI_COMMAND: 'VERSION' })) as { supportedVersions: string[] };
      assert.ok(versions.supportedVersions.includes('1.0.0'), `${plugin} lacks CNI 1.0.0`);
      assert.match(run(`cni/${plugin}`, []), new RegExp(`CNI ${plugin} plugin ${c['cni-plugins']}`));
    }
    assert.match(run('components/coredns', ['-version']), new RegExp(`^CoreDNS-${bare(c['coredns'])}$`, 'm'));
    assert.match(run('components/pause', ['-v']), new RegExp(`^pause\\.c v${c['pause']}-`, 'm'));
  });

  test('the images are the ones kubeadm lists, each a complete OCI layout named in full', () => {
    const m = loadManifest();
    const expected = run('bin/kubeadm', ['config', 'images', 'list', '--kubernetes-version', version]).trim().split('\n').sort();
    assert.equal(expected.length, 7, `kubeadm lists ${expected.join(', ')}`);
    assert.deepEqual(m.images.map((i) => i.ref).sort(), expected);
    for (const image of m.images) {
      const layout = untar(readFileSync(join(bundle, image.file)));
      assert.deepEqual(JSON.parse(layout.get('oci-layout')?.body.toString() ?? 'null'), { imageLayoutVersion: '1.0.0' }, `${image.file}: oci-layout`);
      const blob = (digest: string): Buffer => {
        const b = layout.get(`blobs/sha256/${digest.replace(/^sha256:/, '')}`)?.body;
        assert.ok(b !== undefined, `${image.file}: blob ${digest} is missing`);
        assert.equal(`sha256:${sha256(b)}`, digest, `${image.file}: blob ${digest} does not match its digest`);
        return b;
      };
      const index = JSON.parse(layout.get('index.json')?.body.toString() ?? 'null') as {
        schemaVersion: number; manifests: { mediaType: string; digest: string; size: number; annotations: Record<string, string>; platform: { os: string; architecture: string } }[];
      };
      assert.equal(index.schemaVersion, 2);
      assert.equal(index.manifests.length, 1);
      const d = index.manifests[0];
      assert.ok(d !== undefined);
      assert.equal(d.annotations['io.containerd.image.name'], image.ref);
      assert.equal(d.annotations['org.opencontainers.image.ref.name'], image.ref.slice(image.ref.lastIndexOf(':') + 1));
      assert.deepEqual(d.platform, { os: 'linux', architecture: 'amd64' });
      assert.equal(d.digest, image.manifestDigest);
      const manifestBlob = blob(d.digest);
      assert.equal(manifestBlob.length, d.size);
      const manifest = JSON.parse(manifestBlob.toString()) as { config: { digest: string }; layers: { mediaType: string; digest: string }[] };
      const config = JSON.parse(blob(manifest.config.digest).toString()) as {
        os: string; architecture: string; rootfs: { type: string; diff_ids: string[] }; config: { Entrypoint?: string[] };
      };
      assert.equal(config.os, 'linux');
      assert.equal(config.architecture, 'amd64');
      assert.equal(manifest.layers.length, config.rootfs.diff_ids.length);
      const files = new Map<string, { type: string; mode: number; body: Buffer }>();
      manifest.layers.forEach((layerDesc, i) => {
        assert.equal(layerDesc.mediaType, 'application/vnd.oci.image.layer.v1.tar+gzip');
        const layerTar = gunzipSync(blob(layerDesc.digest));
        assert.equal(`sha256:${sha256(layerTar)}`, config.rootfs.diff_ids[i], `${image.file}: diff_id of layer ${i}`);
        for (const [name, member] of untar(layerTar)) files.set(name, member);
      });
      // The binary the image exists for, byte for byte the one in components/.
      const name = image.ref.slice('registry.k8s.io/'.length, image.ref.lastIndexOf(':'));
      const inImage = { 'coredns/coredns': 'coredns', pause: 'pause' }[name] ?? `usr/local/bin/${name}`;
      const component = name === 'coredns/coredns' ? 'coredns' : name;
      const member = files.get(inImage);
      assert.ok(member !== undefined, `${image.file}: /${inImage} is missing`);
      assert.equal(member.mode & 0o111, 0o111, `${image.file}: /${inImage} is not executable`);
      assert.equal(sha256(member.body), sha256(readFileSync(join(bundle, 'components', component))), `${image.file}: /${inImage} differs from components/${component}`);
      if (name === 'pause' || name === 'coredns/coredns') assert.deepEqual(config.config.Entrypoint, [`/${inImage}`]);
    }
  });

  /**
   * A throwaway instance of the bundle's containerd on a private socket. It only stores, unpacks
   * and runs images: without CRI it needs no CNI. Its own mount namespace keeps its mounts there.
   */
  async function bundleContainerd(tmp: string, root: string, snapshotter: 'native' | 'overlayfs'): Promise<(...args: string[]) => string> {
    const sock = join(tmp, 'containerd.sock');
    // The transfer service unpacks only for the platforms listed here.
    writeFileSync(join(tmp, 'config.toml'), [
      'version = 3',
      'disabled_plugins = ["io.containerd.grpc.v1.cri", "io.containerd.cri.v1.runtime", "io.containerd.cri.v1.images"]',
      "[[plugins.'io.containerd.transfer.v1.local'.unpack_config]]",
      "  platform = 'linux/amd64'",
      `  snapshotter = '${snapshotter}'`,
      '',
    ].join('\n'));
    let log = '';
    const daemon: ChildProcess = spawn('unshare', ['--mount', '--propagation', 'private', join(bundle, 'bin/containerd'),
      '--config', join(tmp, 'config.toml'), '--root', root, '--state', join(tmp, 'state'), '--address', sock, '--log-level', 'warn',
    ], { stdio: ['ignore', 'ignore', 'pipe'], env: { PATH: `${join(bundle, 'bin')}:/usr/sbin:/usr/bin:/sbin:/bin` } });
    daemon.stderr?.on('data', (d: Buffer) => { log += d.toString(); });
    const exited = new Promise<void>((resolve) => daemon.once('exit', () => resolve()));
    after(async () => {
      daemon.kill();
      await exited;
      rmSync(tmp, { recursive: true, force: true });
    });
    const ctr = (...args: string[]): string => {
      const r = spawnSync(join(bundle, 'bin/ctr'), ['--address', sock, '--namespace', 'k8s.io', ...args], { encoding: 'utf8', timeout: 120_000 });
      assert.equal(r.status, 0, `ctr ${args.join(' ')}: ${r.stdout}${r.stderr}\ncontainerd log:\n${log}`);
      return r.stdout;
    };
    // Wait for the socket to answer (no timing assertion: the loop ends on success, on exit, or after 600 tries).
    for (let i = 0; i < 600; i++) {
      if (daemon.exitCode !== null) assert.fail(`containerd exited: ${log}`);
      if (spawnSync(join(bundle, 'bin/ctr'), ['--address', sock, 'version'], { timeout: 10_000 }).status === 0) break;
      await sleep(100);
    }
    return ctr;
  }

  /** Each image as containerd lists it, and whether its content is complete and unpacked. */
  function assertHoldsBundleImages(ctr: (...args: string[]) => string, m: Manifest, snapshotter: string): void {
    for (const image of m.images) {
      const row = ctr('images', 'ls', `name==${image.ref}`).trim().split('\n').slice(1).map((l) => l.split(/\s+/));
      assert.deepEqual(row.map((r) => [r[0], r[2]]), [[image.ref, image.manifestDigest]], `${image.ref} as containerd sees it`);
      const check = ctr('images', 'check', '--snapshotter', snapshotter, `name==${image.ref}`);
      assert.match(check, /\scomplete\s/, `${image.ref}: content incomplete`);
      assert.match(check, /\strue\s*$/m, `${image.ref}: not unpacked for ${snapshotter}`);
    }
    assert.deepEqual(ctr('images', 'ls', '-q').trim().split('\n').sort(), m.images.map((i) => i.ref).sort());
  }

  /** Containers from the bundle's images, through the bundle's shim and runc (found on the daemon's PATH). */
  function assertRunsBundleImages(ctr: (...args: string[]) => string, m: Manifest, snapshotter: string): void {
    let containers = 0;
    const inContainer = (ref: string, ...command: string[]): string =>
      ctr('run', '--snapshotter', snapshotter, '--rm', ref, `check-${++containers}`, ...command).trim();
    const ref = (name: string): string => m.images.find((i) => i.ref.startsWith(`registry.k8s.io/${name}:`))?.ref ?? assert.fail(`no ${name} image`);
    assert.match(inContainer(ref('pause'), '/pause', '-v'), new RegExp(`^pause\\.c v${m.components['pause'] ?? ''}-`));
    assert.equal(inContainer(ref('kube-proxy'), '/usr/local/bin/kube-proxy', '--version'), `Kubernetes ${version}`);
    assert.match(inContainer(ref('kube-proxy'), '/usr/sbin/iptables', '--version'), /^iptables v\d+\.\d+\.\d+ \(nf_tables\)$/);
    assert.match(inContainer(ref('kube-proxy'), '/usr/sbin/nft', '--version'), /^nftables v\d+\.\d+\.\d+/);
  }

  const rootSkip = skipUnlessPresent(process.getuid?.() === 0 ? false : 'unpacking images into containerd needs root');
  test('the bundle\'s containerd imports every archive under its kubeadm name, and its runc runs them', { skip: rootSkip }, async () => {
    const m = loadManifest();
    const tmp = mkdtempSync('/tmp/kube-bundle-import-');
    // The native snapshotter works on any filesystem (overlayfs may not nest where the test runs).
    const ctr = await bundleContainerd(tmp, join(tmp, 'root'), 'native');
    for (const image of m.images) ctr('images', 'import', '--snapshotter', 'native', '--platform', 'linux/amd64', join(bundle, image.file));
    assertHoldsBundleImages(ctr, m, 'native');
    assertRunsBundleImages(ctr, m, 'native');
  });

  test('the preload, extracted as the guest extracts it, is containerd\'s state for exactly these images, unpacked and runnable', { skip: rootSkip }, async () => {
    const m = loadManifest();
    // build.sh makes the preload whenever it runs as root, as it does here.
    assert.deepEqual(m.preload, { file: 'preload/containerd-overlayfs.tar', snapshotter: 'overlayfs', namespace: 'k8s.io' });
    const tmp = mkdtempSync('/var/tmp/kube-bundle-preload-');
    const root = join(tmp, 'root');
    const extract = (): string => {
      const r = spawnSync('sh', ['-c', ['set -e', ...preloadScript(join(bundle, m.preload?.file ?? ''), root), 'preload_wait'].join('\n')], { encoding: 'utf8' });
      assert.equal(r.status, 0, `the guest's extraction: ${r.stdout}${r.stderr}`);
      return r.stdout.trim();
    };
    assert.equal(extract(), 'preloaded');
    assert.equal(lstatSync(root).mode & 0o7777, 0o711);
    assert.equal(existsSync(`${root}.devcluster-preload`), false, 'the staging directory was renamed into place');
    const ctr = await bundleContainerd(tmp, root, 'overlayfs');
    assertHoldsBundleImages(ctr, m, 'overlayfs');
    assertRunsBundleImages(ctr, m, 'overlayfs');
    // A containerd that has state keeps it: the script extracts nothing over it.
    assert.equal(extract(), '');
    assertHoldsBundleImages(ctr, m, 'overlayfs');
  });
});
