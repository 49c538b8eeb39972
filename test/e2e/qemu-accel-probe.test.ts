import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { acceleratorVerdict } from '../../drivers/qemu/accel.ts';
import { findQemu } from '../../drivers/qemu/binaries.ts';
import { countingExec } from '../helpers/counting-exec.ts';
import { e2e, ensureDebianImage, requireRootAndQemu } from './guest.ts';

/**
 * The accelerator probe with a real guest kernel, the Debian image's own. On
 * this project's CI machine nested KVM hangs in the guest kernel while a paused
 * VM starts fine: only the boot test tells, and TCG reaching the kernel makes
 * that verdict definitive.
 */
const skip = requireRootAndQemu();
let kernel: string | undefined;

before(async () => {
  if (skip !== false) return;
  await ensureDebianImage();
  const doc = JSON.parse((await e2e(['image', 'list', '-o', 'json'])).stdout) as { cache: string; images: Array<{ name: string; format: string; sha256: string; file: string }> };
  const row = doc.images.find((i) => i.name === 'debian-12' && i.format === 'kernel');
  if (row !== undefined) kernel = join(doc.cache, row.sha256, row.file);
});

test('with a kernel: the verdict comes from a real test boot and is cached', { skip, timeout: 300_000 }, async (t) => {
  assert.ok(kernel !== undefined, 'the Debian image has a kernel in the cache');
  const qemu = await findQemu();
  assert.ok(qemu !== undefined);
  const dir = await mkdtemp(join(tmpdir(), 'devcluster-accel-real-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const cacheFile = join(dir, 'qemu-accel.json');
  const probe = countingExec();
  const v = await acceleratorVerdict({ setting: 'auto', qemu: qemu.system, kernel, cacheFile, platform: 'linux', exec: probe.exec });
  assert.ok(probe.qemuRuns.some((a) => a.includes('-kernel')), 'a test boot ran');
  assert.equal(v.hardware?.definitive, true, v.reason);
  if (!v.hardware?.usable) assert.match(v.reason, /KVM unusable: a test boot with -cpu host failed under KVM/);
  const cache = JSON.parse(await readFile(cacheFile, 'utf8')) as { entries: Record<string, unknown> };
  assert.equal(Object.keys(cache.entries).length, 1);
  assert.ok(Object.keys(cache.entries)[0]?.includes(kernel));
  const again = countingExec();
  assert.deepEqual(await acceleratorVerdict({ setting: 'auto', qemu: qemu.system, kernel, cacheFile, platform: 'linux', exec: again.exec }), { ...v, hardware: { ...v.hardware, fromCache: true } });
  assert.deepEqual(again.qemuRuns, [], 'the second verdict comes from the cache');
});
