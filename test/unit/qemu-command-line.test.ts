import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { buildQemuArgs, escapeOption, macForProfile } from '../../drivers/qemu/command-line.ts';
import type { QemuLaunch } from '../../drivers/qemu/command-line.ts';

const base: QemuLaunch = {
  name: 'devcluster-dev',
  arch: 'x86_64',
  accel: 'tcg',
  cpus: 2,
  memoryMiB: 2048,
  disk: '/h/profiles/dev/disks/disk.qcow2',
  seedIso: '/h/profiles/dev/seed.iso',
  kernel: '/h/cache/images/abc/vmlinuz',
  initrd: '/h/cache/images/abc/initrd.img',
  append: 'root=LABEL=devcluster-root console=ttyS0',
  mac: '52:54:00:aa:bb:cc',
  netdev: { kind: 'user', bindAddress: '127.0.0.1', forwards: [{ hostPort: 40022, guestPort: 22 }, { hostPort: 40443, guestPort: 6443 }] },
  qmp: { path: '/h/profiles/dev/qmp.sock' },
  pidFile: '/h/profiles/dev/qemu.pid',
  serialLog: '/h/profiles/dev/logs/serial.log',
};

function after(args: string[], flag: string): string[] {
  return args.flatMap((a, i) => (a === flag ? [args[i + 1] ?? ''] : []));
}

test('TCG uses multi-threaded emulation and the max CPU model; KVM uses the host CPU', () => {
  const tcg = buildQemuArgs(base);
  assert.deepEqual(after(tcg, '-accel'), ['tcg,thread=multi']);
  assert.deepEqual(after(tcg, '-cpu'), ['max']);
  const kvm = buildQemuArgs({ ...base, accel: 'kvm' });
  assert.deepEqual(after(kvm, '-accel'), ['kvm']);
  assert.deepEqual(after(kvm, '-cpu'), ['host']);
});

test('port forwards bind to 127.0.0.1 only, for SSH and the API server', () => {
  const [netdev] = after(buildQemuArgs(base), '-netdev');
  assert.equal(netdev, 'user,id=net0,hostfwd=tcp:127.0.0.1:40022-:22,hostfwd=tcp:127.0.0.1:40443-:6443');
});

test('direct kernel boot, read-only seed, static MAC, serial to a file, QMP and pid file', () => {
  const args = buildQemuArgs(base);
  assert.deepEqual(after(args, '-kernel'), [base.kernel]);
  assert.deepEqual(after(args, '-initrd'), [base.initrd]);
  assert.deepEqual(after(args, '-append'), [base.append]);
  const drives = after(args, '-drive');
  assert.match(drives[0] ?? '', /^if=virtio,file=\/h\/profiles\/dev\/disks\/disk\.qcow2,format=qcow2/);
  assert.match(drives[1] ?? '', /file=\/h\/profiles\/dev\/seed\.iso,format=raw,readonly=on/);
  assert.ok(after(args, '-device').includes('virtio-net-pci,netdev=net0,mac=52:54:00:aa:bb:cc'));
  assert.deepEqual(after(args, '-chardev'), ['file,id=serial0,path=/h/profiles/dev/logs/serial.log,append=on']);
  assert.deepEqual(after(args, '-qmp'), ['unix:/h/profiles/dev/qmp.sock,server=on,wait=off']);
  assert.deepEqual(after(args, '-pidfile'), ['/h/profiles/dev/qemu.pid']);
  assert.ok(args.includes('-nodefaults'));
});

test('data ISOs follow the seed as read-only raw virtio disks; a VM recorded without any has only the seed', () => {
  const args = buildQemuArgs({ ...base, dataIsos: ['/h/cache/kubernetes/.media/v1.37.2.iso', '/h/x,y.iso'] });
  const drives = after(args, '-drive');
  assert.equal(drives.length, 4);
  assert.match(drives[1] ?? '', /file=\/h\/profiles\/dev\/seed\.iso,/);
  assert.equal(drives[2], 'if=virtio,file=/h/cache/kubernetes/.media/v1.37.2.iso,format=raw,readonly=on,media=disk');
  assert.equal(drives[3], 'if=virtio,file=/h/x,,y.iso,format=raw,readonly=on,media=disk');
  assert.equal(after(buildQemuArgs(base), '-drive').length, 2);
});

test('a tap netdev for bridged mode; firmware boot without a kernel', () => {
  const { kernel: _k, initrd: _i, append: _a, ...noKernel } = base;
  const args = buildQemuArgs({ ...noKernel, netdev: { kind: 'tap', ifname: 'dc-1a2b3c' } });
  assert.deepEqual(after(args, '-netdev'), ['tap,id=net0,ifname=dc-1a2b3c,script=no,downscript=no']);
  assert.deepEqual(after(args, '-kernel'), []);
});

test('commas in paths are doubled so QEMU does not split the option', () => {
  assert.equal(escapeOption('/home/a,b/disk.qcow2'), '/home/a,,b/disk.qcow2');
  const args = buildQemuArgs({ ...base, disk: '/home/a,b/disk.qcow2' });
  assert.match(after(args, '-drive')[0] ?? '', /file=\/home\/a,,b\/disk\.qcow2,format/);
});

test('MAC addresses are stable per profile, locally administered, and differ between profiles', () => {
  const hash = (s: string) => createHash('sha256').update(s).digest();
  const a = macForProfile('dev', hash);
  assert.equal(a, macForProfile('dev', hash));
  assert.notEqual(a, macForProfile('other', hash));
  assert.match(a, /^52:54:00(:[0-9a-f]{2}){3}$/);
});
