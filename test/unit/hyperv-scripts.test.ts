import { test } from 'node:test';
import assert from 'node:assert/strict';
import { SAMPLE_VALUES, everyHypervScript } from '../../drivers/hyperv/script-catalog.ts';
import { guid } from '../../drivers/hyperv/ps.ts';
import { createVmScript, vmStateScript } from '../../drivers/hyperv/vm-scripts.ts';
import { findSwitchScript } from '../../drivers/hyperv/network-scripts.ts';
import { missingRight, parseRights } from '../../drivers/hyperv/rights.ts';
import { createRunner, opOf } from '../../drivers/hyperv/runner.ts';
import { DevclusterError } from '../../src/ui/errors.ts';
import { DEFAULT_SWITCH_ID } from '../../drivers/hyperv/output.ts';

const vm = {
  name: 'devcluster-dev',
  dir: 'C:\\p\\dev\\hyperv',
  vhdPath: 'C:\\p\\dev\\disks\\disk.vhdx',
  baseVhdPath: 'C:\\cache\\base.vhdx',
  diskBytes: 20 * 1024 ** 3,
  memoryMiB: 4096,
  cpus: 4,
  mac: '02DC0A0B0C0D',
  switchName: 'devcluster',
  switchId: '3f5d2a1e-9c7b-4b2e-8a41-7d0c5e9f1a22',
  isos: ['C:\\p\\dev\\seed.iso', 'C:\\cache\\bundle.iso'],
  pipe: '\\\\.\\pipe\\devcluster-dev',
  secureBoot: false,
};

/** Text outside single-quoted literals (the sample values hold no Unicode quotes). */
function code(script: string): string {
  return script.replace(/'(?:[^']|'')*'/g, "''");
}

test('every cmdlet in every script is module-qualified (PowerCLI defines Get-VM, Start-VM, ... too)', () => {
  for (const { name, script } of everyHypervScript(SAMPLE_VALUES)) {
    const bare = [...code(script).matchAll(/(^|[^\\\w-])([A-Z][A-Za-z]+-[A-Z][A-Za-z]+)\b/g)].map((m) => m[2]);
    assert.deepEqual(bare, [], `${name}: ${bare.join(', ')}`);
  }
});

test('every script names its operation in its first line, and the names are unique per builder', () => {
  const ops = everyHypervScript(SAMPLE_VALUES).map((s) => opOf(s.script));
  assert.ok(ops.every((o) => o !== 'script'));
  assert.ok(ops.includes('create-vm') && ops.includes('new-netnat') && ops.includes('ics-enable') && ops.includes('query-rights'));
});

test('the VM: Generation 2, static memory in bytes, checkpoints off, start action Nothing, static MAC, DVDs on SCSI, COM1 to the pipe', () => {
  const s = createVmScript(vm);
  assert.match(s, /Hyper-V\\New-VM -Name 'devcluster-dev' -Path 'C:\\p\\dev\\hyperv' -Generation 2 -VHDPath 'C:\\p\\dev\\disks\\disk.vhdx' -BootDevice VHD -MemoryStartupBytes 4294967296/);
  assert.match(s, /Hyper-V\\Set-VM -VM \$vm -ProcessorCount 4 -StaticMemory -MemoryStartupBytes 4294967296 -AutomaticCheckpointsEnabled \$false -CheckpointType Disabled -AutomaticStartAction Nothing/);
  assert.match(s, /Hyper-V\\Set-VMFirmware -VM \$vm -EnableSecureBoot Off/);
  assert.match(createVmScript({ ...vm, secureBoot: true }), /-EnableSecureBoot On -SecureBootTemplate 'MicrosoftUEFICertificateAuthority'/);
  assert.match(s, /Set-VMNetworkAdapter -VMNetworkAdapter \$nic -StaticMacAddress '02DC0A0B0C0D'/);
  assert.equal([...s.matchAll(/Hyper-V\\Add-VMDvdDrive -VM \$vm -Path '/g)].length, 2);
  assert.match(s, /Hyper-V\\Set-VMComPort -VM \$vm -Number 1 -Path '\\\\\.\\pipe\\devcluster-dev'/);
  assert.match(s, /Connect-VMNetworkAdapter -VMNetworkAdapter \$nic -VMSwitch \$switch/);
  assert.throws(() => createVmScript({ ...vm, cpus: 1.5 }), /cpus/);
});

test('VMs and switches are found by Id; Ids are checked before they enter a script', () => {
  assert.match(vmStateScript('1D2C3B4A-5E6F-4708-9A1B-2C3D4E5F6A7B'), /\$_\.Id -eq \[guid\]'1D2C3B4A-5E6F-4708-9A1B-2C3D4E5F6A7B'/);
  assert.match(findSwitchScript({ id: DEFAULT_SWITCH_ID }), /\$_\.Id -eq \[guid\]'c08cb7b8-9b3c-408e-8e30-5e16a3aeb444'/);
  assert.match(findSwitchScript({ name: 'a*[b]' }), /\$_\.Name -eq 'a\*\[b\]'/, 'no wildcard expansion: compared with -eq');
  assert.throws(() => guid("x'); Remove-VM"), /not a GUID/);
});

test('rights: either SID, read from the token; each operation names the one it lacks', () => {
  assert.deepEqual(parseRights([{ Administrator: false, HypervAdministrators: true }]), { administrator: false, hypervAdministrators: true });
  assert.deepEqual(parseRights({ Administrator: 'True', HypervAdministrators: 'False' }), { administrator: true, hypervAdministrators: false });
  assert.deepEqual(parseRights(null), { administrator: false, hypervAdministrators: false });
  assert.equal(missingRight({ administrator: false, hypervAdministrators: true }, 'vm'), undefined);
  assert.equal(missingRight({ administrator: false, hypervAdministrators: true }, 'administrator'), 'administrator');
  assert.equal(missingRight({ administrator: false, hypervAdministrators: false }, 'vm'), 'hyperv-administrators');
  assert.equal(missingRight({ administrator: true, hypervAdministrators: false }, 'administrator'), undefined);
});

test('the runner refuses on a host that is not Windows, with its own error, before spawning anything', async () => {
  let spawned = false;
  const run = createRunner({
    platform: 'linux',
    exec: async () => {
      spawned = true;
      throw new Error('must not run');
    },
  });
  const e = await run(vmStateScript('1d2c3b4a-5e6f-4708-9a1b-2c3d4e5f6a7b')).catch((x: unknown) => x);
  assert.ok(e instanceof DevclusterError && e.id === 'HYPERV_NOT_WINDOWS' && /vm-state cannot run here/.test(e.message), String(e));
  assert.equal(spawned, false);
});
