import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdir, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { createSupportBundle } from '../../src/doctor/bundle.ts';
import { createDoctorContext } from '../../src/doctor/context.ts';
import type { GuestAccessor } from '../../src/doctor/types.ts';
import { tempDir } from '../helpers/cli.ts';

const PRIVATE_KEY = '-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQAAAAAAAAABAAAAMwAAAAtzc2gtZW\n-----END OPENSSH PRIVATE KEY-----';

async function homeWithLogs(): Promise<{ home: string; userHome: string }> {
  const root = await tempDir('devcluster-bundle-');
  const home = join(root, 'dc-home');
  const userHome = join(root, 'user');
  await mkdir(join(home, 'logs'), { recursive: true });
  await mkdir(userHome, { recursive: true });
  // Twelve command logs; the bundle keeps the newest ten.
  for (let i = 1; i <= 12; i += 1) {
    const name = `20261122-1000${String(i).padStart(2, '0')}-start-${1000 + i}.log`;
    await writeFile(join(home, 'logs', name), `log ${i}\n`);
  }
  await writeFile(
    join(home, 'logs', '20261122-100013-start-1013.log'),
    [
      '2026-11-22T10:00:13Z exec  $ curl -H Authorization: Bearer eyJhbGciOiJSUzI1NiJ9.payload.signature https://127.0.0.1:6443/readyz',
      '2026-11-22T10:00:14Z info  HTTPS_PROXY=bob:hunter2@proxy.corp:3128',
      `2026-11-22T10:00:15Z debug key ${PRIVATE_KEY}`,
      '',
    ].join('\n'),
  );
  const profileLogs = join(home, 'profiles', 'devcluster', 'logs');
  await mkdir(profileLogs, { recursive: true });
  await writeFile(join(profileLogs, 'serial.log'), '[  OK  ] Started kubelet.service\nkubeadm join --token abcdef.0123456789abcdef\n');
  await writeFile(join(home, 'profiles', 'devcluster', 'state.json'), JSON.stringify({ schemaVersion: 1, profile: 'devcluster', driver: 'qemu', status: 'Running', apiServer: 'https://127.0.0.1:1', resources: [], driverData: {} }));
  return { home, userHome };
}

/** unzip's listing is parsed: it runs in the C locale whatever the test runner's is. */
const C_LOCALE = { ...process.env, LANG: 'C', LC_ALL: 'C' };

function unzipList(path: string): string[] {
  return execFileSync('unzip', ['-Z1', path], { encoding: 'utf8', env: C_LOCALE }).trim().split('\n').sort();
}

function unzipRead(path: string, member: string): string {
  return execFileSync('unzip', ['-p', path, member], { encoding: 'utf8', env: C_LOCALE });
}

test('the support bundle holds the doctor report, the newest logs, the serial log and the guest journals, with secrets masked', async () => {
  const { home, userHome } = await homeWithLogs();
  const calls: string[][] = [];
  const guest: GuestAccessor = {
    target: 'devcluster@127.0.0.1:2222',
    async exec(argv) {
      calls.push([...argv]);
      const unit = argv.includes('-u') ? argv[argv.indexOf('-u') + 1] : 'systemd';
      return { stdout: `${unit}[812]: started\n${unit}[812]: using password=Sup3rSecret for the registry\n`, stderr: '', exitCode: 0 };
    },
  };
  const ctx = await createDoctorContext({ home, env: { HOME: userHome, HTTPS_PROXY: 'http://carol:pr0xyPass@proxy.corp:8080', DEVCLUSTER_HOME: home }, guest, vm: null });
  const out = join(home, 'bundle.zip');
  const path = await createSupportBundle(ctx, { outputPath: out });
  assert.equal(path, out);
  assert.equal((await stat(path)).mode & 0o777, 0o600);

  const names = unzipList(path);
  const logs = names.filter((n) => n.startsWith('logs/'));
  assert.equal(logs.length, 10);
  assert.ok(!logs.includes('logs/20261122-100001-start-1001.log') && logs.includes('logs/20261122-100013-start-1013.log'));
  for (const n of ['README.txt', 'doctor.json', 'environment.txt', 'profile/logs/serial.log', 'profile/state.json', 'guest/boot.journal.txt', 'guest/kubelet.journal.txt', 'guest/containerd.journal.txt']) {
    assert.ok(names.includes(n), `${n} missing from ${names.join(', ')}`);
  }

  const doctor = JSON.parse(unzipRead(path, 'doctor.json')) as { schemaVersion: number; checks: Array<{ id: string; evidence: unknown[] }> };
  assert.equal(doctor.schemaVersion, 1);
  assert.ok(doctor.checks.some((c) => c.id === 'QEMU_NOT_INSTALLED'), 'driver checks are part of the report');

  const everything = names.map((n) => unzipRead(path, n)).join('\n');
  for (const secret of ['hunter2', 'pr0xyPass', 'Sup3rSecret', 'eyJhbGciOiJSUzI1NiJ9', 'b3BlbnNzaC1rZXktdjE', '0123456789abcdef']) {
    assert.ok(!everything.includes(secret), `${secret} leaked into the bundle`);
  }
  assert.match(unzipRead(path, 'environment.txt'), /^HTTPS_PROXY=http:\/\/carol:\*{8}@proxy\.corp:8080$/m);
  assert.match(unzipRead(path, 'logs/20261122-100013-start-1013.log'), /HTTPS_PROXY=bob:\*{8}@proxy\.corp:3128/);
  assert.match(unzipRead(path, 'guest/kubelet.journal.txt'), /kubelet\[812\]: started/);
  // Every journal is read as root in the guest: without it journalctl shows a user only their own entries.
  assert.deepEqual(calls.filter((c) => c.includes('journalctl') && c.includes('3000')), [
    ['sudo', '-n', 'journalctl', '-b', '-n', '3000', '--no-pager'],
    ['sudo', '-n', 'journalctl', '-u', 'kubelet', '-n', '3000', '--no-pager'],
    ['sudo', '-n', 'journalctl', '-u', 'containerd', '-n', '3000', '--no-pager'],
  ]);
  assert.match(unzipRead(path, 'README.txt'), /support bundle for profile devcluster/);
});

test('called as the logs command calls it: home and profile, no guest; notes say what is missing', async () => {
  const root = await tempDir('devcluster-bundle-');
  const home = join(root, 'empty-home');
  const path = await createSupportBundle({ home, profile: 'dev' });
  assert.match(path, new RegExp(`^${home.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')}/bundles/devcluster-dev-\\d{8}T?\\d{6}Z?\\.zip$`));
  const readme = unzipRead(path, 'README.txt');
  assert.match(readme, /No command logs were found\./);
  assert.match(readme, /No serial log: the VM has not been started\./);
  assert.match(readme, /No guest journals: no SSH access to a running VM\./);
});

test('a profile without Kubernetes: no kubelet journal, and the README says why', async () => {
  const { home, userHome } = await homeWithLogs();
  await writeFile(join(home, 'profiles', 'devcluster', 'state.json'), JSON.stringify({ schemaVersion: 1, profile: 'devcluster', driver: 'qemu', status: 'Running', created: { cpus: 2, memoryMiB: 2048, diskMiB: 20480, image: 'debian-12', kubernetes: false }, resources: [], driverData: {} }));
  const calls: string[][] = [];
  const guest: GuestAccessor = {
    target: 'devcluster@127.0.0.1:2222',
    async exec(argv) {
      calls.push([...argv]);
      return { stdout: 'cloud-init[301]: done\n', stderr: '', exitCode: 0 };
    },
  };
  const ctx = await createDoctorContext({ home, env: { HOME: userHome }, guest, vm: null });
  const path = await createSupportBundle(ctx, { outputPath: join(home, 'b.zip') });
  const names = unzipList(path);
  assert.ok(names.includes('guest/boot.journal.txt') && names.includes('guest/containerd.journal.txt'));
  assert.ok(!names.includes('guest/kubelet.journal.txt'), names.join(', '));
  assert.ok(!calls.some((c) => c.includes('kubelet')));
  assert.match(unzipRead(path, 'README.txt'), /No kubelet journal: the profile was created without Kubernetes\./);
});

test('when sudo fails in the guest the journal is read without it, and the bundle says so', async () => {
  const { home, userHome } = await homeWithLogs();
  const calls: string[][] = [];
  const guest: GuestAccessor = {
    target: 'devcluster@127.0.0.1:2222',
    async exec(argv) {
      calls.push([...argv]);
      if (argv[0] === 'sudo') return { stdout: '', stderr: 'sudo: a password is required\n', exitCode: 1 };
      return { stdout: 'sshd[90]: Server listening\n', stderr: '', exitCode: 0 };
    },
  };
  const ctx = await createDoctorContext({ home, env: { HOME: userHome }, guest, vm: null });
  const path = await createSupportBundle(ctx, { outputPath: join(home, 'b.zip') });
  const boot = unzipRead(path, 'guest/boot.journal.txt');
  assert.match(boot, /^\(sudo -n failed in the guest: sudo: a password is required; read without it/);
  assert.match(boot, /sshd\[90\]: Server listening/);
  assert.ok(calls.some((c) => c[0] === 'journalctl' && c.includes('-b')), 'retried without sudo');
  assert.match(unzipRead(path, 'README.txt'), /The guest's boot journal was read without sudo: sudo: a password is required\./);
});
