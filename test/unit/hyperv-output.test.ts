import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  asArray,
  classifyError,
  DEFAULT_SWITCH_ID,
  firstUsableIpv4,
  parseErrorRecord,
  parsePowerShellJson,
  parseVmNetworkAdapters,
  parseVms,
  parseVmSwitches,
  splitErrorId,
  vmStateOf,
} from '../../drivers/hyperv/output.ts';
import { REPO } from '../helpers/cli.ts';

/** Parsing what Windows PowerShell prints, on the fixtures of test/fixtures/hyperv (see its README for each format's source). */

const fx = (name: string) => parsePowerShellJson(readFileSync(join(REPO, 'test', 'fixtures', 'hyperv', name), 'utf8'));

describe('PowerShell JSON shapes', () => {
  test('empty output and null are no rows', () => {
    assert.equal(fx('get-vm-empty.txt'), null);
    assert.equal(fx('get-vm-null.json'), null);
    assert.deepEqual(asArray(fx('get-vm-empty.txt')), []);
    assert.deepEqual(asArray(fx('get-vm-null.json')), []);
    assert.deepEqual(parseVms(fx('get-vm-null.json')), []);
    assert.deepEqual(asArray(''), []);
    assert.deepEqual(asArray(undefined), []);
  });

  test('a single object is one row, an array stays an array, nulls inside are dropped', () => {
    assert.deepEqual(asArray({ a: 1 }), [{ a: 1 }]);
    assert.deepEqual(asArray([{ a: 1 }, null, { a: 2 }]), [{ a: 1 }, { a: 2 }]);
    assert.equal(parseVms(fx('get-vm-single.json')).length, 1);
  });

  test('a BOM, CRLF and the uncompressed layout parse like compact JSON', () => {
    assert.deepEqual(parsePowerShellJson('\uFEFF[{"a":1}]\r\n'), [{ a: 1 }]);
    const [vm] = parseVms(fx('get-vm-pretty-crlf.json'));
    assert.ok(vm !== undefined);
    assert.equal(vm.name, 'Prüfung Ώ 集群');
    assert.equal(vm.stateName, 'Running');
    assert.equal(vm.state, 'running');
  });

  test('invalid JSON throws (the runner turns it into its own error)', () => {
    assert.throws(() => parsePowerShellJson('Get-VM : not json'), SyntaxError);
  });
});

describe('Get-VM', () => {
  test('one VM: numeric State 2 is Running; the Id is kept lower case; sizes as numbers', () => {
    assert.deepEqual(parseVms(fx('get-vm-single.json')), [
      {
        name: 'devcluster',
        id: '1d2c3b4a-5e6f-4708-9a1b-2c3d4e5f6a7b',
        stateName: 'Running',
        state: 'running',
        status: 'Operating normally',
        generation: 2,
        processorCount: 2,
        memoryStartupBytes: 4294967296,
        path: 'C:\\Users\\dev\\.devcluster\\profiles\\devcluster',
      },
    ]);
  });

  test('numeric enums: 3 Off, 6 Saved, 9 Paused, 32784 OffCritical (broken)', () => {
    const vms = parseVms(fx('get-vm-array.json'));
    assert.deepEqual(
      vms.map((v) => [v.name, v.stateName, v.state]),
      [
        ['devcluster', 'Off', 'stopped'],
        ['Ubuntu 22.04 LTS', 'Saved', 'saved'],
        ['paused-one', 'Paused', 'paused'],
        ['lost-storage', 'OffCritical', 'broken'],
      ],
    );
    assert.equal(vms[1]?.id, '9e1a2b3c-4d5e-4f60-8172-93a4b5c6d7e8');
  });

  test('states the driver must wait through, and an unknown number', () => {
    assert.equal(vmStateOf('Starting'), 'starting');
    assert.equal(vmStateOf('Stopping'), 'stopping');
    assert.equal(vmStateOf('Saving'), 'stopping');
    const [vm] = parseVms({ Name: 'x', Id: '1d2c3b4a-5e6f-4708-9a1b-2c3d4e5f6a7b', State: 77 });
    assert.equal(vm?.stateName, 'Unknown(77)');
    assert.equal(vm?.state, 'broken');
  });

  test('rows without a name, a valid Id or a State are dropped', () => {
    assert.deepEqual(parseVms([{ Name: 'x', Id: 'not-a-guid', State: 2 }, { Id: '1d2c3b4a-5e6f-4708-9a1b-2c3d4e5f6a7b', State: 2 }, { Name: 'y', Id: '1d2c3b4a-5e6f-4708-9a1b-2c3d4e5f6a7b' }, 'text']), []);
  });
});

describe('Get-VMNetworkAdapter', () => {
  test('IPv6 first: the IPv4 address is chosen, never fe80::', () => {
    const [nic] = parseVmNetworkAdapters(fx('get-vmnetworkadapter-ipv6-first.json'));
    assert.deepEqual(nic?.ipAddresses, ['fe80::215:5dff:fec0:ff01', '172.31.240.2', 'fd00::2']);
    assert.equal(nic?.macAddress, '00155DC0FF01');
    assert.equal(firstUsableIpv4(nic?.ipAddresses ?? []), '172.31.240.2');
  });

  test('IPv6 only (no DHCP) and no KVP daemon: no address', () => {
    const [v6] = parseVmNetworkAdapters(fx('get-vmnetworkadapter-ipv6-only.json'));
    assert.equal(v6?.switchName, 'Default Switch');
    assert.equal(firstUsableIpv4(v6?.ipAddresses ?? []), undefined);
    const [none] = parseVmNetworkAdapters(fx('get-vmnetworkadapter-no-kvp.json'));
    assert.deepEqual(none?.ipAddresses, []);
    assert.equal(firstUsableIpv4(none?.ipAddresses ?? []), undefined);
  });

  test('0.0.0.0, APIPA and loopback are not the guest address', () => {
    assert.equal(firstUsableIpv4(['0.0.0.0', '169.254.3.4', 'fe80::1', '127.0.0.1', '10.0.0.17']), '10.0.0.17');
  });

  test('the management OS adapter: DeviceId kept, null IPAddresses is an empty list', () => {
    const [nic] = parseVmNetworkAdapters(fx('get-vmnetworkadapter-management-os.json'));
    assert.equal(nic?.deviceId, '{5A7C2E9B-3D41-4F8A-9B6C-0E1D2F3A4B5C}');
    assert.equal(nic?.vmName, undefined);
    assert.deepEqual(nic?.ipAddresses, []);
  });
});

describe('Get-VMSwitch', () => {
  test('SwitchType 0/1/2 and the Default Switch found by Id whatever its localized name', () => {
    const switches = parseVmSwitches(fx('get-vmswitch-array.json'));
    assert.deepEqual(
      switches.map((s) => [s.name, s.switchType]),
      [
        ['Standardväxel', 'internal'],
        ['devcluster', 'internal'],
        ['External (Ethernet)', 'external'],
        ['lab-private', 'private'],
      ],
    );
    assert.equal(switches.find((s) => s.id === DEFAULT_SWITCH_ID)?.name, 'Standardväxel');
    assert.equal(switches[2]?.netAdapterInterfaceDescription, 'Intel(R) Ethernet Connection (7) I219-LM');
    assert.equal(switches[1]?.notes, 'Created by devcluster');
    assert.equal(switches[0]?.notes, undefined);
  });

  test('a single switch as a bare object, and SwitchType as a string', () => {
    assert.equal(parseVmSwitches(fx('get-vmswitch-single.json'))[0]?.name, 'Przełącznik domyślny');
    assert.equal(parseVmSwitches({ Id: DEFAULT_SWITCH_ID, Name: 'x', SwitchType: 'External' })[0]?.switchType, 'external');
    assert.deepEqual(parseVmSwitches({ Id: DEFAULT_SWITCH_ID, Name: 'x', SwitchType: 7 }), []);
  });
});

describe('error records', () => {
  test('not found: InvalidParameter from Get-VM with a VirtualizationException', () => {
    const error = parseErrorRecord(fx('error-getvm-not-found.json'));
    assert.equal(error?.fullyQualifiedErrorId, 'InvalidParameter,Microsoft.HyperV.PowerShell.Commands.GetVM');
    assert.equal(error?.exceptionType, 'Microsoft.HyperV.PowerShell.VirtualizationException');
    assert.ok(error !== undefined);
    assert.equal(classifyError(error), 'not-found');
    assert.deepEqual(splitErrorId(error.fullyQualifiedErrorId), { errorId: 'InvalidParameter', command: 'GetVM' });
  });

  test('the raw ErrorRecord shape, localized: matched on the id, never on the German text', () => {
    const error = parseErrorRecord(fx('error-record-raw-getvm.json'));
    assert.ok(error !== undefined);
    assert.equal(error.exceptionType, 'Microsoft.HyperV.PowerShell.VirtualizationException');
    assert.equal(error.category, 'InvalidArgument');
    assert.match(error.message ?? '', /konnte keinen/);
    assert.equal(classifyError(error), 'not-found');
  });

  test('access denied from New-VM', () => {
    const error = parseErrorRecord(fx('error-newvm-access-denied.json'));
    assert.ok(error !== undefined);
    assert.equal(classifyError(error), 'access-denied');
    assert.deepEqual(splitErrorId(error.fullyQualifiedErrorId), { errorId: 'AccessDenied', command: 'NewVM' });
  });

  test('InvalidParameter from a cmdlet that changes something is not "not found"', () => {
    assert.equal(classifyError({ fullyQualifiedErrorId: 'InvalidParameter,Microsoft.HyperV.PowerShell.Commands.NewVM', exceptionType: 'Microsoft.HyperV.PowerShell.VirtualizationException' }), 'other');
  });

  test('constrained language, a missing module, and New-NetNat over an overlap', () => {
    const constrained = parseErrorRecord(fx('error-constrained-language.json'));
    assert.ok(constrained !== undefined);
    assert.equal(classifyError(constrained), 'constrained-language');
    assert.equal(classifyError({ fullyQualifiedErrorId: 'CommandNotFoundException', exceptionType: 'System.Management.Automation.CommandNotFoundException' }), 'command-not-found');
    const overlap = parseErrorRecord(fx('error-new-netnat-overlap.json'));
    assert.ok(overlap !== undefined);
    assert.equal(classifyError(overlap), 'other');
    assert.deepEqual(splitErrorId(overlap.fullyQualifiedErrorId), { errorId: 'Windows System Error 87', command: 'New-NetNat' });
  });

  test('no FullyQualifiedErrorId: not an error record', () => {
    assert.equal(parseErrorRecord(null), undefined);
    assert.equal(parseErrorRecord({ message: 'x' }), undefined);
    assert.equal(parseErrorRecord([]), undefined);
  });
});
