import { test } from 'node:test';
import assert from 'node:assert/strict';
import { buildHyperkitArgs, kernelCmdline, macQueryArgs, parseMacReport } from '../../drivers/hyperkit/command-line.ts';
import type { HyperkitLaunch } from '../../drivers/hyperkit/command-line.ts';
import { MACOS_HOST, MIN_HYPERKIT_VERSION, parseHyperkitVersion, sudoersLine } from '../../drivers/hyperkit/host.ts';
import { isError } from '../helpers/errors.ts';

const P = '/Users/ann/.devcluster/profiles/dev';
const launch: HyperkitLaunch = {
  cpus: 2,
  memoryMiB: 4096,
  uuid: '2b3f5a4e-3f0e-4c4b-9d1a-6c2e8f1b7a10',
  disk: `${P}/disks/disk.raw`,
  isos: [`${P}/seed.iso`, '/Users/ann/.devcluster/cache/kubernetes/.media/v1.37.2.iso'],
  kernel: '/Users/ann/.devcluster/cache/images/k/vmlinuz',
  initrd: '/Users/ann/.devcluster/cache/images/i/initrd.img',
  cmdline: 'root=LABEL=devcluster-root console=ttyS0,115200n8 systemd.unified_cgroup_hierarchy=1',
  pidFile: `${P}/hyperkit.pid`,
  tty: `${P}/tty`,
  consoleRing: `${P}/logs/console-ring`,
};

test('the argument vector: ACPI, UTC clock, pid file, sizes, bridge and LPC, then one slot per device in order, serial, kexec', () => {
  assert.deepEqual(buildHyperkitArgs(launch), [
    '-A', '-u', '-F', `${P}/hyperkit.pid`, '-c', '2', '-m', '4096M',
    '-s', '0:0,hostbridge', '-s', '31,lpc',
    '-s', '1:0,virtio-net', '-U', launch.uuid,
    '-s', `2:0,virtio-blk,${P}/disks/disk.raw`,
    '-s', `3,ahci-cd,${P}/seed.iso`,
    '-s', '4,ahci-cd,/Users/ann/.devcluster/cache/kubernetes/.media/v1.37.2.iso',
    '-s', '5,virtio-rnd',
    '-l', `com1,autopty=${P}/tty,log=${P}/logs/console-ring`,
    '-f', `kexec,${launch.kernel},${launch.initrd},${launch.cmdline}`,
  ]);
  // Without data ISOs the entropy device takes the next slot.
  const seedOnly = buildHyperkitArgs({ ...launch, isos: [`${P}/seed.iso`] });
  assert.ok(seedOnly.includes('4,virtio-rnd'));
});

test('a path with a comma is refused: HyperKit would read the rest as another option', () => {
  assert.throws(() => buildHyperkitArgs({ ...launch, disk: '/Users/a,b/disk.raw' }), isError('HYPERKIT_IMAGE_UNSUITABLE', (e) => assert.match(e.message, /a,b/)));
  assert.throws(() => macQueryArgs(launch.uuid, '/x,y/vmlinuz', launch.initrd), isError('HYPERKIT_IMAGE_UNSUITABLE'));
});

test('the kernel command line gets the unified cgroup hierarchy unless the image sets it', () => {
  assert.equal(kernelCmdline('root=LABEL=r console=ttyS0'), 'root=LABEL=r console=ttyS0 systemd.unified_cgroup_hierarchy=1');
  assert.equal(kernelCmdline('root=LABEL=r systemd.unified_cgroup_hierarchy=yes'), 'root=LABEL=r systemd.unified_cgroup_hierarchy=yes');
  assert.equal(kernelCmdline(undefined), 'console=ttyS0 systemd.unified_cgroup_hierarchy=1');
});

test('the MAC query uses the VM\'s NIC and UUID; its answer is read with %x octets padded', () => {
  const args = macQueryArgs(launch.uuid, launch.kernel, launch.initrd);
  assert.equal(args[0], '-M');
  assert.deepEqual(args.slice(args.indexOf('-U'), args.indexOf('-U') + 2), ['-U', launch.uuid]);
  assert.ok(args.includes('1:0,virtio-net'));
  assert.equal(parseMacReport('MAC: 8e:1:99:9c:54:b1\n'), '8e:01:99:9c:54:b1');
  assert.equal(parseMacReport('Using fd 4\nMAC: A2:B3:C4:D5:E6:F7\r\n'), 'a2:b3:c4:d5:e6:f7');
  assert.equal(parseMacReport('MAC: 8e:1:99:9c:54\n'), undefined);
  assert.equal(parseMacReport('vmnet_start_interface failed\n'), undefined);
});

test('hyperkit -v versions compare by their release date; the sudoers line allows exactly hyperkit and the two signals', () => {
  assert.equal(parseHyperkitVersion('hyperkit: v0.20210107-2-g2f061e\n\nHomepage: https://github.com/docker/hyperkit\n'), 20210107);
  assert.equal(parseHyperkitVersion('hyperkit: v0.20180403\n'), 20180403);
  assert.ok((parseHyperkitVersion('hyperkit: v0.20180403') as number) < MIN_HYPERKIT_VERSION);
  assert.equal(parseHyperkitVersion('command not found'), undefined);
  assert.equal(sudoersLine('ann', '/usr/local/bin/hyperkit', MACOS_HOST), 'ann ALL=(root) NOPASSWD: /usr/local/bin/hyperkit, /bin/kill -TERM *, /bin/kill -KILL *');
});
