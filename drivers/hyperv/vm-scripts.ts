import { FOREACH, SELECT, VM_ROW, WHERE, findVmById, guid, q, script } from './ps.ts';

/**
 * The scripts that create, run and remove one VM. Each prints what the
 * driver needs to go on as one row (or nothing), and each is idempotent: run
 * twice, it finds what the first run made.
 */

export interface CreateVmValues {
  name: string;
  /** The VM's configuration folder: the profile's own directory. */
  dir: string;
  /** The differencing VHDX the VM boots (a child of the cached base). */
  vhdPath: string;
  baseVhdPath: string;
  diskBytes: number;
  memoryMiB: number;
  cpus: number;
  /** Twelve hex digits, no separators (Hyper-V's own spelling). */
  mac: string;
  switchName: string;
  /** Switches are looked up by Id: names are localized (Default Switch) and not unique. */
  switchId: string;
  isos: readonly string[];
  pipe: string;
  /** The Microsoft UEFI CA template, for an image whose boot loader is signed by it; otherwise secure boot off. */
  secureBoot: boolean;
}

function int(n: number, what: string): string {
  if (!Number.isSafeInteger(n) || n < 0) throw new Error(`${what} is not a non-negative integer: ${n}`);
  return String(n);
}

/** The disk: a differencing VHDX on the cached base, grown to the requested size. */
export function createDiskScript(v: Pick<CreateVmValues, 'vhdPath' | 'baseVhdPath' | 'diskBytes'>): string {
  return script('create-disk', [
    `if (-not (Microsoft.PowerShell.Management\\Test-Path -LiteralPath ${q(v.vhdPath)})) {`,
    `  $null = Hyper-V\\New-VHD -Path ${q(v.vhdPath)} -ParentPath ${q(v.baseVhdPath)} -Differencing`,
    '}',
    `$vhd = Hyper-V\\Get-VHD -Path ${q(v.vhdPath)}`,
    `if ($vhd.Size -lt ${int(v.diskBytes, 'disk size')}) { $null = Hyper-V\\Resize-VHD -Path ${q(v.vhdPath)} -SizeBytes ${int(v.diskBytes, 'disk size')} }`,
    `[pscustomobject]@{ Path = ${q(v.vhdPath)}; Size = [long](Hyper-V\\Get-VHD -Path ${q(v.vhdPath)}).Size; ParentPath = [string]$vhd.ParentPath }`,
  ]);
}

/** A VM of this name whose configuration lives in the profile's folder: ours, even before its Id was saved. */
function ownVmTest(name: string, dir: string): string {
  return `$_.Name -eq ${q(name)} -and ([string]$_.Path).StartsWith(${q(dir)}, [System.StringComparison]::OrdinalIgnoreCase)`;
}

/**
 * Our VMs by name and folder, for a delete after a create that stopped
 * between New-VM and saving the Id: without it that VM stays registered
 * while delete removes its files.
 */
export function findOwnVmScript(name: string, dir: string): string {
  return script('find-own-vm', [`Hyper-V\\Get-VM | ${WHERE} { ${ownVmTest(name, dir)} } | ${FOREACH} { $vm = $_; ${VM_ROW} }`]);
}

/**
 * The VM, Generation 2, configured completely. A VM of this name whose
 * configuration lives in our directory is ours from an interrupted run and
 * is taken up again; any other VM of the same name is left alone (names are
 * not unique in Hyper-V).
 */
export function createVmScript(v: CreateVmValues): string {
  const lines = [
    `$vm = @(Hyper-V\\Get-VM | ${WHERE} { ${ownVmTest(v.name, v.dir)} }) | ${SELECT} -First 1`,
    `$switch = @(Hyper-V\\Get-VMSwitch | ${WHERE} { $_.Id -eq ${guid(v.switchId)} }) | ${SELECT} -First 1`,
    `if ($null -eq $switch) { throw [System.Management.Automation.ItemNotFoundException]::new('the virtual switch ' + ${q(v.switchName)} + ' is gone') }`,
    'if ($null -eq $vm) {',
    `  $vm = Hyper-V\\New-VM -Name ${q(v.name)} -Path ${q(v.dir)} -Generation 2 -VHDPath ${q(v.vhdPath)} -BootDevice VHD -MemoryStartupBytes ${int(v.memoryMiB * 1048576, 'memory')}`,
    '}',
    `$nic = @(Hyper-V\\Get-VMNetworkAdapter -VM $vm) | ${SELECT} -First 1`,
    '# By the switch object, not its name: two switches may share a name.',
    'if ($nic.SwitchId -ne $switch.Id) { Hyper-V\\Connect-VMNetworkAdapter -VMNetworkAdapter $nic -VMSwitch $switch }',
    `Hyper-V\\Set-VM -VM $vm -ProcessorCount ${int(v.cpus, 'cpus')} -StaticMemory -MemoryStartupBytes ${int(v.memoryMiB * 1048576, 'memory')} -AutomaticCheckpointsEnabled $false -CheckpointType Disabled -AutomaticStartAction Nothing -AutomaticStopAction ShutDown -Notes 'Created by devcluster'`,
    v.secureBoot
      ? "Hyper-V\\Set-VMFirmware -VM $vm -EnableSecureBoot On -SecureBootTemplate 'MicrosoftUEFICertificateAuthority'"
      : 'Hyper-V\\Set-VMFirmware -VM $vm -EnableSecureBoot Off',
    `Hyper-V\\Set-VMNetworkAdapter -VMNetworkAdapter $nic -StaticMacAddress ${q(v.mac)}`,
  ];
  for (const iso of v.isos) {
    lines.push(`if (-not (@(Hyper-V\\Get-VMDvdDrive -VM $vm) | ${WHERE} { $_.Path -eq ${q(iso)} })) { $null = Hyper-V\\Add-VMDvdDrive -VM $vm -Path ${q(iso)} }`);
  }
  lines.push(`Hyper-V\\Set-VMComPort -VM $vm -Number 1 -Path ${q(v.pipe)}`);
  lines.push(VM_ROW);
  return script('create-vm', lines);
}

/** The VM's facts, or nothing when no VM has this Id. */
export function vmStateScript(id: string): string {
  return script('vm-state', [findVmById(id), `if ($null -ne $vm) { ${VM_ROW} }`]);
}

export function startVmScript(id: string): string {
  return script('start-vm', [findVmById(id), "if ($null -eq $vm) { throw [System.Management.Automation.ItemNotFoundException]::new('the VM is gone') }", 'if ([int]$vm.State -ne 2) { Hyper-V\\Start-VM -VM $vm }', VM_ROW]);
}

/** Continues a Paused VM (Resume-VM) or restores a Saved one (Start-VM). */
export function resumeVmScript(id: string): string {
  return script('resume-vm', [
    findVmById(id),
    "if ($null -eq $vm) { throw [System.Management.Automation.ItemNotFoundException]::new('the VM is gone') }",
    'if ([int]$vm.State -eq 9) { Hyper-V\\Resume-VM -VM $vm } elseif ([int]$vm.State -ne 2) { Hyper-V\\Start-VM -VM $vm }',
    VM_ROW,
  ]);
}

/**
 * Asks the guest to shut down through the Shutdown integration service
 * (hv_utils in the guest); Stop-VM returns once the VM is Off. The driver
 * runs it with the stop timeout, so a guest that ignores the request costs
 * that long and is then turned off. (-AsJob would return at once, but the
 * job dies with this PowerShell process, possibly before it asked.)
 */
export function shutdownVmScript(id: string): string {
  return script('shutdown-vm', [findVmById(id), 'if ($null -ne $vm -and [int]$vm.State -ne 3) { Hyper-V\\Stop-VM -VM $vm -Force }', `if ($null -ne $vm) { ${VM_ROW} }`]);
}

/** Pulls the plug. */
export function turnOffVmScript(id: string): string {
  return script('turn-off-vm', [findVmById(id), 'if ($null -ne $vm -and [int]$vm.State -ne 3) { Hyper-V\\Stop-VM -VM $vm -TurnOff -Force }', `if ($null -ne $vm) { ${VM_ROW} }`]);
}

/**
 * Unregisters the VM: off, no checkpoints (automatic ones leave .avhdx
 * files that block removing the folder), then Remove-VM. Its files stay:
 * the driver removes them.
 */
export function removeVmScript(id: string): string {
  return script('remove-vm', [
    findVmById(id),
    'if ($null -ne $vm) {',
    '  if ([int]$vm.State -ne 3) { Hyper-V\\Stop-VM -VM $vm -TurnOff -Force }',
    '  Hyper-V\\Set-VM -VM $vm -AutomaticCheckpointsEnabled $false',
    '  Hyper-V\\Get-VMSnapshot -VM $vm | Hyper-V\\Remove-VMSnapshot',
    '  Hyper-V\\Remove-VM -VM $vm -Force',
    '}',
    `@(Hyper-V\\Get-VM | ${WHERE} { $_.Id -eq $vm.Id }).Count`,
  ]);
}

/**
 * Where the guest is: the addresses its KVP daemon reports on the VM's
 * adapter and, for a guest without the daemon, the host's neighbour cache
 * entries for the adapter's MAC.
 */
export function vmAddressScript(id: string): string {
  return script('vm-address', [
    findVmById(id),
    'if ($null -ne $vm) {',
    `  $nic = @(Hyper-V\\Get-VMNetworkAdapter -VM $vm) | ${SELECT} -First 1`,
    "  $dashed = ([string]$nic.MacAddress -replace '(..)(?!$)', '$1-')",
    `  $neighbors = @(NetTCPIP\\Get-NetNeighbor -AddressFamily IPv4 -ErrorAction SilentlyContinue | ${WHERE} { $_.LinkLayerAddress -eq $dashed -and [int]$_.State -ne 0 } | ${FOREACH} { [string]$_.IPAddress })`,
    '  [pscustomobject]@{ Name = [string]$nic.Name; MacAddress = [string]$nic.MacAddress; SwitchName = [string]$nic.SwitchName; IPAddresses = @($nic.IPAddresses); Neighbors = $neighbors; State = [int]$vm.State }',
    '}',
  ]);
}
