import { test } from 'node:test';
import assert from 'node:assert/strict';
import { access, mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { acceleratorVerdict } from '../../drivers/qemu/accel.ts';
import { findQemu } from '../../drivers/qemu/binaries.ts';
import { hostBootId } from '../../src/host/boot-id.ts';
import { skipUnlessPresent } from '../helpers/prerequisite.ts';
import { countingExec } from '../helpers/counting-exec.ts';

const qemu = await findQemu();
const MISSING = skipUnlessPresent(qemu === undefined ? 'qemu-system-x86_64 is not installed (apt-get install qemu-system-x86)' : false);

test('the boot id of this Linux host is read and stable', async () => {
  const id = await hostBootId('linux');
  assert.match(id ?? '', /^linux:[0-9a-f-]{36}$/);
  assert.equal(await hostBootId('linux'), id);
});

test('kernel-less probe on this host: QEMU really starts, the verdict is definitive and cached for this boot only', { skip: MISSING, timeout: 180_000 }, async (t) => {
  if (qemu === undefined) return;
  const dir = await mkdtemp(join(tmpdir(), 'devcluster-accel-real-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const cacheFile = join(dir, 'cache', 'qemu-accel.json');
  const bootId = await hostBootId('linux');
  assert.ok(bootId !== undefined);
  const first = countingExec();
  const v = await acceleratorVerdict({ setting: 'auto', qemu: qemu.system, kernel: undefined, cacheFile, platform: 'linux', exec: first.exec });
  assert.ok(first.qemuRuns.length >= 1);
  assert.ok(!first.qemuRuns.some((a) => a.includes('none') && a[a.indexOf('none') - 1] === '-qmp'), 'no "-qmp none"');
  const kvmUsable = await access('/dev/kvm').then(() => true, () => false);
  if (kvmUsable) {
    // QEMU started and answered (or KVM failed while TCG answered): a definitive verdict, never a usage error.
    assert.equal(v.hardware?.definitive, true, v.reason);
    assert.doesNotMatch(v.reason, /could not run|invalid option|unexpected/i);
    const cache = JSON.parse(await readFile(cacheFile, 'utf8')) as { bootId: string; entries: Record<string, { usable: boolean; reason: string }> };
    assert.equal(cache.bootId, bootId);
    assert.deepEqual(Object.values(cache.entries).map((e) => e.usable), [v.hardware?.usable]);

    const second = countingExec();
    const again = await acceleratorVerdict({ setting: 'auto', qemu: qemu.system, kernel: undefined, cacheFile, platform: 'linux', exec: second.exec });
    assert.deepEqual(second.qemuRuns, [], 'a cached verdict starts no QEMU');
    assert.deepEqual({ ...again, hardware: { ...again.hardware, fromCache: false } }, { ...v, hardware: { ...v.hardware, fromCache: false } });
    assert.equal(again.hardware?.fromCache, true);

    const otherBoot = countingExec();
    await acceleratorVerdict({ setting: 'auto', qemu: qemu.system, kernel: undefined, cacheFile, platform: 'linux', exec: otherBoot.exec, bootId: 'linux:another-boot' });
    assert.ok(otherBoot.qemuRuns.length >= 1, 'a verdict of another boot is not reused');
  } else {
    assert.equal(v.accel, 'tcg');
    assert.match(v.reason, /\/dev\/kvm is not usable/);
  }
});

test('a probe that cannot run soundly is not cached', { skip: MISSING }, async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'devcluster-accel-real-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const cacheFile = join(dir, 'qemu-accel.json');
  // A program that starts but is no QEMU: both the KVM probe and the TCG control fail.
  const notQemu = await acceleratorVerdict({ setting: 'auto', qemu: '/bin/false', kernel: undefined, cacheFile, platform: 'linux', bootId: 'b' });
  const kvmUsable = await access('/dev/kvm').then(() => true, () => false);
  assert.equal(notQemu.accel, 'tcg');
  assert.equal(notQemu.hardware?.definitive, false);
  if (kvmUsable) assert.match(notQemu.reason, /the probe itself could not run/);
  const absent = await acceleratorVerdict({ setting: 'auto', qemu: join(dir, 'qemu-system-x86_64'), kernel: undefined, cacheFile, platform: 'linux', bootId: 'b' });
  assert.equal(absent.hardware?.definitive, false);
  await assert.rejects(readFile(cacheFile), { code: 'ENOENT' });
});
