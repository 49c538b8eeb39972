import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { runCli, tempDir } from '../helpers/cli.ts';

/**
 * `profile list` and `config view` on profiles in every state a user meets:
 * created (what the VM was made with wins over today's settings), not created
 * yet, half-created, and with a state file that is damaged.
 */

const ENV = { DEVCLUSTER_HOST_CPUS: '4', DEVCLUSTER_HOST_MEMORY_MIB: '16384' };

interface Row {
  name: string;
  driver: string | null;
  cpus: number | null;
  memoryMiB: number | null;
  diskMiB: number | null;
  kubernetesVersion: string | null;
  image: string | null;
  status: string;
  problem?: string;
}

let home: string;

function state(profile: string, extra: Record<string, unknown>): string {
  return `${JSON.stringify({ schemaVersion: 1, profile, driver: 'qemu', status: 'Stopped', createdAt: '2026-01-01T00:00:00Z', updatedAt: '2026-01-01T00:00:00Z', resources: [], driverData: {}, ...extra }, null, 2)}\n`;
}

before(async () => {
  home = await tempDir();
  // Today's settings differ from what "made" was created with: the VM's own values must win.
  await writeFile(join(home, 'config.json'), '{\n  "cpus": 3,\n  "image": "photon-5"\n}\n');
  const profile = async (name: string, files: Record<string, string>) => {
    await mkdir(join(home, 'profiles', name), { recursive: true });
    for (const [file, text] of Object.entries(files)) await writeFile(join(home, 'profiles', name, file), text);
  };
  await profile('made', {
    'state.json': state('made', {
      created: { cpus: 1, memoryMiB: 2048, diskMiB: 8192, image: 'debian-12', kubernetes: false },
      image: { name: 'debian-12', sha256: 'a'.repeat(64), format: 'qcow2' },
      // What the QEMU driver keeps for a created VM: its status is asked of the driver, which finds it stopped.
      driverData: { qemu: { mode: 'user', vm: { cpus: 1, memoryMiB: 2048, disk: '/nonexistent/disk.qcow2', seedIso: '/nonexistent/seed.iso', mac: '52:54:00:12:34:56' } } },
    }),
  });
  await profile('fresh', { 'config.json': '{\n  "image": "debian-12"\n}\n' });
  await profile('half', { 'state.json': state('half', { status: 'Creating' }) });
  await profile('truncated', { 'state.json': state('truncated', {}).slice(0, 40) });
  await profile('hollow', { 'state.json': '{}\n' });
});

test('profile list -o json: the image, and what a created VM was made with', async () => {
  const r = await runCli(['profile', 'list', '-o', 'json'], { home, env: ENV });
  assert.equal(r.code, 0, r.stderr);
  const rows = new Map((JSON.parse(r.stdout) as { profiles: Row[] }).profiles.map((p) => [p.name, p]));
  assert.deepEqual([...rows.keys()], ['fresh', 'half', 'hollow', 'made', 'truncated']);
  const made = rows.get('made');
  assert.deepEqual(
    { driver: made?.driver, cpus: made?.cpus, memoryMiB: made?.memoryMiB, diskMiB: made?.diskMiB, kubernetesVersion: made?.kubernetesVersion, image: made?.image, status: made?.status },
    { driver: 'qemu', cpus: 1, memoryMiB: 2048, diskMiB: 8192, kubernetesVersion: 'none', image: 'debian-12', status: 'Stopped' },
  );
  assert.equal(rows.get('fresh')?.image, 'debian-12', 'a profile not created yet shows the image a start would use');
  assert.equal(rows.get('fresh')?.cpus, 3);
  assert.equal(rows.get('fresh')?.status, 'Not created');
  assert.equal(rows.get('half')?.status, 'Creating (unfinished)', 'a create that left no VM is named as unfinished');
  assert.equal(rows.get('half')?.image, 'photon-5');
});

test('profile list shows a damaged state file as Corrupt state, with why, and exits 0', async () => {
  const r = await runCli(['profile', 'list', '-o', 'json'], { home, env: ENV });
  const rows = new Map((JSON.parse(r.stdout) as { profiles: Row[] }).profiles.map((p) => [p.name, p]));
  for (const name of ['truncated', 'hollow']) {
    const row = rows.get(name);
    assert.equal(row?.status, 'Corrupt state', name);
    assert.match(row?.problem ?? '', new RegExp(`profiles/${name}/state\\.json is damaged: `), name);
    assert.equal(row?.image, null);
  }
  assert.match(rows.get('hollow')?.problem ?? '', /"profile" is missing/);
  const text = await runCli(['profile', 'list'], { home, env: ENV });
  assert.equal(text.code, 0, text.stderr);
  assert.match(text.stdout, /^PROFILE\s+DRIVER\s+CPUS\s+MEMORY\s+DISK\s+KUBERNETES\s+IMAGE\s+IP\s+STATUS\s+ACTIVE$/m);
  assert.match(text.stdout, /^made\s+qemu\s+1\s+2GiB\s+8GiB\s+none\s+debian-12\s+Stopped$/m);
  assert.match(text.stdout, /^truncated\s+Corrupt state$/m);
  assert.match(text.stdout, /^truncated: .*state\.json is damaged: not valid JSON/m);
});

test('config view of an existing profile adds what its VM was created with, labelled as fixed', async () => {
  const r = await runCli(['config', 'view', '-p', 'made'], { home, env: ENV });
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /^cpus\s+3\s+global/m, 'the settings table still shows the settings');
  assert.match(r.stdout, /Existing cluster made \(Stopped\) was created with these, fixed for its VM until `devcluster delete -p made`:/);
  const fixed = r.stdout.slice(r.stdout.indexOf('Existing cluster'));
  for (const [k, v] of [['driver', 'qemu'], ['cpus', '1'], ['memory', '2GiB'], ['disk-size', '8GiB'], ['image', 'debian-12'], ['kubernetes', 'none']]) {
    assert.match(fixed, new RegExp(`^${k}\\s+${v}$`, 'm'), k);
  }
  const doc = JSON.parse((await runCli(['config', 'view', '-p', 'made', '-o', 'json'], { home, env: ENV })).stdout) as { existingCluster: unknown };
  assert.deepEqual(doc.existingCluster, { status: 'Stopped', driver: 'qemu', created: { cpus: 1, memoryMiB: 2048, diskMiB: 8192, image: 'debian-12', kubernetes: false } });
});

test('config view without a cluster, with a half-created one, and with a damaged state', async () => {
  const view = async (p: string) => JSON.parse((await runCli(['config', 'view', '-p', p, '-o', 'json'], { home, env: ENV })).stdout) as { existingCluster: { status: string; created: unknown; problem?: string } | null };
  assert.equal((await view('fresh')).existingCluster, null);
  assert.match((await runCli(['config', 'view', '-p', 'fresh'], { home, env: ENV })).stdout, /no cluster yet: `devcluster start` creates it with these/);
  assert.deepEqual((await view('half')).existingCluster, { status: 'Creating', driver: 'qemu', created: null });
  const truncated = (await view('truncated')).existingCluster;
  assert.equal(truncated?.status, 'Corrupt state');
  assert.match(truncated?.problem ?? '', /state\.json is damaged/);
});
