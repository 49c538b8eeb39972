/**
 * The node bundle recipe's inputs (images/kubernetes/build.sh) without a
 * real build: shellcheck on the script; `--versions FILE` read as strictly
 * as versions.env (bad files refused before anything is written or go runs);
 * and `devcluster bundle build` (src/kube/bundle-build.ts) handing build.sh a
 * versions file with the requested release's own pins. A stand-in `go` on
 * PATH records every call and writes small files where go would download
 * modules or link binaries, so the real script runs its containerd, crictl
 * and CNI parts and records the versions it used. The real build is
 * test/contract-kube/kube-bundle.test.ts's input.
 */
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import type { SpawnSyncReturns } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { buildBundle, recipeVersionsFile, recipeVersionsPath } from '../../src/kube/bundle-build.ts';
import type { BundleBuildHost } from '../../src/kube/bundle-build.ts';
import { buildStagingDir } from '../../src/kube/bundle-store.ts';
import { KUBERNETES_RELEASES, kubernetesRelease } from '../../src/kube/versions.ts';
import { tempDir } from '../helpers/cli.ts';
import { rejectsWith } from '../helpers/errors.ts';

const repoRoot = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const buildScript = join(repoRoot, 'images', 'kubernetes', 'build.sh');
const bash = execFileSync('bash', ['-c', 'command -v bash'], { encoding: 'utf8' }).trim();

const root = await tempDir('kube-bundle-recipe-');
after(() => rmSync(root, { recursive: true, force: true }));
let counter = 0;
const fresh = (name: string) => join(root, `${name}-${(counter += 1)}`);

/**
 * Logs "<GOFLAGS>\t<args>" per call. `mod download M@V` writes the .mod file
 * build.sh reads from the download cache (or fails for FAKE_GO_REFUSE's
 * module); `build -o OUT PKG...` writes, per package, a file naming the
 * package, the wrapper module's require line and the ldflags.
 */
const FAKE_GO = `#!${bash}
set -euo pipefail
printf '%s\\t%s\\n' "\${GOFLAGS:-}" "$*" >>"$FAKE_GO_LOG"
case \${1:-} in
  env)
    [[ \${2:-} == GOVERSION ]] || { echo "fake go: unexpected go $*" >&2; exit 90; }
    echo go1.26.8 ;;
  mod)
    case \${2:-} in
      download)
        mod=\${3%@*} ver=\${3##*@}
        if [[ $mod == "\${FAKE_GO_REFUSE:-}" ]]; then echo "fake go: $3: no module proxy in this test" >&2; exit 1; fi
        mkdir -p "$GOMODCACHE/cache/download/$mod/@v"
        printf 'module %s\\n\\ngo 1.24.0\\n' "$mod" >"$GOMODCACHE/cache/download/$mod/@v/$ver.mod" ;;
      tidy) : >go.sum ;;
      *) echo "fake go: unexpected go $*" >&2; exit 90 ;;
    esac ;;
  build)
    shift
    out='' ldflags='' pkgs=()
    while (($#)); do
      case $1 in
        -o) out=$2; shift 2 ;;
        -ldflags) ldflags=$2; shift 2 ;;
        -p | -tags) shift 2 ;;
        -*) shift ;;
        *) pkgs+=("$1"); shift ;;
      esac
    done
    for p in "\${pkgs[@]}"; do
      f=$out
      [[ $out == */ ]] && { mkdir -p "$out"; f=$out\${p##*/}; }
      printf 'package %s\\n%s\\nldflags %s\\n' "$p" "$(grep '^require ' go.mod)" "$ldflags" >"$f"
    done ;;
  *) echo "fake go: unexpected go $*" >&2; exit 90 ;;
esac
`;

interface FakeGo {
  readonly bin: string;
  readonly log: string;
  readonly goCache: string;
  /** GOFLAGS and arguments of every go call, in order; [] when go never ran. */
  calls(): { goflags: string; args: string }[];
}

function fakeGo(): FakeGo {
  const dir = fresh('fake-go');
  const bin = join(dir, 'bin');
  mkdirSync(bin, { recursive: true });
  writeFileSync(join(bin, 'go'), FAKE_GO);
  chmodSync(join(bin, 'go'), 0o755);
  const log = join(dir, 'go.log');
  return {
    bin, log, goCache: join(dir, 'go-cache'),
    calls: () => (existsSync(log) ? readFileSync(log, 'utf8').trimEnd().split('\n').map((l) => {
      const [goflags = '', args = ''] = l.split('\t');
      return { goflags, args };
    }) : []),
  };
}

function runRecipe(go: FakeGo, args: string[]): SpawnSyncReturns<string> {
  return spawnSync(bash, [buildScript, ...args], {
    encoding: 'utf8',
    env: { PATH: `${go.bin}:${process.env.PATH ?? '/usr/bin:/bin'}`, HOME: process.env.HOME ?? '/tmp', LANG: 'C', LC_ALL: 'C', FAKE_GO_LOG: go.log, DEVCLUSTER_GO_CACHE: go.goCache },
    timeout: 120_000,
  });
}

const read = (path: string) => readFileSync(path, 'utf8');
const PARTS = ['--parts', 'containerd,crictl,cni'];

describe('kube bundle recipe: build.sh', () => {
  test('shellcheck reports nothing for build.sh', () => {
    const r = spawnSync('shellcheck', ['--format=gcc', '--external-sources', buildScript], { encoding: 'utf8' });
    assert.equal(r.error, undefined, `shellcheck could not run (${String(r.error)}); install the shellcheck package`);
    assert.equal(r.status, 0, `shellcheck findings in build.sh:\n${r.stdout}${r.stderr}`);
  });

  test('without --versions it builds versions.env\'s pins (the default release\'s)', () => {
    const go = fakeGo();
    const out = fresh('out');
    const r = runRecipe(go, ['v1.37.2', out, '--parts', 'crictl']);
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stderr, /^kube-bundle: pins from \S+\/images\/kubernetes\/versions\.env: containerd v2\.4\.2, runc v1\.5\.3, crictl v1\.37\.0, CNI plugins v1\.10\.0$/m);
    assert.equal(read(join(out, 'versions', 'crictl')), 'v1.37.0\n');
  });

  for (const release of KUBERNETES_RELEASES) {
    test(`--versions with ${release.version}'s pins: containerd, crictl and the CNI plugins are fetched and stamped at those versions`, () => {
      const go = fakeGo();
      const out = fresh('out');
      const pins = join(fresh('pins'), 'versions.env');
      mkdirSync(dirname(pins));
      writeFileSync(pins, recipeVersionsFile(release));
      const r = runRecipe(go, [release.version, out, ...PARTS, '--versions', pins]);
      assert.equal(r.status, 0, r.stderr);
      assert.ok(r.stderr.includes(`kube-bundle: pins from ${pins}: containerd ${release.containerd}, runc ${release.runc}, crictl ${release.crictl}, CNI plugins ${release.cniPlugins}\n`), r.stderr);
      assert.equal(read(join(out, 'versions', 'containerd')), `${release.containerd}\n`);
      assert.equal(read(join(out, 'versions', 'crictl')), `${release.crictl}\n`);
      assert.equal(read(join(out, 'versions', 'cni-plugins')), `${release.cniPlugins}\n`);
      // The binaries come from wrapper modules that require exactly the pinned versions, and carry them.
      assert.match(read(join(out, 'bin', 'containerd')), new RegExp(`^require github\\.com/containerd/containerd/v2 ${release.containerd}$[^]*-X github\\.com/containerd/containerd/v2/version\\.Version=${release.containerd} `, 'm'));
      assert.match(read(join(out, 'bin', 'containerd-shim-runc-v2')), new RegExp(`^require github\\.com/containerd/containerd/v2 ${release.containerd}$`, 'm'));
      assert.match(read(join(out, 'bin', 'crictl')), new RegExp(`^require sigs\\.k8s\\.io/cri-tools ${release.crictl}$[^]*pkg/version\\.Version=${release.crictl}$`, 'm'));
      assert.deepEqual(readdirSync(join(out, 'cni')).sort(), ['bridge', 'host-local', 'loopback', 'portmap']);
      const downloads = go.calls().filter((c) => c.args.startsWith('mod download ')).map((c) => c.args.slice('mod download '.length));
      assert.deepEqual(downloads, [
        `github.com/containerd/containerd/v2@${release.containerd}`,
        `sigs.k8s.io/cri-tools@${release.crictl}`,
        `github.com/containernetworking/plugins@${release.cniPlugins}`,
      ]);
    });
  }

  test('every go command runs with -modcacherw, so Go\'s module cache can be deleted without a chmod', () => {
    const go = fakeGo();
    const r = runRecipe(go, ['v1.37.2', fresh('out'), '--parts', 'crictl']);
    assert.equal(r.status, 0, r.stderr);
    const calls = go.calls();
    assert.ok(calls.length >= 4, JSON.stringify(calls));
    for (const c of calls) assert.deepEqual(c.goflags.split(' ').sort(), ['-buildvcs=false', '-modcacherw'], c.args);
  });

  const good = recipeVersionsFile(kubernetesRelease('v1.36.3')!);
  for (const [what, text, message] of [
    ['a key build.sh does not know', `${good}KUBERNETES_VERSION=v1.36.3\n`, /:6: expected one of CONTAINERD_VERSION, RUNC_VERSION, CNI_PLUGINS_VERSION, CRI_TOOLS_VERSION=vX\.Y\.Z, got 'KUBERNETES_VERSION=v1\.36\.3'/],
    ['a version without its v', good.replace('CONTAINERD_VERSION=v2.3.7', 'CONTAINERD_VERSION=2.3.7'), /:2: expected one of .* got 'CONTAINERD_VERSION=2\.3\.7'/],
    ['shell code', `${good}$(touch /tmp/x)\n`, /:6: expected one of .* got '\$\(touch \/tmp\/x\)'/],
    ['a missing key', good.replace(/^CRI_TOOLS_VERSION=.*\n/m, ''), / does not set CRI_TOOLS_VERSION$/m],
  ] as const) {
    test(`a --versions file with ${what} is refused, naming it, before anything is written or go runs`, () => {
      const go = fakeGo();
      const out = fresh('out');
      const pins = `${fresh('pins')}.env`;
      writeFileSync(pins, text);
      const r = runRecipe(go, ['v1.36.3', out, '--versions', pins]);
      assert.equal(r.status, 1, r.stderr);
      assert.match(r.stderr, new RegExp(`^kube-bundle: ERROR: ${pins.replace(/[.+]/g, '\\$&')}`, 'm'));
      assert.match(r.stderr, message);
      assert.ok(!existsSync(out), 'OUT_DIR was created');
      assert.deepEqual(go.calls(), []);
    });
  }

  test('--versions naming no file, or with no value, is refused before anything is written', () => {
    const go = fakeGo();
    const out = fresh('out');
    const missing = join(root, 'no-such-versions.env');
    const r = runRecipe(go, ['v1.36.3', out, '--versions', missing]);
    assert.equal(r.status, 1, r.stderr);
    assert.ok(r.stderr.includes(`kube-bundle: ERROR: --versions: '${missing}' is not a readable file`), r.stderr);
    const dir = runRecipe(go, ['v1.36.3', out, '--versions', root]);
    assert.equal(dir.status, 1, dir.stderr);
    assert.match(dir.stderr, /is not a readable file/);
    const bare = runRecipe(go, ['v1.36.3', out, '--versions']);
    assert.equal(bare.status, 1, bare.stderr);
    assert.match(bare.stderr, /--versions needs a file/);
    assert.ok(!existsSync(out));
    assert.deepEqual(go.calls(), []);
  });
});

describe('devcluster bundle build: the requested release\'s pins', () => {
  const host: BundleBuildHost = { platform: 'linux', arch: 'x64', missingPrograms: [], libseccompStatic: true, codename: 'bookworm' };

  test('v1.36.3 is built with --versions holding containerd v2.3.7 and crictl v1.36.0, written outside the staging directory', async () => {
    const go = fakeGo();
    const home = fresh('home');
    const statuses: string[] = [];
    const failed = await rejectsWith(buildBundle({
      home, version: 'v1.36.3', host,
      env: { ...process.env, PATH: `${go.bin}:${process.env.PATH ?? '/usr/bin:/bin'}`, FAKE_GO_LOG: go.log, FAKE_GO_REFUSE: 'k8s.io/kubernetes', DEVCLUSTER_GO_CACHE: go.goCache },
      onStatus: (m) => statuses.push(m),
    }), 'KUBE_BUNDLE_BUILD_FAILED');
    // The stand-in go refuses the Kubernetes module, the first download; everything before it ran.
    assert.match(failed.message, /fake go: k8s\.io\/kubernetes@v1\.36\.3: no module proxy in this test/);
    const file = recipeVersionsPath(go.goCache, 'v1.36.3');
    assert.equal(file, join(go.goCache, 'work', 'versions-v1.36.3.env'));
    const text = read(file);
    assert.match(text, /^CONTAINERD_VERSION=v2\.3\.7$/m);
    assert.match(text, /^CRI_TOOLS_VERSION=v1\.36\.0$/m);
    assert.match(text, /^RUNC_VERSION=v1\.5\.3$/m);
    assert.match(text, /^CNI_PLUGINS_VERSION=v1\.10\.0$/m);
    assert.ok(statuses.includes(`  pins from ${file}: containerd v2.3.7, runc v1.5.3, crictl v1.36.0, CNI plugins v1.10.0`), statuses.join('\n'));
    assert.deepEqual(go.calls().map((c) => c.args), ['env GOVERSION', 'mod download k8s.io/kubernetes@v1.36.3']);
    // The staging directory's every file goes into the bundle: the pins file is not among them.
    assert.deepEqual(readdirSync(buildStagingDir(home, 'v1.36.3')).sort(), ['bin', 'cni', 'components', 'images', 'versions']);
    assert.deepEqual(readdirSync(join(buildStagingDir(home, 'v1.36.3'), 'versions')), []);

    // The same file drives the parts that carry the pins.
    const out = fresh('out');
    const r = runRecipe(go, ['v1.36.3', out, ...PARTS, '--versions', file]);
    assert.equal(r.status, 0, r.stderr);
    assert.equal(read(join(out, 'versions', 'containerd')), 'v2.3.7\n');
    assert.equal(read(join(out, 'versions', 'crictl')), 'v1.36.0\n');
  });
});
