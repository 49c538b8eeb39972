/**
 * Assertions shared by the lifecycle tests: what devcluster created on the
 * (fake) host is always recorded in the profile's state, and the state file
 * on disk is what the tests read (never the in-memory copy of a command).
 */
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { profilePaths } from '../../src/profile/paths.ts';
import type { ProfileState } from '../../src/profile/state.ts';
import { FAKE_SWITCH } from './fake-driver.ts';
import { readRegistry, vmProcessAlive } from './fake-hypervisor.ts';
import { PROFILE } from './lifecycle.ts';

export async function stateFile(home: string, profile = PROFILE): Promise<ProfileState | undefined> {
  const text = await readFile(profilePaths(home, profile).state, 'utf8').catch(() => undefined);
  return text === undefined ? undefined : (JSON.parse(text) as ProfileState);
}

/**
 * Every object that exists on the host for this profile is in state.json's
 * resources: a crash at any moment leaves nothing that delete would not know.
 */
export async function assertEverythingRecorded(home: string, profile = PROFILE): Promise<void> {
  const paths = profilePaths(home, profile);
  const state = await stateFile(home, profile);
  const recorded = new Set((state?.resources ?? []).map((r) => `${r.kind} ${r.id}`));
  const registry = await readRegistry(home);
  const vm = Object.values(registry.vms).find((v) => v.profileDir === paths.dir);
  const exists: string[] = [];
  if (vm !== undefined) exists.push(`fake-vm ${vm.name}`);
  if (vm !== undefined && vmProcessAlive(vm)) exists.push(`process ${vm.name}`);
  if (registry.switches[FAKE_SWITCH]?.users.includes(paths.dir) === true) exists.push(`fake-switch ${FAKE_SWITCH}`);
  const disk = join(paths.disks, 'disk.qcow2');
  if (existsSync(disk) || existsSync(`${disk}.creating`)) exists.push(`file ${disk}`);
  if (existsSync(paths.seedIso)) exists.push(`file ${paths.seedIso}`);
  const unrecorded = exists.filter((e) => !recorded.has(e));
  assert.deepEqual(unrecorded, [], `created but not recorded in ${paths.state}: ${unrecorded.join(', ')}`);
}

export function lockHeld(home: string, profile = PROFILE): boolean {
  return existsSync(profilePaths(home, profile).lock);
}
