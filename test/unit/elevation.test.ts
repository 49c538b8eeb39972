import { test } from 'node:test';
import assert from 'node:assert/strict';
import { checkElevation, networkMode } from '../../src/cluster/elevation.ts';
import { hypervDriver } from '../../drivers/hyperv/index.ts';
import { qemuDriver } from '../../drivers/qemu/index.ts';
import { isError } from '../helpers/errors.ts';

const needs = { status: 'needs-elevation', elevation: 'administrator', reason: 'not elevated' } as const;

test('the network mode comes from the driver when several settings decide it (Hyper-V), else from its mode setting', () => {
  assert.equal(networkMode(hypervDriver, { 'hyperv-nat': 'winnat' }), 'winnat');
  assert.equal(networkMode(hypervDriver, { 'hyperv-nat': 'ics' }), 'ics');
  assert.equal(networkMode(hypervDriver, { 'hyperv-nat': 'winnat', 'hyperv-virtual-switch': 'Default Switch' }), 'switch');
  assert.equal(networkMode(hypervDriver, { 'hyperv-nat': 'winnat', 'hyperv-external-adapter': 'Ethernet' }), 'external');
  assert.equal(networkMode(qemuDriver, { 'qemu-network': 'bridged' }), 'bridged');
  assert.equal(networkMode(qemuDriver, {}), 'user');
});

test('the refusal names the right the chosen mode needs: an existing switch needs only Hyper-V Administrators', () => {
  assert.throws(() => checkElevation(hypervDriver, needs, { 'hyperv-nat': 'winnat' }, 'create'), isError('HOST_NEEDS_ROOT', (e) => assert.match(e.message, /needs administrator/)));
  assert.throws(() => checkElevation(hypervDriver, needs, { 'hyperv-virtual-switch': 'Default Switch' }, 'create'), isError('HOST_NEEDS_ROOT', (e) => {
    assert.match(e.message, /needs hyperv-administrators/);
    assert.match(e.advice ?? '', /Hyper-V Administrators/);
  }));
});
