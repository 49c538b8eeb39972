/**
 * `start --driver vmware` and `doctor --driver vmware` through the real CLI on
 * this Linux host, where VMware is not installed: start refuses with an error
 * ID and leaves $DEVCLUSTER_HOME as it was; doctor reports the cause with its
 * fix, never "no problems".
 */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdir, rm, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { runCli, snapshotTree, tempDir } from '../helpers/cli.ts';

const dirs: string[] = [];
after(async () => {
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});

// Only node's folder on PATH: no vmrun can be found there, whatever this machine has installed elsewhere on PATH.
const ENV = { PATH: dirname(process.execPath), DEVCLUSTER_HOST_CPUS: '4', DEVCLUSTER_HOST_MEMORY_MIB: '16384', LANG: 'C.UTF-8', NO_COLOR: '1' };
const installed = ['/usr/bin/vmrun', '/usr/local/bin/vmrun'].filter((p) => existsSync(p));

async function home(): Promise<string> {
  const h = await tempDir('vmware-cli-');
  dirs.push(h);
  await mkdir(join(h, 'profiles', 'dev'), { recursive: true });
  await writeFile(join(h, 'profiles', 'dev', 'config.json'), '{\n  "cpus": 2\n}\n');
  return h;
}

function withoutLogs(tree: Record<string, string>): Record<string, string> {
  return Object.fromEntries(Object.entries(tree).filter(([p]) => !/^\/logs(\/\d{8}-\d{6}-start-\d+\.log)?$/.test(p)));
}

test('this host has no vmrun in the default folders (what the next tests rely on)', () => {
  assert.deepEqual(installed, []);
});

test('start --driver vmware without VMware refuses with DRIVER_UNAVAILABLE and changes nothing', async () => {
  const h = await home();
  const before = withoutLogs(await snapshotTree(h));
  for (const driver of ['vmware', 'vmware-workstation']) {
    const r = await runCli(['start', '--no-kubernetes', '-p', 'newprof', '--driver', driver], { home: h, env: ENV });
    assert.equal(r.code, 69, r.stderr);
    assert.match(r.stderr, /Exiting due to DRIVER_UNAVAILABLE: the VMware Workstation \/ Fusion driver cannot be used: VMware Workstation is not installed: vmrun was not found \(looked at PATH; \/usr\/bin\/vmrun; \/usr\/local\/bin\/vmrun\)/);
    assert.match(r.stderr, /Install VMware Workstation Pro/);
    assert.match(r.stderr, /devcluster doctor --driver vmware/);
    // The failed command's own log (logs/<time>-start-<pid>.log, kept for every failure that is not a usage error) is all that is new.
    const after = withoutLogs(await snapshotTree(h));
    assert.deepEqual(after, before, `start --driver ${driver} changed $DEVCLUSTER_HOME`);
  }
  const list = await runCli(['profile', 'list', '-o', 'json'], { home: h, env: ENV });
  assert.deepEqual((JSON.parse(list.stdout) as { profiles: Array<{ name: string }> }).profiles.map((p) => p.name), ['dev']);
});

test('a vmware-vmrun setting that is not a path is refused before anything happens', async () => {
  const h = await home();
  const before = await snapshotTree(h);
  const r = await runCli(['start', '--no-kubernetes', '-p', 'newprof', '--driver', 'vmware', '--vmware-vmrun', 'vmrun'], { home: h, env: ENV });
  assert.equal(r.code, 2, r.stderr);
  assert.match(r.stderr, /CONFIG_INVALID_VALUE: .*vmware-vmrun.*"vmrun" is not valid; accepted: auto, or the absolute path of vmrun/);
  assert.deepEqual(await snapshotTree(h), before);
});

test('doctor --driver vmware reports vmrun missing with its fix and exits non-zero', async () => {
  const h = await home();
  const r = await runCli(['doctor', '--driver', 'vmware', '-o', 'json'], { home: h, env: ENV });
  assert.notEqual(r.code, 0, r.stdout);
  const report = JSON.parse(r.stdout) as { checks: Array<{ id: string; status: string; summary: string; fix?: { description: string } }> };
  const installedCheck = report.checks.find((c) => c.id === 'VMWARE_NOT_INSTALLED');
  assert.equal(installedCheck?.status, 'fail');
  assert.match(installedCheck?.summary ?? '', /vmrun was not found \(looked at PATH; \/usr\/bin\/vmrun; \/usr\/local\/bin\/vmrun\)/);
  assert.match(installedCheck?.fix?.description ?? '', /Install VMware Workstation Pro/);
  for (const id of ['VMWARE_WORKSTATION_PRO_MISSING', 'VMWARE_VMNET8_MISSING']) assert.equal(report.checks.find((c) => c.id === id)?.status, 'skip', id);
  assert.equal(report.checks.find((c) => c.id === 'VMWARE_HYPERV_CONFLICT'), undefined, 'a Windows-only check is left out on Linux');

  const text = await runCli(['doctor', '--driver', 'vmware'], { home: h, env: ENV });
  assert.match(text.stdout, /\[✗\] VMware: +vmrun was not found/);
  assert.doesNotMatch(text.stdout, /no problems/i);
});
