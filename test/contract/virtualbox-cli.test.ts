/**
 * The real CLI with the VirtualBox driver on this host: without VBoxManage,
 * `start --driver virtualbox` refuses with an ID and creates no profile, and
 * `doctor --driver virtualbox` names the cause and its fix; with the scripted
 * VBoxManage found through VBOX_INSTALL_PATH, the doctor reports its version
 * and where it was found, and fails on a kernel-driver warning.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { REPO, runCli, tempDir } from '../helpers/cli.ts';
import { skipUnlessPresent } from '../helpers/prerequisite.ts';

const DOUBLE_DIR = join(REPO, 'test', 'fixtures', 'virtualbox', 'double');
const installed = ['/usr/bin/VBoxManage', '/usr/local/bin/VBoxManage', '/usr/lib/virtualbox/VBoxManage', '/opt/VirtualBox/VBoxManage'].find((p) => existsSync(p));
const skip = process.platform !== 'linux' ? 'runs on Linux' : skipUnlessPresent(installed === undefined ? false : `VirtualBox is installed here (${installed}), so its absence cannot be shown`);
/** Only node on PATH (the double's interpreter), no VirtualBox variables. */
const BARE = { PATH: `${dirname(process.execPath)}:/usr/bin:/bin`, VBOX_INSTALL_PATH: undefined, VBOX_MSI_INSTALL_PATH: undefined, DEVCLUSTER_HOST_CPUS: '4', DEVCLUSTER_HOST_MEMORY_MIB: '16384' };

interface DoctorJson {
  checks: Array<{ id: string; status: string; summary: string; fix?: { description: string } }>;
  summary: { exitCode: number };
}

test('start --driver virtualbox without VirtualBox refuses with DRIVER_UNAVAILABLE and creates no profile', { skip }, async () => {
  const home = await tempDir('vbox-cli-');
  const r = await runCli(['start', '--driver', 'virtualbox', '--no-kubernetes', '-p', 'vb'], { home, env: BARE });
  assert.equal(r.code, 69, r.stderr);
  assert.match(r.stderr, /Exiting due to DRIVER_UNAVAILABLE: the VirtualBox driver cannot be used: VBoxManage was not found/);
  assert.match(r.stderr, /VBOX_INSTALL_PATH/);
  assert.match(r.stderr, /devcluster doctor --driver virtualbox/);
  // Only the command's own log (kept for a failure) is written: no profile, no state, no network registry.
  assert.deepEqual(readdirSync(home), ['logs']);
  const list = await runCli(['profile', 'list', '-o', 'json'], { home, env: BARE });
  assert.deepEqual((JSON.parse(list.stdout) as { profiles: unknown[] }).profiles, []);
});

test('doctor --driver virtualbox without VirtualBox fails VBOX_NOT_INSTALLED with the fix', { skip }, async () => {
  const home = await tempDir('vbox-cli-');
  const r = await runCli(['doctor', '--driver', 'virtualbox', '-o', 'json'], { home, env: BARE });
  assert.notEqual(r.code, 0);
  const report = JSON.parse(r.stdout) as DoctorJson;
  const check = report.checks.find((c) => c.id === 'VBOX_NOT_INSTALLED');
  assert.equal(check?.status, 'fail');
  assert.match(check?.summary ?? '', /VBoxManage was not found/);
  assert.match(check?.fix?.description ?? '', /Install VirtualBox.*VBOX_INSTALL_PATH/);
  assert.equal(report.checks.find((c) => c.id === 'VBOX_HOSTONLY_RANGE')?.status, 'skip');
});

test('doctor finds VBoxManage through VBOX_INSTALL_PATH, reports its version, and fails on a kernel-driver warning', { skip }, async () => {
  const home = await tempDir('vbox-cli-');
  const state = join(home, '..', `${home.split('/').pop() ?? 'x'}-double.json`);
  writeFileSync(state, JSON.stringify({ version: '7.0.14' }));
  const env = { ...BARE, VBOX_INSTALL_PATH: `/nonexistent:${DOUBLE_DIR}`, VBOX_DOUBLE_STATE: state };
  const ok = JSON.parse((await runCli(['doctor', '--driver', 'virtualbox', '-o', 'json'], { home, env })).stdout) as DoctorJson;
  const check = ok.checks.find((c) => c.id === 'VBOX_NOT_INSTALLED');
  assert.equal(check?.status, 'pass', JSON.stringify(check));
  assert.equal(check?.summary, `VirtualBox 7.0.14 (${join(DOUBLE_DIR, 'VBoxManage')}, found through VBOX_INSTALL_PATH)`);
  assert.equal(ok.checks.find((c) => c.id === 'VBOX_VTX_UNAVAILABLE')?.status, 'skip', 'no VM has been started');
  assert.match(ok.checks.find((c) => c.id === 'VBOX_HOSTONLY_RANGE')?.summary ?? '', /192\.168\.56\.0\/21|networks\.conf/);

  writeFileSync(state, JSON.stringify({ version: '6.1.26', revision: '_Ubuntur145957', versionWarnings: ['WARNING: The vboxdrv kernel module is not loaded. Either there is no module', '         available for the current kernel or it failed to load.'] }));
  const warned = JSON.parse((await runCli(['doctor', '--driver', 'virtualbox', '-o', 'json'], { home, env })).stdout) as DoctorJson;
  const bad = warned.checks.find((c) => c.id === 'VBOX_NOT_INSTALLED');
  assert.equal(bad?.status, 'fail');
  assert.match(bad?.summary ?? '', /VirtualBox 6\.1\.26 .* warns: WARNING: The vboxdrv kernel module is not loaded/);
  assert.match(bad?.fix?.description ?? '', /kernel modules/);
});
