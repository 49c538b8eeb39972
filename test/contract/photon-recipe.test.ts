/**
 * The Photon OS golden-image recipe (images/photon) checked with real tools,
 * without Docker or internet:
 * - shellcheck on every script (any finding fails);
 * - kickstart.json against what the guest contract and photon-os-installer
 *   (the pinned revision) accept;
 * - the OVF template parsed by xmllint;
 * - build.sh's own logic: argument and prerequisite failures (exit codes,
 *   messages, nothing written), and a full run in which docker, curl and git
 *   are stand-ins that never touch the network, so the conversions (real
 *   qemu-img), the OVA and manifest.json are exercised for real;
 * - the OS-only model: no container runtime is pinned, downloaded, staged or
 *   installed by the recipe (the node bundle brings it), and the kernel
 *   settings sit where devcluster and the Debian image put them.
 * The image itself is only ever built where Docker and the internet exist.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import type { SpawnSyncReturns } from 'node:child_process';
import { createHash } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const repoRoot = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const recipe = join(repoRoot, 'images', 'photon');
const buildScript = join(recipe, 'build.sh');
const scripts = ['build.sh', 'provision.sh', 'installer-run.sh', 'inspect-image.sh'];

// Keys photon-os-installer accepts (Installer.known_keys plus the per-arch
// variants) at the revision versions.env pins: vmware/photon-os-installer
// f80e7e69ba3630ea737895377c68e314d66754a6, photon_installer/installer.py.
// Unknown keys make the installer stop with "Unknown install_config keys".
const POI_KNOWN_KEYS = new Set([
  'additional_files', 'additional_packages', 'additional_rpms_path', 'ansible', 'arch', 'archives',
  'autopartition', 'bootmode', 'build_mounts', 'disk', 'disks', 'docker', 'dps', 'eject_cdrom',
  'environment', 'firstboot', 'grub', 'hostname', 'insecure_repo', 'linux_flavor', 'live', 'log_level',
  'manifest_file', 'packages', 'packagelist_file', 'packagelist_files', 'partition_type', 'partitions',
  'security', 'services', 'network', 'no_unmount', 'no_clean', 'password', 'postinstall',
  'postinstallscripts', 'preinstall', 'preinstallscripts', 'prepkgsinstall', 'prepkgsinstallscripts',
  'public_key', 'photon_docker_image', 'plugins', 'repos', 'search_path', 'setup_grub_script',
  'shadow_password', 'tdnf_cachedir', 'type', 'ui', 'user_grub_cfg_file',
  'packages_x86_64', 'packages_aarch64', 'linux_flavor_x86_64', 'linux_flavor_aarch64',
]);

// What DESIGN.md section 4 and images/photon/README.md promise inside the guest,
// under Photon 5's package names.
const REQUIRED_PACKAGES = [
  'linux', 'initramfs', 'cloud-init', 'openssh-server', 'sudo', 'iptables', 'ipset', 'conntrack-tools', 'socat',
  'ethtool', 'ebtables', 'kmod', 'util-linux', 'iproute2', 'tar', 'hyper-v', 'open-vm-tools', 'e2fsprogs',
  'cloud-utils', 'systemd', 'tdnf',
];

// Photon packages that would put a second, older runtime or Kubernetes next to
// the node bundle's (minimal requires docker, which pulls containerd and runc).
const FORBIDDEN_PACKAGES = ['minimal', 'docker', 'docker-engine', 'containerd', 'runc', 'cni', 'cri-tools', 'kubernetes', 'kubernetes-kubeadm'];

// Pins of the recipe before the node bundle existed; the bundle provides these now.
const RUNTIME_PIN_KEYS = ['CONTAINERD_VERSION', 'CONTAINERD_SHA256', 'RUNC_VERSION', 'RUNC_SHA256', 'CNI_PLUGINS_VERSION', 'CNI_PLUGINS_SHA256', 'CRICTL_VERSION', 'CRICTL_SHA256'];

const bash = execFileSync('bash', ['-c', 'command -v bash'], { encoding: 'utf8' }).trim();

interface Kickstart {
  linux_flavor?: string;
  bootmode?: string;
  packages?: string[];
  partitions?: { mountpoint?: string; filesystem?: string; size?: number }[];
  disks?: { default?: { filename?: string; size?: number } };
  postinstallscripts?: string[];
  additional_files?: Record<string, string>[];
  services?: Record<string, string>;
  live?: boolean;
  password?: { crypted?: boolean; text?: string };
}

function kickstart(): Kickstart {
  return JSON.parse(readFileSync(join(recipe, 'kickstart.json'), 'utf8')) as Kickstart;
}

function sha256(path: string): string {
  return createHash('sha256').update(readFileSync(path)).digest('hex');
}

function sha256Text(text: string): string {
  return createHash('sha256').update(text).digest('hex');
}

function writeExecutable(path: string, body: string): void {
  writeFileSync(path, `#!${bash}\n${body}`);
  chmodSync(path, 0o755);
}

/** Runs build.sh with exactly the given PATH (bash itself is called by absolute path). */
function runBuild(args: string[], path: string, extraEnv: Record<string, string> = {}): SpawnSyncReturns<string> {
  return spawnSync(bash, [buildScript, ...args], {
    encoding: 'utf8',
    env: { PATH: path, HOME: process.env.HOME ?? '/tmp', LANG: 'C', LC_ALL: 'C', ...extraEnv },
    timeout: 300_000,
  });
}

describe('photon recipe: scripts', () => {
  for (const name of scripts) {
    test(`shellcheck reports nothing for ${name}`, () => {
      const r = spawnSync('shellcheck', ['--format=gcc', '--external-sources', join(recipe, name)], { encoding: 'utf8' });
      assert.equal(r.error, undefined, `shellcheck could not run (${String(r.error)}); install the shellcheck package`);
      assert.equal(r.status, 0, `shellcheck findings in ${name}:\n${r.stdout}${r.stderr}`);
    });
  }

  test('the scripts photon-os-installer and docker run are executable in git', () => {
    for (const name of scripts) {
      assert.ok((statSync(join(recipe, name)).mode & 0o111) !== 0, `${name} is not executable`);
    }
  });

  test('versions.env pins the Photon release and the installer only, and both parsers require exactly those keys', () => {
    const keys = readFileSync(join(recipe, 'versions.env'), 'utf8')
      .split('\n')
      .filter((l) => /^[A-Z]/.test(l))
      .map((l) => l.split('=')[0] as string);
    assert.deepEqual(keys.sort(), ['PHOTON_RELEASE', 'POI_COMMIT', 'POI_REPO']);
    const build = readFileSync(buildScript, 'utf8');
    assert.match(build, /^readonly PIN_KEYS=\(PHOTON_RELEASE POI_REPO POI_COMMIT\)$/m);
    const provision = readFileSync(join(recipe, 'provision.sh'), 'utf8');
    assert.match(provision, /^ {2}for key in PHOTON_RELEASE POI_REPO POI_COMMIT; do$/m);
  });

  test('no script or pin mentions a runtime download, a payload or a runtime pin', () => {
    for (const name of [...scripts, 'versions.env', 'kickstart.json']) {
      const text = readFileSync(join(recipe, name), 'utf8');
      for (const key of RUNTIME_PIN_KEYS) assert.ok(!text.includes(key), `${name} still mentions ${key}`);
      assert.doesNotMatch(text, /payload/i, `${name} still stages a payload`);
      assert.doesNotMatch(text, /releases\/download/, `${name} still downloads a release artifact`);
    }
  });
});

describe('photon recipe: kickstart.json', () => {
  test('uses only keys the pinned photon-os-installer accepts', () => {
    const unknown = Object.keys(kickstart()).filter((k) => !POI_KNOWN_KEYS.has(k));
    assert.deepEqual(unknown, []);
  });

  test('installs the generic linux kernel, never linux-esx', () => {
    const ks = kickstart();
    assert.equal(ks.linux_flavor, 'linux');
    assert.ok(ks.packages?.includes('linux'));
    assert.ok(!ks.packages?.some((p) => p.startsWith('linux-')), 'a non-generic kernel flavour is listed');
  });

  test('has no swap partition and a single growable root', () => {
    const parts = kickstart().partitions ?? [];
    assert.ok(!parts.some((p) => p.filesystem === 'swap'), 'swap partition declared');
    assert.deepEqual(parts, [{ mountpoint: '/', size: 0, filesystem: 'ext4' }]);
  });

  test('boots under BIOS and UEFI', () => {
    assert.equal(kickstart().bootmode, 'dualboot');
  });

  test('lists every package the guest contract needs', () => {
    const pkgs = new Set(kickstart().packages ?? []);
    const missing = REQUIRED_PACKAGES.filter((p) => !pkgs.has(p));
    assert.deepEqual(missing, []);
  });

  test("leaves out Photon's container runtime and Kubernetes (the node bundle brings them)", () => {
    const pkgs = kickstart().packages ?? [];
    for (const p of FORBIDDEN_PACKAGES) {
      assert.ok(!pkgs.includes(p), `${p} must not be installed from Photon's repositories`);
    }
  });

  test('provision.sh and inspect-image.sh refuse every Photon runtime package the kickstart leaves out', () => {
    const provision = readFileSync(join(recipe, 'provision.sh'), 'utf8');
    const listed = /^FORBIDDEN_PACKAGES=\(([^)]*)\)$/m.exec(provision)?.[1]?.trim().split(/\s+/) ?? [];
    assert.deepEqual(listed, FORBIDDEN_PACKAGES.filter((p) => p !== 'minimal'));
    const inspect = readFileSync(join(recipe, 'inspect-image.sh'), 'utf8');
    const absent = /^for pkg in ([^;]*); do\n {2}if grep -q/m.exec(inspect)?.[1]?.trim().split(/\s+/) ?? [];
    for (const p of listed) assert.ok(absent.includes(p), `inspect-image.sh does not check that ${p} is absent`);
  });

  test('locks root and enables sshd', () => {
    const ks = kickstart();
    assert.deepEqual(ks.password, { crypted: true, text: '*', age: -1 });
    assert.equal(ks.services?.sshd, 'enabled');
  });

  test('runs provision.sh with the staged inputs it expects, into the raw disk build.sh reads', () => {
    const ks = kickstart();
    assert.deepEqual(ks.postinstallscripts, ['provision.sh']);
    assert.deepEqual(ks.additional_files, [{ 'versions.env': '/tmp/devcluster/versions.env' }]);
    assert.match(readFileSync(join(recipe, 'provision.sh'), 'utf8'), /^STAGE_DIR=\$\{DEVCLUSTER_STAGE_DIR:-\/tmp\/devcluster\}$/m);
    assert.equal(ks.disks?.default?.filename, 'photon-5.raw');
    assert.match(readFileSync(buildScript, 'utf8'), /^readonly IMAGE_NAME=photon-5$/m);
    assert.equal(ks.live, false);
  });
});

/** The body of the quoted here-document provision.sh writes to a path (`cat >PATH <<'EOF'`). */
function provisionedFile(path: string): string | undefined {
  const provision = readFileSync(join(recipe, 'provision.sh'), 'utf8');
  const escaped = path.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  return new RegExp(`cat >"?${escaped}"? <<'EOF'\\n([\\s\\S]*?)\\nEOF\\n`).exec(provision)?.[1];
}

function settingLines(text: string): string[] {
  return text.split('\n').filter((l) => l.trim() !== '' && !l.startsWith('#'));
}

describe('photon recipe: node settings the image keeps', () => {
  test('kernel modules and sysctls are where the Debian image and devcluster put them, with the same settings', () => {
    for (const path of ['/etc/modules-load.d/devcluster-kubernetes.conf', '/etc/sysctl.d/90-devcluster-kubernetes.conf']) {
      const photon = provisionedFile(path);
      assert.ok(photon !== undefined, `provision.sh does not write ${path}`);
      const debian = readFileSync(join(repoRoot, 'images', 'debian', 'rootfs', ...path.split('/').filter((p) => p !== '')), 'utf8');
      assert.deepEqual(settingLines(photon), settingLines(debian), path);
    }
  });

  test('containerd and the kubelet start after the firewall that flushes every table', () => {
    // One here-document, written once per unit by a loop over both names.
    assert.match(readFileSync(join(recipe, 'provision.sh'), 'utf8'), /^ {2}for unit in containerd\.service kubelet\.service; do$/m);
    const dropIn = provisionedFile('/etc/systemd/system/$unit.d/05-devcluster-after-firewall.conf');
    assert.ok(dropIn !== undefined, 'no ordering drop-in');
    assert.match(dropIn, /^\[Unit\]\nAfter=iptables\.service\nWants=iptables\.service$/m);
  });

  test('no unit of the runtime is enabled or written by the image', () => {
    const provision = readFileSync(join(recipe, 'provision.sh'), 'utf8');
    const enabled = /^ENABLED_UNITS=\(([^)]*)\)$/m.exec(provision)?.[1]?.trim().split(/\s+/) ?? [];
    assert.ok(enabled.includes('sshd.service') && enabled.includes('iptables.service'), `ENABLED_UNITS not found: ${enabled.join(' ')}`);
    assert.ok(!enabled.some((u) => /containerd|kubelet/.test(u)), `runtime unit enabled: ${enabled.join(' ')}`);
    assert.doesNotMatch(provision, /cat >\/etc\/systemd\/system\/(containerd|kubelet)\.service </);
    assert.doesNotMatch(provision, /\/etc\/containerd\/config\.toml|\/etc\/crictl\.yaml/);
  });
});

describe('photon recipe: OVF template', () => {
  test('is well-formed XML (xmllint)', () => {
    const r = spawnSync('xmllint', ['--noout', join(recipe, 'photon.ovf.template')], { encoding: 'utf8' });
    assert.equal(r.error, undefined, `xmllint could not run (${String(r.error)}); install the libxml2-utils package`);
    assert.equal(r.status, 0, r.stderr);
  });

  test('declares the placeholders build.sh fills, and no others', () => {
    const placeholders = [...readFileSync(join(recipe, 'photon.ovf.template'), 'utf8').matchAll(/@@([A-Z_]+)@@/g)].map((m) => m[1]);
    assert.deepEqual([...new Set(placeholders)].sort(), ['DISK_CAPACITY', 'NAME', 'VMDK_FILE', 'VMDK_SIZE']);
  });
});

describe('photon recipe: build.sh fails fast', () => {
  let dir: string;
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'devcluster-photon-'));
  });
  after(() => {
    rmSync(dir, { recursive: true, force: true });
  });

  test('usage errors exit 2 before anything else is looked at', () => {
    const empty = join(dir, 'empty-path');
    mkdirSync(empty);
    const noOut = runBuild([], empty);
    assert.equal(noOut.status, 2, noOut.stderr);
    assert.match(noOut.stderr, /--out DIR is required/);
    const badFormat = runBuild(['--out', join(dir, 'o1'), '--formats', 'qcow2,iso'], empty);
    assert.equal(badFormat.status, 2, badFormat.stderr);
    assert.match(badFormat.stderr, /unknown format 'iso'/);
    const isoWithoutDigest = runBuild(['--out', join(dir, 'o2'), '--photon-iso', '/x.iso'], empty);
    assert.equal(isoWithoutDigest.status, 2, isoWithoutDigest.stderr);
    assert.match(isoWithoutDigest.stderr, /--photon-iso needs --iso-sha256/);
    assert.ok(!existsSync(join(dir, 'o1')) && !existsSync(join(dir, 'o2')));
  });

  test('without docker on PATH it exits 3 naming Docker, and writes nothing into --out', () => {
    const empty = join(dir, 'no-docker-path');
    mkdirSync(empty);
    const existing = join(dir, 'out-existing');
    mkdirSync(existing);
    const fresh = join(dir, 'out-fresh');
    for (const out of [existing, fresh]) {
      const r = runBuild(['--out', out], empty);
      assert.equal(r.status, 3, r.stderr);
      assert.match(r.stderr, /missing prerequisite: docker \(no 'docker' command on PATH\)/);
    }
    assert.deepEqual(readdirSync(existing), []);
    assert.ok(!existsSync(fresh), '--out was created although the build could not start');
  });

  test('with docker but no qemu-img it exits 5 naming qemu-img', () => {
    const bin = join(dir, 'docker-only');
    mkdirSync(bin);
    writeExecutable(join(bin, 'docker'), 'exit 0\n');
    const out = join(dir, 'out-no-qemu');
    const r = runBuild(['--out', out], bin);
    assert.equal(r.status, 5, r.stderr);
    assert.match(r.stderr, /missing prerequisite: .*qemu-img/);
    assert.ok(!existsSync(out));
  });

  test('with an unreachable Docker daemon it exits 4', () => {
    const bin = join(dir, 'daemon-down');
    mkdirSync(bin);
    writeExecutable(join(bin, 'docker'), '[ "$1" = info ] && exit 1\nexit 0\n');
    const tools = /^readonly REQUIRED_TOOLS=\(([^)]*)\)$/m.exec(readFileSync(buildScript, 'utf8'))?.[1]?.trim().split(/\s+/) ?? [];
    assert.ok(tools.includes('qemu-img'));
    for (const t of tools) writeExecutable(join(bin, t), 'exit 0\n');
    const out = join(dir, 'out-daemon-down');
    const r = runBuild(['--out', out], bin);
    assert.equal(r.status, 4, r.stderr);
    assert.match(r.stderr, /missing prerequisite: a running Docker daemon/);
    assert.ok(!existsSync(out));
  });
});

/**
 * Stand-ins for the three commands that would reach Docker or the network.
 * docker: "installs" a 64 MiB raw disk and "inspects" it (writing the files
 * inspect-image.sh writes), after checking the stage holds exactly the recipe's
 * inputs; curl: answers reachability probes and writes "download <file name>"
 * for a download (an ISO); git: not expected. Nothing leaves the machine.
 */
function installStubs(bin: string, log: string): void {
  writeExecutable(
    join(bin, 'docker'),
    `printf 'docker %s\\n' "$*" >>${JSON.stringify(log)}
case $1 in
  info|image|buildx) exit 0 ;;
  run) ;;
  *) echo "stub docker: unexpected $1" >&2; exit 99 ;;
esac
stage="" script=""
args=("$@")
for ((i = 0; i < \${#args[@]}; i++)); do
  if [[ \${args[i]} == -v && \${args[i+1]:-} == *:/workdir ]]; then stage=\${args[i+1]%:/workdir}; fi
  case \${args[i]} in /recipe/installer-run.sh|/recipe/inspect-image.sh) script=\${args[i]} ;; esac
done
case $script in
  /recipe/installer-run.sh)
    [[ -f $stage/kickstart.json && -x $stage/provision.sh && -f $stage/versions.env ]] || { echo "stub docker: stage incomplete" >&2; exit 98; }
    staged=$(cd "$stage" && ls -A | tr '\\n' ' ')
    [[ $staged == "kickstart.json provision.sh versions.env " ]] || { echo "stub docker: unexpected files staged: $staged" >&2; exit 97; }
    truncate -s 64M "$stage/photon-5.raw"
    printf 'not really a disk' | dd of="$stage/photon-5.raw" conv=notrunc status=none ;;
  /recipe/inspect-image.sh)
    mkdir -p "$stage/boot"
    printf 'kernel bytes' >"$stage/boot/vmlinuz"
    printf 'initrd bytes' >"$stage/boot/initrd"
    echo 'root=PARTUUID=6f1c0d2e-01 init=/lib/systemd/systemd ro net.ifnames=0 systemd.unified_cgroup_hierarchy=yes' >"$stage/boot/cmdline"
    printf 'bash\\t5.2.15-3.ph5\\nlinux\\t6.1.138-2.ph5\\n' >"$stage/boot/rpms.tsv" ;;
  *) echo "stub docker: unexpected run $*" >&2; exit 99 ;;
esac
`,
  );
  writeExecutable(
    join(bin, 'curl'),
    `out="" url="" code=0
while (($#)); do
  case $1 in
    -o) out=$2; shift 2 ;;
    -w) code=1; shift 2 ;;
    --max-time|--retry|--retry-delay|--connect-timeout|--proto) shift 2 ;;
    -*) shift ;;
    *) url=$1; shift ;;
  esac
done
printf 'curl %s\\n' "$url" >>${JSON.stringify(log)}
if [[ -n $out && $out != /dev/null ]]; then printf 'download %s\\n' "\${url##*/}" >"$out"; fi
if ((code)); then printf 200; fi
`,
  );
  writeExecutable(join(bin, 'git'), 'echo "stub git: not expected" >&2\nexit 99\n');
}

/** What the curl stand-in writes for a download of a URL ending in `name`. */
function downloadBytes(name: string): string {
  return `download ${name}\n`;
}

interface ManifestEntry {
  file: string;
  sha256: string;
  size: number;
}
interface Manifest {
  name: string;
  version: string;
  formats: Record<string, ManifestEntry>;
  kernelCmdline: string;
  packages: Record<string, Record<string, string>>;
  builtAt: string;
}

function qemuInfo(file: string): { format: string; 'virtual-size': number; 'format-specific'?: { data?: { 'create-type'?: string } } } {
  return JSON.parse(execFileSync('qemu-img', ['info', '--output=json', file], { encoding: 'utf8' })) as ReturnType<typeof qemuInfo>;
}

function curlUrls(log: string): string[] {
  return readFileSync(log, 'utf8').split('\n').filter((l) => l.startsWith('curl ')).map((l) => l.slice(5));
}

describe('photon recipe: build.sh with Docker and the network stood in', () => {
  let dir: string;
  let bin: string;
  let log: string;
  let path: string;
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'devcluster-photon-build-'));
    bin = join(dir, 'bin');
    mkdirSync(bin);
    log = join(dir, 'calls.log');
    installStubs(bin, log);
    path = `${bin}:${process.env.PATH ?? '/usr/bin:/bin'}`;
  });
  after(() => {
    rmSync(dir, { recursive: true, force: true });
  });

  test('publishes every format with a manifest that matches the files, downloading nothing', () => {
    const versions = join(dir, 'versions.env');
    writeFileSync(versions, readFileSync(join(recipe, 'versions.env')));
    const out = join(dir, 'out');
    const r = runBuild(['--out', out, '--version', '5.0-test.1', '--versions', versions], path);
    assert.equal(r.status, 0, r.stderr);

    const files = readdirSync(out).sort();
    assert.deepEqual(files, [
      'manifest.json', 'photon-5.initrd', 'photon-5.ova', 'photon-5.qcow2', 'photon-5.raw', 'photon-5.vhdx', 'photon-5.vmdk', 'photon-5.vmlinuz',
    ]);

    const manifest = JSON.parse(readFileSync(join(out, 'manifest.json'), 'utf8')) as Manifest;
    assert.equal(manifest.name, 'photon-5');
    assert.equal(manifest.version, '5.0-test.1');
    assert.deepEqual(Object.keys(manifest.formats), ['qcow2', 'vhdx', 'vmdk', 'ova', 'raw', 'kernel', 'initrd']);
    for (const [key, entry] of Object.entries(manifest.formats)) {
      const file = join(out, entry.file);
      assert.equal(entry.sha256, sha256(file), `${key} sha256`);
      assert.equal(entry.size, statSync(file).size, `${key} size`);
    }
    assert.equal(manifest.kernelCmdline, 'root=PARTUUID=6f1c0d2e-01 init=/lib/systemd/systemd ro net.ifnames=0 systemd.unified_cgroup_hierarchy=yes');
    // The image's packages are Photon's RPMs only: no upstream runtime is recorded because none is installed.
    assert.deepEqual(manifest.packages, { rpm: { bash: '5.2.15-3.ph5', linux: '6.1.138-2.ph5' } });
    assert.match(manifest.builtAt, /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$/);

    const size = 64 * 1024 * 1024;
    assert.equal(qemuInfo(join(out, 'photon-5.qcow2')).format, 'qcow2');
    assert.equal(qemuInfo(join(out, 'photon-5.vhdx')).format, 'vhdx');
    const vmdk = qemuInfo(join(out, 'photon-5.vmdk'));
    assert.equal(vmdk.format, 'vmdk');
    assert.equal(vmdk['format-specific']?.data?.['create-type'], 'streamOptimized');
    for (const f of ['photon-5.qcow2', 'photon-5.vhdx', 'photon-5.vmdk']) assert.equal(qemuInfo(join(out, f))['virtual-size'], size, f);
    assert.equal(statSync(join(out, 'photon-5.raw')).size, size);
    assert.equal(readFileSync(join(out, 'photon-5.vmlinuz'), 'utf8'), 'kernel bytes');

    const calls = readFileSync(log, 'utf8');
    assert.match(calls, /^docker run --rm --privileged -v \/dev:\/dev .*\/recipe\/installer-run\.sh 5\.0 https:\/\/packages\.broadcom\.com\/photon\/5\.0\/photon_updates_5\.0_x86_64$/m);
    assert.match(calls, /^docker run --rm --privileged -v \/dev:\/dev .*\/recipe\/inspect-image\.sh \/workdir\/photon-5\.raw \/workdir\/boot$/m);
    // The installer image is there (docker image inspect succeeds), so GitHub is not needed either.
    assert.deepEqual(curlUrls(log), ['https://packages.broadcom.com/photon/'], 'build.sh contacted more than the Photon host');
  });

  test('the OVA holds the descriptor first, a manifest, and the vmdk it describes', () => {
    const out = join(dir, 'out');
    const ova = join(out, 'photon-5.ova');
    const members = execFileSync('tar', ['-tf', ova], { encoding: 'utf8' }).trim().split('\n');
    assert.deepEqual(members, ['photon-5.ovf', 'photon-5.mf', 'photon-5.vmdk']);
    const unpacked = join(dir, 'ova');
    mkdirSync(unpacked);
    execFileSync('tar', ['-xf', ova, '-C', unpacked]);
    const ovf = join(unpacked, 'photon-5.ovf');
    const lint = spawnSync('xmllint', ['--noout', ovf], { encoding: 'utf8' });
    assert.equal(lint.status, 0, lint.stderr);
    const text = readFileSync(ovf, 'utf8');
    assert.ok(text.includes(`ovf:href="photon-5.vmdk" ovf:size="${statSync(join(unpacked, 'photon-5.vmdk')).size}"`));
    assert.ok(text.includes(`ovf:capacity="${64 * 1024 * 1024}"`));
    assert.equal(
      readFileSync(join(unpacked, 'photon-5.mf'), 'utf8'),
      `SHA256(photon-5.ovf)= ${sha256(ovf)}\nSHA256(photon-5.vmdk)= ${sha256(join(unpacked, 'photon-5.vmdk'))}\n`,
    );
  });

  test('leaves no work files behind after a successful build', () => {
    assert.deepEqual(readdirSync(join(dir, 'out')).filter((f) => f.startsWith('.')), []);
  });

  test('--formats limits the output and the manifest to what was asked', () => {
    const versions = join(dir, 'versions.env');
    const out = join(dir, 'out-vhdx');
    const r = runBuild(['--out', out, '--formats', 'vhdx', '--versions', versions], path);
    assert.equal(r.status, 0, r.stderr);
    assert.deepEqual(readdirSync(out).sort(), ['manifest.json', 'photon-5.vhdx']);
    const manifest = JSON.parse(readFileSync(join(out, 'manifest.json'), 'utf8')) as Manifest;
    assert.deepEqual(Object.keys(manifest.formats), ['vhdx']);
    assert.match(manifest.version, /^5\.0-\d{12}$/);
  });

  test('an ISO downloaded over https whose sha256 matches is mounted into the installer', () => {
    writeFileSync(log, '');
    const url = 'https://packages.broadcom.com/photon/5.0/GA/iso/photon-5.0-test.x86_64.iso';
    const digest = sha256Text(downloadBytes('photon-5.0-test.x86_64.iso'));
    const out = join(dir, 'out-iso');
    const r = runBuild(['--out', out, '--formats', 'qcow2', '--photon-iso', url, '--iso-sha256', digest], path);
    assert.equal(r.status, 0, r.stderr);
    assert.deepEqual(curlUrls(log), ['https://packages.broadcom.com/photon/', url]);
    assert.match(readFileSync(log, 'utf8'), /^docker run .* -v \S+\/photon\.iso:\/iso\/photon\.iso:ro .*\/recipe\/installer-run\.sh /m);
    assert.deepEqual(readdirSync(out).sort(), ['manifest.json', 'photon-5.qcow2']);
  });

  test('an ISO that does not match --iso-sha256 stops the build with exit 7 before the installer runs, and no manifest', () => {
    writeFileSync(log, '');
    const iso = join(dir, 'local.iso');
    writeFileSync(iso, 'not the pinned ISO\n');
    const out = join(dir, 'out-bad');
    const r = runBuild(['--out', out, '--photon-iso', iso, '--iso-sha256', '0'.repeat(64)], path);
    assert.equal(r.status, 7, r.stderr);
    assert.match(r.stderr, /Photon ISO: sha256 is [0-9a-f]{64} but 0{64} is pinned/);
    assert.doesNotMatch(readFileSync(log, 'utf8'), /^docker run /m);
    assert.ok(!existsSync(join(out, 'manifest.json')));
  });

  test('a pins file of the earlier recipe (container runtime pins) is refused with exit 2, naming the key, before --out is created', () => {
    const versions = join(dir, 'versions-old.env');
    writeFileSync(versions, `${readFileSync(join(recipe, 'versions.env'), 'utf8')}CONTAINERD_VERSION=2.3.4\n`);
    const out = join(dir, 'out-old-pins');
    const r = runBuild(['--out', out, '--versions', versions], path);
    assert.equal(r.status, 2, r.stderr);
    assert.match(r.stderr, /versions-old\.env:\d+: unknown key CONTAINERD_VERSION \(accepted: PHOTON_RELEASE POI_REPO POI_COMMIT\)/);
    assert.ok(!existsSync(out));
  });

  test('a pins file without the installer revision is refused with exit 2', () => {
    const versions = join(dir, 'versions-short.env');
    writeFileSync(versions, readFileSync(join(recipe, 'versions.env'), 'utf8').replace(/^POI_COMMIT=.*\n/m, ''));
    const out = join(dir, 'out-short-pins');
    const r = runBuild(['--out', out, '--versions', versions], path);
    assert.equal(r.status, 2, r.stderr);
    assert.match(r.stderr, /does not set POI_COMMIT/);
    assert.ok(!existsSync(out));
  });
});
