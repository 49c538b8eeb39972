import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { linuxFamily, parseOsRelease } from '../../src/host/os-release.ts';
import { packageManagerFor } from '../../src/host/packages.ts';
import { installFix } from '../../src/doctor/install-fix.ts';
import { DEBIAN_BUILD_TOOLS } from '../../src/doctor/checks/image-build.ts';
import { qemuTools } from '../../drivers/qemu/checks.ts';
import { REPO } from '../helpers/cli.ts';

/** The install commands `doctor --fix` shows and runs, chosen from each distribution's /etc/os-release. */

function managerOf(fixture: string) {
  const text = readFileSync(join(REPO, 'test', 'fixtures', 'doctor', 'os-release', fixture), 'utf8');
  return packageManagerFor('linux', linuxFamily(parseOsRelease(text)));
}

function lines(fix: { commands: Array<{ run: string }> }): string[] {
  return fix.commands.map((c) => c.run);
}

describe('QEMU install commands per distribution', () => {
  const both = (arch: string) => {
    const t = qemuTools(arch, 'linux');
    return [t.system, t.img];
  };
  const cases: Array<[string, string, string[]]> = [
    ['debian-12', 'x64', ['sudo apt-get update', 'sudo apt-get install -y qemu-system-x86 qemu-utils']],
    ['ubuntu-24.04', 'x64', ['sudo apt-get update', 'sudo apt-get install -y qemu-system-x86 qemu-utils']],
    ['linuxmint-22', 'x64', ['sudo apt-get update', 'sudo apt-get install -y qemu-system-x86 qemu-utils']],
    ['ubuntu-24.04', 'arm64', ['sudo apt-get update', 'sudo apt-get install -y qemu-system-arm qemu-efi-aarch64 qemu-utils']],
    ['fedora-41', 'x64', ['sudo dnf install -y qemu-system-x86 qemu-img']],
    ['fedora-41', 'arm64', ['sudo dnf install -y qemu-system-aarch64 qemu-img']],
    ['arch', 'x64', ['sudo pacman -S --needed --noconfirm qemu-system-x86 qemu-img']],
    ['manjaro', 'x64', ['sudo pacman -S --needed --noconfirm qemu-system-x86 qemu-img']],
    ['opensuse-tumbleweed', 'x64', ['sudo zypper --non-interactive install qemu-x86 qemu-tools']],
    ['opensuse-leap-15.6', 'arm64', ['sudo zypper --non-interactive install qemu-arm qemu-tools']],
  ];
  for (const [fixture, arch, want] of cases) {
    test(`${fixture} (${arch})`, () => {
      const fix = installFix(managerOf(fixture), both(arch), 'QEMU');
      assert.deepEqual(lines(fix), want);
      assert.equal(typeof fix.apply, 'function', 'applied by --fix');
      assert.equal(fix.elevated, true, 'asks at the root boundary');
      assert.ok(fix.commands.every((c) => c.elevated && c.shell === 'sh'));
      assert.match(fix.description, /^Install QEMU with (apt-get|dnf|pacman|zypper)\.$/);
    });
  }

  test('macOS: Homebrew, as the user (brew refuses root), once for both programs', () => {
    const fix = installFix(packageManagerFor('darwin', undefined), [qemuTools('arm64', 'darwin').system, qemuTools('arm64', 'darwin').img], 'QEMU');
    assert.deepEqual(lines(fix), ['brew install qemu']);
    assert.equal(fix.elevated, undefined);
    assert.equal(fix.commands[0]?.elevated, false);
  });

  test('only the missing program\'s package is installed', () => {
    assert.deepEqual(lines(installFix(managerOf('debian-12'), [qemuTools('x64', 'linux').img], 'QEMU')), ['sudo apt-get update', 'sudo apt-get install -y qemu-utils']);
  });

  test('RHEL-like and unknown distributions get no command (their QEMU package has no qemu-system binary) but the names to install', () => {
    for (const fixture of ['rocky-9', 'gentoo']) {
      const fix = installFix(managerOf(fixture), both('x64'), 'QEMU');
      assert.deepEqual(fix.commands, [], fixture);
      assert.equal(fix.apply, undefined);
      assert.equal(fix.description, 'Install qemu-system-x86_64, qemu-img from your system\'s package sources (devcluster knows no package for them here).');
    }
  });
});

describe('Debian guest build tools per distribution', () => {
  test('apt-get installs every missing tool with one command, duplicates merged', () => {
    const fix = installFix(managerOf('ubuntu-24.04'), DEBIAN_BUILD_TOOLS, 'the tools that build the Debian guest');
    assert.deepEqual(lines(fix), ['sudo apt-get update', 'sudo apt-get install -y mmdebstrap e2fsprogs jq dpkg debian-archive-keyring']);
  });

  test('a tool without a known package is named for the user; the rest is still installed', () => {
    const fix = installFix(managerOf('opensuse-tumbleweed'), DEBIAN_BUILD_TOOLS, 'the tools that build the Debian guest');
    assert.deepEqual(lines(fix), ['sudo zypper --non-interactive install e2fsprogs jq']);
    assert.match(fix.description, /^Install the tools that build the Debian guest with zypper, and install mmdebstrap, dpkg-query, \/usr\/share\/keyrings\/debian-archive-keyring\.gpg from your system's package sources/);
    const fedora = installFix(managerOf('fedora-41'), DEBIAN_BUILD_TOOLS.filter((t) => t.name === 'mmdebstrap' || t.name === 'mke2fs'), 'the tools');
    assert.deepEqual(lines(fedora), ['sudo dnf install -y mmdebstrap e2fsprogs']);
  });
});
