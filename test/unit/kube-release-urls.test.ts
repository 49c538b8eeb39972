/**
 * The official URL layout of every node bundle artifact and its checksum file
 * (src/kube/release-urls.ts), and reading the checksum files in the forms the
 * projects publish (src/kube/checksum-file.ts).
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { checksumFor } from '../../src/kube/checksum-file.ts';
import { DEFAULT_RELEASE_URLS, bundleArtifacts, goArch, hostKubectlArtifact, hostOs, releaseUrlsFrom } from '../../src/kube/release-urls.ts';
import { kubernetesRelease } from '../../src/kube/versions.ts';

const v137 = kubernetesRelease('v1.37.2')!;
const v136 = kubernetesRelease('v1.36.3')!;

describe('release URLs', () => {
  test('every artifact of v1.37.2/amd64 at its official URL, with its checksum file', () => {
    const a = bundleArtifacts(v137, 'amd64', DEFAULT_RELEASE_URLS);
    assert.deepEqual(a.map((x) => [x.name, x.url, x.checksumUrl, x.fileName]), [
      ['kubeadm', 'https://dl.k8s.io/release/v1.37.2/bin/linux/amd64/kubeadm', 'https://dl.k8s.io/release/v1.37.2/bin/linux/amd64/kubeadm.sha256', 'kubeadm'],
      ['kubelet', 'https://dl.k8s.io/release/v1.37.2/bin/linux/amd64/kubelet', 'https://dl.k8s.io/release/v1.37.2/bin/linux/amd64/kubelet.sha256', 'kubelet'],
      ['kubectl', 'https://dl.k8s.io/release/v1.37.2/bin/linux/amd64/kubectl', 'https://dl.k8s.io/release/v1.37.2/bin/linux/amd64/kubectl.sha256', 'kubectl'],
      ['containerd',
        'https://github.com/containerd/containerd/releases/download/v2.4.2/containerd-2.4.2-linux-amd64.tar.gz',
        'https://github.com/containerd/containerd/releases/download/v2.4.2/containerd-2.4.2-linux-amd64.tar.gz.sha256sum',
        'containerd-2.4.2-linux-amd64.tar.gz'],
      ['runc', 'https://github.com/opencontainers/runc/releases/download/v1.5.3/runc.amd64', 'https://github.com/opencontainers/runc/releases/download/v1.5.3/runc.sha256sum', 'runc.amd64'],
      ['cni-plugins',
        'https://github.com/containernetworking/plugins/releases/download/v1.10.0/cni-plugins-linux-amd64-v1.10.0.tgz',
        'https://github.com/containernetworking/plugins/releases/download/v1.10.0/cni-plugins-linux-amd64-v1.10.0.tgz.sha256',
        'cni-plugins-linux-amd64-v1.10.0.tgz'],
      ['crictl',
        'https://github.com/kubernetes-sigs/cri-tools/releases/download/v1.37.0/crictl-v1.37.0-linux-amd64.tar.gz',
        'https://github.com/kubernetes-sigs/cri-tools/releases/download/v1.37.0/crictl-v1.37.0-linux-amd64.tar.gz.sha256',
        'crictl-v1.37.0-linux-amd64.tar.gz'],
    ]);
  });

  test('a mirror base (with or without a trailing slash) keeps the layout; the architecture and the release\'s own versions are used', () => {
    const urls = releaseUrlsFrom({
      'kubernetes-release-url': 'http://mirror.internal/k8s/',
      'containerd-release-url': 'http://mirror.internal/ctd',
      'runc-release-url': 'http://mirror.internal/runc//',
      'cni-plugins-release-url': 'http://mirror.internal/cni',
      'cri-tools-release-url': 'http://mirror.internal/cri',
    });
    const a = bundleArtifacts(v136, 'arm64', urls);
    assert.deepEqual(a.map((x) => x.url), [
      'http://mirror.internal/k8s/v1.36.3/bin/linux/arm64/kubeadm',
      'http://mirror.internal/k8s/v1.36.3/bin/linux/arm64/kubelet',
      'http://mirror.internal/k8s/v1.36.3/bin/linux/arm64/kubectl',
      'http://mirror.internal/ctd/v2.3.7/containerd-2.3.7-linux-arm64.tar.gz',
      'http://mirror.internal/runc/v1.5.3/runc.arm64',
      'http://mirror.internal/cni/v1.10.0/cni-plugins-linux-arm64-v1.10.0.tgz',
      'http://mirror.internal/cri/v1.36.0/crictl-v1.36.0-linux-arm64.tar.gz',
    ]);
    assert.deepEqual(a.map((x) => x.setting), [
      'kubernetes-release-url', 'kubernetes-release-url', 'kubernetes-release-url', 'containerd-release-url', 'runc-release-url', 'cni-plugins-release-url', 'cri-tools-release-url',
    ]);
    assert.deepEqual(releaseUrlsFrom({}), DEFAULT_RELEASE_URLS);
  });

  test('what each artifact contributes to the bundle layout', () => {
    const paths = bundleArtifacts(v137, 'amd64', DEFAULT_RELEASE_URLS).flatMap((x) => x.contents.map((c) => `${x.name}:${c.member}->${c.path}`));
    assert.deepEqual(paths, [
      'kubeadm:->bin/kubeadm', 'kubelet:->bin/kubelet', 'kubectl:->bin/kubectl',
      'containerd:bin/containerd->bin/containerd', 'containerd:bin/ctr->bin/ctr', 'containerd:bin/containerd-shim-runc-v2->bin/containerd-shim-runc-v2',
      'runc:->bin/runc',
      'cni-plugins:bridge->cni/bridge', 'cni-plugins:host-local->cni/host-local', 'cni-plugins:loopback->cni/loopback', 'cni-plugins:portmap->cni/portmap',
      'crictl:crictl->bin/crictl',
    ]);
  });

  test('kubectl for macOS and Windows hosts', () => {
    const mac = hostKubectlArtifact('v1.37.2', 'darwin', 'arm64', DEFAULT_RELEASE_URLS);
    assert.equal(mac.url, 'https://dl.k8s.io/release/v1.37.2/bin/darwin/arm64/kubectl');
    assert.equal(mac.checksumUrl, 'https://dl.k8s.io/release/v1.37.2/bin/darwin/arm64/kubectl.sha256');
    const win = hostKubectlArtifact('v1.36.3', 'windows', 'amd64', DEFAULT_RELEASE_URLS);
    assert.equal(win.url, 'https://dl.k8s.io/release/v1.36.3/bin/windows/amd64/kubectl.exe');
    assert.equal(win.checksumUrl, 'https://dl.k8s.io/release/v1.36.3/bin/windows/amd64/kubectl.exe.sha256');
    assert.equal(win.fileName, 'kubectl.exe');
  });

  test('Node\'s platform and architecture names map to the release names', () => {
    assert.equal(goArch('x64'), 'amd64');
    assert.equal(goArch('arm64'), 'arm64');
    assert.equal(goArch('ia32'), undefined);
    assert.equal(hostOs('win32'), 'windows');
    assert.equal(hostOs('darwin'), 'darwin');
    assert.equal(hostOs('linux'), 'linux');
    assert.equal(hostOs('freebsd'), undefined);
  });
});

describe('checksum files', () => {
  const h1 = 'a'.repeat(64);
  const h2 = '0123456789abcdef'.repeat(4);
  const h3 = 'f'.repeat(64);

  test('a bare digest (dl.k8s.io, cri-tools), with or without a newline, any case', () => {
    assert.deepEqual(checksumFor(h2, 'kubeadm'), { ok: true, sha256: h2 });
    assert.deepEqual(checksumFor(`${h2.toUpperCase()}\n`, 'crictl-v1.37.0-linux-amd64.tar.gz'), { ok: true, sha256: h2 });
    assert.deepEqual(checksumFor(`${h2}\r\n`, 'kubectl.exe'), { ok: true, sha256: h2 });
  });

  test('"<digest>  <name>" and binary-mode "<digest> *<name>" (containerd, CNI plugins)', () => {
    assert.deepEqual(checksumFor(`${h1}  containerd-2.4.2-linux-amd64.tar.gz\n`, 'containerd-2.4.2-linux-amd64.tar.gz'), { ok: true, sha256: h1 });
    assert.deepEqual(checksumFor(`${h1} *cni-plugins-linux-amd64-v1.10.0.tgz\n`, 'cni-plugins-linux-amd64-v1.10.0.tgz'), { ok: true, sha256: h1 });
    assert.deepEqual(checksumFor(`${h1}  ./cni-plugins-linux-amd64-v1.10.0.tgz\n`, 'cni-plugins-linux-amd64-v1.10.0.tgz'), { ok: true, sha256: h1 });
  });

  test('runc.sha256sum: the line of this architecture\'s binary, never another', () => {
    const runc = `${h1}  runc.amd64\n${h2}  runc.arm64\n${h3}  runc.ppc64le\n${'b'.repeat(64)}  runc-1.5.3.tar.xz\n`;
    assert.deepEqual(checksumFor(runc, 'runc.amd64'), { ok: true, sha256: h1 });
    assert.deepEqual(checksumFor(runc, 'runc.arm64'), { ok: true, sha256: h2 });
    const r = checksumFor(runc, 'runc.s390x');
    assert.equal(r.ok, false);
    assert.match(r.ok ? '' : r.problem, /does not list runc\.s390x \(it lists runc\.amd64, runc\.arm64, runc\.ppc64le, runc-1\.5\.3\.tar\.xz\)/);
    // A name that merely ends the same way is another file.
    assert.equal(checksumFor(`${h1}  xrunc.amd64\n`, 'runc.amd64').ok, false);
  });

  test('one-line files for another file, empty files, HTML and conflicting lines are refused', () => {
    const other = checksumFor(`${h1}  containerd-2.4.1-linux-amd64.tar.gz\n`, 'containerd-2.4.2-linux-amd64.tar.gz');
    assert.equal(other.ok, false);
    assert.equal(checksumFor('', 'kubeadm').ok, false);
    assert.match((checksumFor(' \n', 'kubeadm') as { problem: string }).problem, /empty/);
    assert.match((checksumFor('<html><body>Not Found</body></html>', 'kubeadm') as { problem: string }).problem, /neither a sha256 digest/);
    assert.match((checksumFor(`${h1.slice(1)}\n`, 'kubeadm') as { problem: string }).problem, /neither a sha256 digest/);
    assert.match((checksumFor(`${h1}  runc.amd64\n${h2}  runc.amd64\n`, 'runc.amd64') as { problem: string }).problem, /2 different digests/);
    // The same line twice is not a conflict.
    assert.deepEqual(checksumFor(`${h1}  runc.amd64\n${h1}  runc.amd64\n`, 'runc.amd64'), { ok: true, sha256: h1 });
  });
});
