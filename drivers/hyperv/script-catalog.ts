import { HOST_NETWORK_QUERIES } from './host-network.ts';
import { arrayScript } from '../../src/host/powershell.ts';
import { DEFAULT_SWITCH_ID } from './output.ts';
import {
  findAdapterScript,
  findSwitchScript,
  hostAdapterScript,
  hostNetworkScript,
  icsDisableScript,
  icsEnableScript,
  icsStatusScript,
  newExternalSwitchScript,
  newInternalSwitchScript,
  newNetNatScript,
  removeHostAddressScript,
  removeNetNatScript,
  removeSwitchScript,
  setHostAddressScript,
  switchVmsScript,
} from './network-scripts.ts';
import { hypervPresenceScript, rightsScript } from './rights.ts';
import { createDiskScript, createVmScript, findOwnVmScript, removeVmScript, resumeVmScript, shutdownVmScript, startVmScript, turnOffVmScript, vmAddressScript, vmStateScript } from './vm-scripts.ts';

/**
 * Every script the Hyper-V driver can generate, for the contract tests:
 * each parses with tree-sitter-powershell, each invocation is checked
 * against the cmdlet table, and the values a user chose (names, paths)
 * appear only inside string literals, whatever characters they hold.
 */
export interface HypervScriptValues {
  vmName: string;
  /** The profile directory (the VM's configuration folder). */
  vmDir: string;
  vhdPath: string;
  baseVhdPath: string;
  seedIso: string;
  dataIsos: string[];
  pipe: string;
  switchName: string;
  adapterName: string;
  adapterDescription: string;
  natName: string;
  /** Values Hyper-V or devcluster make (validated before use, never free text). */
  vmId: string;
  switchId: string;
  subnet: string;
  gateway: string;
  mac: string;
  publicGuid: string;
  privateGuid: string;
}

export const SAMPLE_VALUES: HypervScriptValues = {
  vmName: 'devcluster-default',
  vmDir: 'C:\\Users\\dev\\.devcluster\\profiles\\default',
  vhdPath: 'C:\\Users\\dev\\.devcluster\\profiles\\default\\disks\\disk.vhdx',
  baseVhdPath: 'C:\\Users\\dev\\.devcluster\\cache\\images\\abc\\disk.vhdx',
  seedIso: 'C:\\Users\\dev\\.devcluster\\profiles\\default\\seed.iso',
  dataIsos: ['C:\\Users\\dev\\.devcluster\\cache\\kubernetes\\v1.34.1\\bundle.iso'],
  pipe: '\\\\.\\pipe\\devcluster-default',
  switchName: 'devcluster',
  adapterName: 'Ethernet',
  adapterDescription: 'Intel(R) Ethernet Connection (7) I219-LM',
  natName: 'devcluster-nat',
  vmId: '1d2c3b4a-5e6f-4708-9a1b-2c3d4e5f6a7b',
  switchId: '3f5d2a1e-9c7b-4b2e-8a41-7d0c5e9f1a22',
  subnet: '172.31.240.0/24',
  gateway: '172.31.240.1',
  mac: '00155DC0FF01',
  publicGuid: '{4A0F3B2C-1D2E-4F50-8A9B-0C1D2E3F4A5B}',
  privateGuid: '{9B8A7C6D-5E4F-4A3B-2C1D-0E9F8A7B6C5D}',
};

export function everyHypervScript(values: HypervScriptValues): { name: string; script: string; userValues: string[] }[] {
  const v = values;
  const vm = { name: v.vmName, dir: v.vmDir, vhdPath: v.vhdPath, baseVhdPath: v.baseVhdPath, diskBytes: 20 * 1024 ** 3, memoryMiB: 4096, cpus: 2, mac: v.mac, switchName: v.switchName, switchId: v.switchId, isos: [v.seedIso, ...v.dataIsos], pipe: v.pipe };
  const prefixLength = Number(v.subnet.split('/')[1] ?? '24');
  return [
    { name: 'query-rights', script: rightsScript(), userValues: [] },
    { name: 'hyperv-presence', script: hypervPresenceScript(), userValues: [] },
    { name: 'host-network', script: hostNetworkScript(), userValues: [] },
    ...Object.entries(HOST_NETWORK_QUERIES).map(([name, query]) => ({ name: `query-${name}`, script: arrayScript(query, { op: `query-${name}` }), userValues: [] })),
    { name: 'create-disk', script: createDiskScript(vm), userValues: [v.vhdPath, v.baseVhdPath] },
    { name: 'create-vm', script: createVmScript({ ...vm, secureBoot: false }), userValues: [v.vmName, v.vmDir, v.vhdPath, v.switchName, v.seedIso, ...v.dataIsos, v.pipe] },
    { name: 'create-vm (secure boot, Microsoft UEFI CA)', script: createVmScript({ ...vm, secureBoot: true }), userValues: [v.vmName, v.vmDir, v.vhdPath, v.switchName, v.seedIso, ...v.dataIsos, v.pipe] },
    { name: 'find-own-vm', script: findOwnVmScript(v.vmName, v.vmDir), userValues: [v.vmName, v.vmDir] },
    { name: 'vm-state', script: vmStateScript(v.vmId), userValues: [] },
    { name: 'start-vm', script: startVmScript(v.vmId), userValues: [] },
    { name: 'resume-vm', script: resumeVmScript(v.vmId), userValues: [] },
    { name: 'shutdown-vm', script: shutdownVmScript(v.vmId), userValues: [] },
    { name: 'turn-off-vm', script: turnOffVmScript(v.vmId), userValues: [] },
    { name: 'remove-vm', script: removeVmScript(v.vmId), userValues: [] },
    { name: 'vm-address', script: vmAddressScript(v.vmId), userValues: [] },
    { name: 'find-switch (by name)', script: findSwitchScript({ name: v.switchName }), userValues: [v.switchName] },
    { name: 'find-switch (Default Switch by Id)', script: findSwitchScript({ id: DEFAULT_SWITCH_ID }), userValues: [] },
    { name: 'new-internal-switch', script: newInternalSwitchScript(v.switchName), userValues: [v.switchName] },
    { name: 'find-adapter', script: findAdapterScript(v.adapterName), userValues: [v.adapterName] },
    { name: 'new-external-switch', script: newExternalSwitchScript(v.switchName, v.adapterDescription), userValues: [v.switchName, v.adapterDescription] },
    { name: 'host-adapter', script: hostAdapterScript(v.switchId), userValues: [] },
    { name: 'set-host-address', script: setHostAddressScript(v.switchId, v.gateway, prefixLength), userValues: [] },
    { name: 'remove-host-address', script: removeHostAddressScript(v.switchId, v.gateway), userValues: [] },
    { name: 'new-netnat', script: newNetNatScript(v.natName, v.subnet), userValues: [v.natName] },
    { name: 'remove-netnat', script: removeNetNatScript(v.natName, v.subnet), userValues: [v.natName] },
    { name: 'remove-switch', script: removeSwitchScript(v.switchId), userValues: [] },
    { name: 'switch-vms', script: switchVmsScript([v.switchId, DEFAULT_SWITCH_ID]), userValues: [] },
    { name: 'ics-status', script: icsStatusScript(v.switchId), userValues: [] },
    { name: 'ics-enable', script: icsEnableScript(v.publicGuid, v.privateGuid), userValues: [] },
    { name: 'ics-disable', script: icsDisableScript(v.publicGuid, v.privateGuid), userValues: [] },
  ];
}
