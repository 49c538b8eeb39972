import { HOST_ADDRESSES_QUERY, NET_ADAPTERS_QUERY, NET_NAT_QUERY, ROUTES_QUERY } from './host-network.ts';
import { FOREACH, SELECT, SORT, WHERE, guid, q, script } from './ps.ts';

/**
 * The scripts that build and tear down the VM's network on the host. Each
 * changes one thing, so the driver records that thing in the profile's state
 * before the script that creates it runs, and removes only what it recorded.
 * Switches are found by Id, host adapters by DeviceId / InterfaceGuid, never
 * by their (localized, renameable) names.
 */

/** Switch facts as parseVmSwitches() reads them. */
const SWITCH_ROW = "[pscustomobject]@{ Id = [string]$_.Id; Name = $_.Name; SwitchType = [int]$_.SwitchType; NetAdapterInterfaceDescription = [string]$_.NetAdapterInterfaceDescription; Notes = [string]$_.Notes }";

/** Our notes on what we create, so a person looking at Hyper-V Manager knows where it came from. */
export const DEVCLUSTER_NOTE = 'Created by devcluster';

/** Everything ensureNetwork plans around, in one PowerShell start: NetNats, routes, IPv4 addresses, adapters. */
export function hostNetworkScript(): string {
  return script('host-network', [`[pscustomobject]@{ NetNats = ${NET_NAT_QUERY}; Routes = ${ROUTES_QUERY}; Addresses = ${HOST_ADDRESSES_QUERY}; Adapters = ${NET_ADAPTERS_QUERY} }`]);
}

/** The switches with this Id (the Default Switch's is fixed) or this exact name (no wildcards: Get-VMSwitch -Name would expand them). */
export function findSwitchScript(by: { id: string } | { name: string }): string {
  const test = 'id' in by ? `$_.Id -eq ${guid(by.id)}` : `$_.Name -eq ${q(by.name)}`;
  return script('find-switch', [`Hyper-V\\Get-VMSwitch | ${WHERE} { ${test} } | ${FOREACH} { ${SWITCH_ROW} }`]);
}

export function newInternalSwitchScript(name: string): string {
  return script('new-internal-switch', [`Hyper-V\\New-VMSwitch -Name ${q(name)} -SwitchType Internal -Notes ${q(DEVCLUSTER_NOTE)} | ${FOREACH} { ${SWITCH_ROW} }`]);
}

/**
 * A physical adapter by its name or description, and the External switch
 * already bound to it (Windows allows one per adapter).
 */
export function findAdapterScript(adapter: string): string {
  return script('find-adapter', [
    `$adapter = @(NetAdapter\\Get-NetAdapter -Physical | ${WHERE} { $_.Name -eq ${q(adapter)} -or $_.InterfaceDescription -eq ${q(adapter)} }) | ${SELECT} -First 1`,
    'if ($null -ne $adapter) {',
    `  $bound = @(Hyper-V\\Get-VMSwitch | ${WHERE} { [int]$_.SwitchType -eq 2 -and @($_.NetAdapterInterfaceGuid) -contains $adapter.InterfaceGuid } | ${FOREACH} { ${SWITCH_ROW} })`,
    '  [pscustomobject]@{ Name = $adapter.Name; InterfaceDescription = $adapter.InterfaceDescription; InterfaceGuid = [string]$adapter.InterfaceGuid; Status = [string]$adapter.Status; Switches = $bound }',
    '}',
  ]);
}

/** An External switch on the adapter (by its description, which Get-NetAdapter gave), still usable by the host. */
export function newExternalSwitchScript(name: string, interfaceDescription: string): string {
  return script('new-external-switch', [
    `Hyper-V\\New-VMSwitch -Name ${q(name)} -NetAdapterInterfaceDescription ${q(interfaceDescription)} -AllowManagementOS $true -Notes ${q(DEVCLUSTER_NOTE)} | ${FOREACH} { ${SWITCH_ROW} }`,
  ]);
}

/** `$adapter` = the host's vEthernet adapter of the switch with this Id, by the management vNIC's DeviceId. */
function hostAdapterLines(switchId: string): string[] {
  return [
    `$vnic = @(Hyper-V\\Get-VMNetworkAdapter -ManagementOS | ${WHERE} { $_.SwitchId -eq ${guid(switchId)} }) | ${SELECT} -First 1`,
    '$adapter = $null',
    `if ($null -ne $vnic) { $adapter = @(NetAdapter\\Get-NetAdapter | ${WHERE} { $_.DeviceID -eq $vnic.DeviceId }) | ${SELECT} -First 1 }`,
  ];
}

const ADAPTER_ROW =
  `[pscustomobject]@{ InterfaceIndex = [int]$adapter.ifIndex; Name = $adapter.Name; InterfaceGuid = [string]$adapter.InterfaceGuid; DeviceId = [string]$adapter.DeviceID; Addresses = @(NetTCPIP\\Get-NetIPAddress -InterfaceIndex $adapter.ifIndex -AddressFamily IPv4 -ErrorAction SilentlyContinue | ${FOREACH} { [string]$_.IPAddress + '/' + [string]$_.PrefixLength }) }`;

/** The switch's host adapter and its IPv4 addresses; nothing when the switch has none (External without management OS). */
export function hostAdapterScript(switchId: string): string {
  return script('host-adapter', [...hostAdapterLines(switchId), `if ($null -ne $adapter) { ${ADAPTER_ROW} }`]);
}

/**
 * Gives our switch's host adapter the gateway address. The addresses Windows
 * put there on its own (169.254.x.x while nothing else is set) go first: the
 * adapter belongs to a switch devcluster made.
 */
export function setHostAddressScript(switchId: string, gateway: string, prefixLength: number): string {
  return script('set-host-address', [
    ...hostAdapterLines(switchId),
    "if ($null -eq $adapter) { throw [System.Management.Automation.ItemNotFoundException]::new('the switch has no host adapter') }",
    `$present = @(NetTCPIP\\Get-NetIPAddress -InterfaceIndex $adapter.ifIndex -AddressFamily IPv4 -ErrorAction SilentlyContinue)`,
    `$present | ${WHERE} { $_.IPAddress -like '169.254.*' } | NetTCPIP\\Remove-NetIPAddress -Confirm:$false`,
    `if (-not ($present | ${WHERE} { $_.IPAddress -eq ${q(gateway)} })) {`,
    `  $null = NetTCPIP\\New-NetIPAddress -InterfaceIndex $adapter.ifIndex -IPAddress ${q(gateway)} -PrefixLength ${String(Math.trunc(prefixLength))} -AddressFamily IPv4`,
    '}',
    ADAPTER_ROW,
  ]);
}

export function removeHostAddressScript(switchId: string, gateway: string): string {
  return script('remove-host-address', [
    ...hostAdapterLines(switchId),
    `if ($null -ne $adapter) { @(NetTCPIP\\Get-NetIPAddress -InterfaceIndex $adapter.ifIndex -AddressFamily IPv4 -ErrorAction SilentlyContinue) | ${WHERE} { $_.IPAddress -eq ${q(gateway)} } | NetTCPIP\\Remove-NetIPAddress -Confirm:$false }`,
  ]);
}

export function newNetNatScript(name: string, prefix: string): string {
  return script('new-netnat', [
    `if (-not (@(NetNat\\Get-NetNat) | ${WHERE} { $_.Name -eq ${q(name)} })) { $null = NetNat\\New-NetNat -Name ${q(name)} -InternalIPInterfaceAddressPrefix ${q(prefix)} }`,
    NET_NAT_QUERY,
  ]);
}

/** Removes the NetNat of this name only while it still covers the prefix we created it for. */
export function removeNetNatScript(name: string, prefix: string): string {
  return script('remove-netnat', [`@(NetNat\\Get-NetNat) | ${WHERE} { $_.Name -eq ${q(name)} -and $_.InternalIPInterfaceAddressPrefix -eq ${q(prefix)} } | NetNat\\Remove-NetNat -Confirm:$false`]);
}

/** The VMs (by name) whose adapters are connected to any of these switches: a switch in use is not ours alone to remove. */
export function switchVmsScript(switchIds: readonly string[]): string {
  const test = switchIds.map((id) => `$_.SwitchId -eq ${guid(id)}`).join(' -or ');
  return script('switch-vms', [`Hyper-V\\Get-VMNetworkAdapter -All | ${WHERE} { -not $_.IsManagementOs -and (${test}) } | ${FOREACH} { [string]$_.VMName }`]);
}

export function removeSwitchScript(switchId: string): string {
  return script('remove-switch', [`Hyper-V\\Get-VMSwitch | ${WHERE} { $_.Id -eq ${guid(switchId)} } | Hyper-V\\Remove-VMSwitch -Force`]);
}

const ICS_LINES = [
  '$share = Microsoft.PowerShell.Utility\\New-Object -ComObject HNetCfg.HNetShare',
  '$connections = @($share.EnumEveryConnection)',
];

/**
 * Internet Connection Sharing as it stands: every connection with its
 * sharing state, the adapter carrying the default route (the public side)
 * and our switch's adapter (the private side), both by InterfaceGuid.
 */
export function icsStatusScript(switchId: string): string {
  return script('ics-status', [
    ...ICS_LINES,
    ...hostAdapterLines(switchId),
    `$route = @(NetTCPIP\\Get-NetRoute -DestinationPrefix '0.0.0.0/0' -AddressFamily IPv4 -ErrorAction SilentlyContinue | ${SORT} -Property RouteMetric) | ${SELECT} -First 1`,
    '$public = $null',
    'if ($null -ne $route) { $public = NetAdapter\\Get-NetAdapter -InterfaceIndex $route.InterfaceIndex }',
    `$rows = @($connections | ${FOREACH} { $props = $share.NetConnectionProps.Invoke($_); $config = $share.INetSharingConfigurationForINetConnection.Invoke($_); [pscustomobject]@{ Guid = [string]$props.Guid; Name = [string]$props.Name; Status = [int]$props.Status; SharingEnabled = [bool]$config.SharingEnabled; SharingConnectionType = [int]$config.SharingConnectionType } })`,
    "[pscustomobject]@{ Public = [string]$public.InterfaceGuid; PublicName = [string]$public.Name; Private = [string]$adapter.InterfaceGuid; Connections = $rows }",
  ]);
}

/** Shares `publicGuid` (0 = ICSSHARINGTYPE_PUBLIC) with `privateGuid` (1 = PRIVATE). */
export function icsEnableScript(publicGuid: string, privateGuid: string): string {
  return script('ics-enable', [
    ...ICS_LINES,
    '# The public side first (the order of the documented examples), whatever order the connections are listed in.',
    `foreach ($c in $connections) { $props = $share.NetConnectionProps.Invoke($c); $config = $share.INetSharingConfigurationForINetConnection.Invoke($c); if ($props.Guid -eq ${q(publicGuid)}) { $config.EnableSharing(0) } }`,
    `foreach ($c in $connections) { $props = $share.NetConnectionProps.Invoke($c); $config = $share.INetSharingConfigurationForINetConnection.Invoke($c); if ($props.Guid -eq ${q(privateGuid)}) { $config.EnableSharing(1) } }`,
  ]);
}

/**
 * Ends the sharing devcluster set up, only while our switch's adapter is
 * still its private side: a pair the user shared since (the same public
 * adapter with another private one) is theirs and stays.
 */
export function icsDisableScript(publicGuid: string, privateGuid: string): string {
  return script('ics-disable', [
    ...ICS_LINES,
    '$ours = $false',
    `foreach ($c in $connections) { $props = $share.NetConnectionProps.Invoke($c); $config = $share.INetSharingConfigurationForINetConnection.Invoke($c); if ($props.Guid -eq ${q(privateGuid)} -and $config.SharingEnabled -and [int]$config.SharingConnectionType -eq 1) { $ours = $true } }`,
    `if ($ours) { foreach ($c in $connections) { $props = $share.NetConnectionProps.Invoke($c); $config = $share.INetSharingConfigurationForINetConnection.Invoke($c); if (($props.Guid -eq ${q(publicGuid)} -or $props.Guid -eq ${q(privateGuid)}) -and $config.SharingEnabled) { $config.DisableSharing() } } }`,
  ]);
}
