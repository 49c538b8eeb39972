/**
 * The PowerShell pipelines the doctor runs on Windows (through
 * src/host/powershell.ts), named so the contract test parses each one.
 */
export const WINDOWS_QUERIES = {
  operatingSystem: "Get-CimInstance -ClassName Win32_OperatingSystem | Select-Object -Property 'Caption', 'Version', 'BuildNumber', 'OSArchitecture'",
  hypervisorPresent: '(Get-CimInstance -ClassName Win32_ComputerSystem).HypervisorPresent',
  processorVirtualization:
    "@(Get-CimInstance -ClassName Win32_Processor | Select-Object -Property 'Name', 'VirtualizationFirmwareEnabled', 'SecondLevelAddressTranslationExtensions')",
  routes: "@(NetTCPIP\\Get-NetRoute -AddressFamily IPv4 | Select-Object -Property 'DestinationPrefix', 'NextHop', 'InterfaceAlias')",
} as const;
