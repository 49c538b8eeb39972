/**
 * The node bundle's download path (src/kube/bundle-download.ts) against a real
 * HTTP server on 127.0.0.1 that serves a built bundle's binaries in the
 * official release layout: the Kubernetes binaries as dl.k8s.io does, each
 * with a bare-digest .sha256; containerd's and crictl's .tar.gz and the CNI
 * plugins' .tgz made here with the real tar the way their release jobs make
 * them, with the checksum files in each project's format (sha256sum lines,
 * runc's one file for every architecture).
 * - a wrong published checksum is refused, and the artifact is nowhere on
 *   disk: not in the staging directory, not as a part file;
 * - a download whose connection is closed half way is resumed with a Range
 *   request, no byte sent twice, and artifacts verified by the failed run are
 *   not fetched again;
 * - the bundle it writes has the built bundle's files byte for byte (sha256),
 *   modes 0755, and a manifest the bundle store accepts;
 * - offline, and a mirror lacking a checksum file, are refused before
 *   anything large is requested.
 *
 * The bundle comes from DEVCLUSTER_KUBE_BUNDLE (default
 * /var/cache/devcluster-test/kube-bundle/v1.37.2); without one this is
 * skipped off CI and fails under CI. It lives outside test/contract/ so
 * `npm test` does not pick it up (about 300 MB pass through the server).
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { chmodSync, copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FaultServer, whenFileReaches } from '../helpers/image-server.ts';
import { skipUnlessPresent } from '../helpers/prerequisite.ts';
import { isDevclusterError } from '../../src/ui/errors.ts';
import { parseBundleManifest, verifyBundleFiles } from '../../src/kube/bundle-manifest.ts';
import { downloadBundle, downloadHostKubectl } from '../../src/kube/bundle-download.ts';
import type { ReleaseUrls } from '../../src/kube/release-urls.ts';

const bundle = process.env['DEVCLUSTER_KUBE_BUNDLE'] ?? '/var/cache/devcluster-test/kube-bundle/v1.37.2';
const skip = skipUnlessPresent(existsSync(join(bundle, 'manifest.json'))
  ? false
  : `no complete bundle at ${bundle} (no manifest.json); build one with images/kubernetes/build.sh v1.37.2 ${bundle}`);

interface BuiltFile { path: string; size: number; mode: string; sha256: string }
interface BuiltManifest { kubernetesVersion: string; platform: { architecture: string }; components: Record<string, string>; files: BuiltFile[] }

function sha256(data: Buffer): string {
  return createHash('sha256').update(data).digest('hex');
}

function filesUnder(dir: string): string[] {
  if (!existsSync(dir)) return [];
  return (readdirSync(dir, { recursive: true }) as string[]).map(String).filter((p) => statSync(join(dir, p)).isFile()).sort();
}

function failsWith(id: string, check?: (e: { message: string; advice: string | undefined; details: Record<string, unknown> }) => void) {
  return (e: unknown) => {
    assert.ok(isDevclusterError(e), `not a DevclusterError: ${String(e)}`);
    assert.equal(e.id, id, e.message);
    check?.(e);
    return true;
  };
}

describe('kube bundle download from the official release layout', { skip }, () => {
  const work = mkdtempSync(join(tmpdir(), 'kube-bundle-download-'));
  const server = new FaultServer();
  const built = skip === false ? JSON.parse(readFileSync(join(bundle, 'manifest.json'), 'utf8')) as BuiltManifest : undefined;
  const version = built?.kubernetesVersion ?? 'v1.37.2';
  const c = built?.components ?? {};
  const arch = built?.platform.architecture ?? 'amd64';
  let urls: ReleaseUrls;
  /** Route path -> the bytes served there, to put back after a test changes one. */
  const served = new Map<string, Buffer>();
  const partDir = join(work, 'parts');

  function serve(path: string, body: Buffer): void {
    served.set(path, body);
    server.route(path, { body, etag: `"${sha256(body).slice(0, 16)}"`, plan: [] });
  }

  /** A gzip tar made by the system tar from `files` (name -> bundle file), entries as `members` lists them. */
  function tarball(name: string, files: Record<string, string>, members: string[], extra: Record<string, string> = {}): Buffer {
    const dir = join(work, 'src', name);
    for (const [member, from] of Object.entries(files)) {
      mkdirSync(join(dir, member, '..'), { recursive: true });
      copyFileSync(join(bundle, from), join(dir, member));
      chmodSync(join(dir, member), 0o755);
    }
    for (const [member, text] of Object.entries(extra)) writeFileSync(join(dir, member), text);
    const out = join(work, 'src', `${name}.tar.gz`);
    execFileSync('tar', ['-czf', out, '--owner=0', '--group=0', '-C', dir, ...members]);
    return readFileSync(out);
  }

  before(async () => {
    await server.start();
    const o = server.origin;
    urls = { kubernetes: `${o}/release`, containerd: `${o}/containerd`, runc: `${o}/runc`, cniPlugins: `${o}/cni`, criTools: `${o}/cri` };
    for (const b of ['kubeadm', 'kubelet', 'kubectl']) {
      const body = readFileSync(join(bundle, 'bin', b));
      serve(`/release/${version}/bin/linux/${arch}/${b}`, body);
      // dl.k8s.io: the bare digest, no newline.
      serve(`/release/${version}/bin/linux/${arch}/${b}.sha256`, Buffer.from(sha256(body)));
    }
    // containerd's Makefile: tar -czf … -C releases/<name> bin (containerd-stress is not in the built bundle).
    const ctdName = `containerd-${(c['containerd'] as string).slice(1)}-linux-${arch}.tar.gz`;
    const ctd = tarball('containerd', { 'bin/containerd': 'bin/containerd', 'bin/ctr': 'bin/ctr', 'bin/containerd-shim-runc-v2': 'bin/containerd-shim-runc-v2' }, ['bin']);
    serve(`/containerd/${c['containerd']}/${ctdName}`, ctd);
    serve(`/containerd/${c['containerd']}/${ctdName}.sha256sum`, Buffer.from(`${sha256(ctd)}  ${ctdName}\n`));
    // runc's release_build.sh: one runc.sha256sum for every architecture and the source tarball.
    const runc = readFileSync(join(bundle, 'bin', 'runc'));
    serve(`/runc/${c['runc']}/runc.${arch}`, runc);
    serve(`/runc/${c['runc']}/runc.sha256sum`, Buffer.from([
      `${sha256(Buffer.from('arm64'))}  runc.arm64`, `${sha256(runc)}  runc.${arch}`, `${sha256(Buffer.from('ppc64le'))}  runc.ppc64le`,
      `${sha256(Buffer.from('src'))}  runc-${(c['runc'] as string).slice(1)}.tar.xz`, '',
    ].join('\n')));
    // The CNI plugins' release job: tar cfzpv … . in bin/ (so ./bridge), README.md and LICENSE beside the plugins.
    const cniName = `cni-plugins-linux-${arch}-${c['cni-plugins']}.tgz`;
    const cni = tarball('cni', Object.fromEntries(['bridge', 'host-local', 'loopback', 'portmap'].map((p) => [p, `cni/${p}`])), ['.'], { 'README.md': 'plugins\n', LICENSE: 'Apache-2.0\n' });
    serve(`/cni/${c['cni-plugins']}/${cniName}`, cni);
    serve(`/cni/${c['cni-plugins']}/${cniName}.sha256`, Buffer.from(`${sha256(cni)}  ${cniName}\n`));
    // cri-tools' release.sh: crictl alone in the archive, the bare digest with a newline.
    const crictlName = `crictl-${c['crictl']}-linux-${arch}.tar.gz`;
    const crictl = tarball('crictl', { crictl: 'bin/crictl' }, ['crictl']);
    serve(`/cri/${c['crictl']}/${crictlName}`, crictl);
    serve(`/cri/${c['crictl']}/${crictlName}.sha256`, Buffer.from(`${sha256(crictl)}\n`));
  });

  after(async () => {
    await server.close();
    rmSync(work, { recursive: true, force: true });
  });

  test('offline: refused before any request', async () => {
    const staging = join(work, 'staging-offline');
    await assert.rejects(downloadBundle({ version, arch, urls, stagingDir: staging, partDir, offline: true, env: {} }),
      failsWith('KUBE_DOWNLOAD_OFFLINE', (e) => assert.match(e.advice ?? '', /bundle import|bundle build/)));
    assert.equal(server.requests.length, 0);
    assert.deepEqual(filesUnder(staging), []);
  });

  test('a mirror without a checksum file, or one not listing the artifact: refused before any artifact is requested', async () => {
    const runcSums = `/runc/${c['runc']}/runc.sha256sum`;
    server.routes.delete(runcSums);
    await assert.rejects(downloadBundle({ version, arch, urls, stagingDir: join(work, 'staging-nosum'), partDir, env: {} }),
      failsWith('KUBE_DOWNLOAD_FAILED', (e) => {
        assert.match(e.message, /runc\.sha256sum answered HTTP 404/);
        assert.equal(e.details['setting'], 'runc-release-url');
      }));
    serve(runcSums, Buffer.from(`${sha256(Buffer.from('x'))}  runc.s390x\n`));
    await assert.rejects(downloadBundle({ version, arch, urls, stagingDir: join(work, 'staging-nosum'), partDir, env: {} }),
      failsWith('KUBE_CHECKSUM_FILE_INVALID', (e) => assert.match(e.message, new RegExp(`does not list runc\\.${arch}`))));
    assert.deepEqual(server.requests.filter((r) => !/\.sha256(sum)?$/.test(r.path)).map((r) => r.path), []);
    assert.deepEqual(filesUnder(join(work, 'staging-nosum')), []);
    assert.deepEqual(filesUnder(partDir).filter((p) => !p.endsWith('/')), []);
  });

  test('a wrong published checksum is refused and the artifact is nowhere on disk', async () => {
    const runcSums = `/runc/${c['runc']}/runc.sha256sum`;
    serve(runcSums, Buffer.from(`${sha256(readFileSync(join(bundle, 'bin', 'runc')))}  runc.${arch}\n`));
    const ctdSums = [...served.keys()].find((p) => p.endsWith('.tar.gz.sha256sum')) as string;
    const ctdName = ctdSums.split('/').at(-1)!.replace(/\.sha256sum$/, '');
    const good = served.get(ctdSums) as Buffer;
    const wrong = sha256(Buffer.from('not containerd'));
    serve(ctdSums, Buffer.from(`${wrong}  ${ctdName}\n`));
    const staging = join(work, 'staging-mismatch');
    mkdirSync(staging);
    try {
      await assert.rejects(downloadBundle({ version, arch, urls, stagingDir: staging, partDir, env: {} }),
        failsWith('KUBE_DOWNLOAD_CHECKSUM_MISMATCH', (e) => {
          assert.match(e.message, new RegExp(`${ctdName} has sha256 [0-9a-f]{64}, but .*\\.sha256sum gives ${wrong}`));
          assert.equal(e.details['setting'], 'containerd-release-url');
        }));
    } finally {
      serve(ctdSums, good);
    }
    assert.deepEqual(filesUnder(staging), [], 'nothing in the staging directory');
    const kept = filesUnder(partDir);
    assert.deepEqual(kept.filter((p) => p.includes('containerd')), [], `no containerd file or part kept: ${kept.join(', ')}`);
    // What verified before the bad one waits for the next run.
    assert.deepEqual(kept, ['kubeadm', 'kubectl', 'kubelet'].map((b) => `${version}-linux-${arch}/${b}`));
    // The bad archive was fetched in full once and then refused (it was not retried from zero against a wrong digest).
    assert.equal(server.requestsTo(`/containerd/${c['containerd']}/${ctdName}`).length, 1);
  });

  test('a download cut half way is resumed with a Range request; the bundle equals the built one', async (t) => {
    const runcPath = `/runc/${c['runc']}/runc.${arch}`;
    const runc = served.get(runcPath) as Buffer;
    const half = Math.floor(runc.length / 2);
    const partPath = join(partDir, `${version}-linux-${arch}`, `runc.${arch}.part`);
    // The connection is closed once the first half is on the client's disk; the wait starts only when the server has sent it.
    let reached: Promise<void> | undefined;
    const whenHalfOnDisk = { then: (ok: () => void, fail: (e: unknown) => void) => (reached ??= whenFileReaches(partPath, half)).then(ok, fail) } as unknown as Promise<void>;
    server.route(runcPath, { body: runc, etag: `"${sha256(runc).slice(0, 16)}"`, plan: [{ kind: 'truncate', after: half, when: whenHalfOnDisk }] });
    const requestsBefore = server.requests.length;
    const staging = join(work, 'staging');
    const events: string[] = [];
    const r = await downloadBundle({
      version, arch, urls, stagingDir: staging, partDir, env: {},
      onProgress: (e) => {
        if (e.kind !== 'download') events.push(e.kind === 'reused' ? `reused ${e.artifact}` : e.kind);
      },
    });

    await t.test('the cut download resumed where it stopped, no byte sent twice', () => {
      const runcRequests = server.requestsTo(runcPath);
      assert.equal(runcRequests.length, 2);
      assert.equal(runcRequests[0]?.headers['range'], undefined);
      assert.equal(runcRequests[1]?.headers['range'], `bytes=${half}-`);
      assert.equal(runcRequests.reduce((n, q) => n + q.bytesSent, 0), runc.length);
      const a = r.artifacts.find((x) => x.name === 'runc')!;
      assert.equal(a.resumedFrom, half);
      assert.equal(a.bytesTransferred, runc.length);
    });

    await t.test('artifacts verified by the failed run were kept, not fetched again', () => {
      assert.deepEqual(events, ['checksums', 'reused kubeadm', 'reused kubelet', 'reused kubectl', 'extract']);
      const fetched = server.requests.slice(requestsBefore).map((q) => q.path).filter((p) => !/\.sha256(sum)?$/.test(p));
      assert.deepEqual(fetched.filter((p) => /\/bin\/linux\//.test(p)), []);
      assert.deepEqual(r.artifacts.filter((x) => x.reused).map((x) => x.name), ['kubeadm', 'kubelet', 'kubectl']);
    });

    await t.test('the bundle has the built bundle\'s binaries byte for byte, modes 0755, and a manifest the store accepts', async () => {
      const builtFiles = (built as BuiltManifest).files.filter((f) => /^(bin|cni)\//.test(f.path));
      assert.deepEqual(filesUnder(staging), ['manifest.json', ...builtFiles.map((f) => f.path)].sort());
      const parsed = parseBundleManifest(JSON.parse(readFileSync(join(staging, 'manifest.json'), 'utf8')));
      assert.ok(parsed.ok, parsed.ok ? '' : parsed.problems.join('; '));
      const m = parsed.value;
      assert.deepEqual(m, r.manifest);
      assert.deepEqual(m.files.map((f) => [f.path, f.sha256, f.size, f.mode]), builtFiles.map((f) => [f.path, f.sha256, f.size, '0755']));
      for (const f of m.files) assert.equal(statSync(join(staging, f.path)).mode & 0o7777, 0o755, f.path);
      assert.deepEqual(m.components, (built as BuiltManifest).components);
      assert.deepEqual(m.images, []);
      assert.equal(m.goVersion, undefined);
      const v = await verifyBundleFiles(staging, m);
      assert.deepEqual(v.ok ? [] : v.problems, []);
      // The verified downloads went into the bundle; nothing is left waiting.
      assert.deepEqual(filesUnder(partDir), []);
    });
  });

  test('kubectl for another host platform, verified against its .sha256', async () => {
    const kubectl = served.get(`/release/${version}/bin/linux/${arch}/kubectl`) as Buffer;
    serve(`/release/${version}/bin/darwin/arm64/kubectl`, kubectl);
    serve(`/release/${version}/bin/darwin/arm64/kubectl.sha256`, Buffer.from(sha256(kubectl)));
    serve(`/release/${version}/bin/windows/amd64/kubectl.exe`, kubectl);
    serve(`/release/${version}/bin/windows/amd64/kubectl.exe.sha256`, Buffer.from(sha256(Buffer.from('another build'))));
    const mac = join(work, 'host', 'kubectl');
    const r = await downloadHostKubectl({ version, os: 'darwin', arch: 'arm64', urls, destination: mac, partDir, env: {} });
    assert.equal(r.sha256, sha256(kubectl));
    assert.equal(sha256(readFileSync(mac)), sha256(kubectl));
    assert.equal(statSync(mac).mode & 0o777, 0o755);
    const win = join(work, 'host', 'kubectl.exe');
    await assert.rejects(downloadHostKubectl({ version, os: 'windows', arch: 'amd64', urls, destination: win, partDir, env: {} }),
      failsWith('KUBE_DOWNLOAD_CHECKSUM_MISMATCH', (e) => assert.match(e.message, /kubectl\.exe\.sha256 gives/)));
    assert.equal(existsSync(win), false);
    assert.deepEqual(filesUnder(partDir), []);
  });
});
