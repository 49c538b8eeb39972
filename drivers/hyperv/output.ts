import { isIpv4 } from '../../src/host/ipv4.ts';

/**
 * Reading what Windows PowerShell 5.1 prints with ConvertTo-Json: nothing at
 * all, null, one bare object, or an array (a pipeline with one result is not
 * an array unless the script wraps it in @(...), and older scripts do not);
 * enums as numbers (5.1 has no -EnumsAsStrings); CRLF line ends and a BOM;
 * property names spelled as the cmdlets spell them. Every parser here takes
 * the already-parsed JSON value and never throws on a missing field: a field
 * that is absent or of the wrong type reads as undefined, and a row without
 * the fields that identify it is dropped.
 */

export type JsonRecord = Record<string, unknown>;

/** The JSON text PowerShell printed, as a value: '' and whitespace are null; a BOM and CRs are ignored. */
export function parsePowerShellJson(text: string): unknown {
  const clean = text.replace(/^\uFEFF/, '').replace(/\r/g, '').trim();
  if (clean === '') return null;
  return JSON.parse(clean) as unknown;
}

/** Whatever ConvertTo-Json produced, as a list: null/undefined/'' is empty, a single object is one row. */
export function asArray<T>(json: unknown): T[] {
  if (json === null || json === undefined || json === '') return [];
  if (Array.isArray(json)) return (json as unknown[]).filter((v) => v !== null && v !== undefined) as T[];
  return [json as T];
}

/** The rows that are objects (ConvertTo-Json of a scalar pipeline gives strings or numbers instead). */
export function records(json: unknown): JsonRecord[] {
  return asArray<unknown>(json).filter((v): v is JsonRecord => typeof v === 'object' && v !== null && !Array.isArray(v));
}

export function stringField(row: JsonRecord, name: string): string | undefined {
  const v = row[name];
  if (typeof v === 'string') return v;
  if (typeof v === 'number') return String(v);
  return undefined;
}

export function numberField(row: JsonRecord, name: string): number | undefined {
  const v = row[name];
  if (typeof v === 'number' && Number.isFinite(v)) return v;
  if (typeof v === 'string' && /^-?\d+$/.test(v.trim())) return Number(v);
  return undefined;
}

/** true/false, also the strings "True"/"False" that Write-Output of a boolean gives. */
export function booleanField(row: JsonRecord, name: string): boolean | undefined {
  return asBoolean(row[name]);
}

export function asBoolean(v: unknown): boolean | undefined {
  if (typeof v === 'boolean') return v;
  if (typeof v === 'string') {
    if (/^true$/i.test(v.trim())) return true;
    if (/^false$/i.test(v.trim())) return false;
  }
  return undefined;
}

/** A list property: null is empty, one value (5.1 unrolls one-element lists in some shapes) is a list of one. */
export function stringList(row: JsonRecord, name: string): string[] {
  return asArray<unknown>(row[name]).filter((v): v is string => typeof v === 'string');
}

/** An enum that may arrive as its number (5.1) or its name (PS 7 -EnumsAsStrings, or a script's .ToString()). */
function enumField<N extends string>(row: JsonRecord, name: string, byNumber: Readonly<Record<number, N>>): N | undefined {
  const v = row[name];
  if (typeof v === 'number') return byNumber[v];
  if (typeof v === 'string') {
    if (/^\d+$/.test(v)) return byNumber[Number(v)];
    const wanted = v.trim().toLowerCase();
    return Object.values(byNumber).find((n) => n.toLowerCase() === wanted);
  }
  return undefined;
}

// ---------------------------------------------------------------------------
// Virtual machines (Hyper-V\Get-VM)

/**
 * Microsoft.HyperV.PowerShell.VMState: the values Get-VM's State serializes
 * to. The 327xx values are the transient and "Critical" states of
 * Msvm_ComputerSystem that the cmdlet passes through.
 */
export const VM_STATES: Readonly<Record<number, string>> = {
  1: 'Other',
  2: 'Running',
  3: 'Off',
  4: 'Stopping',
  6: 'Saved',
  9: 'Paused',
  10: 'Starting',
  11: 'Reset',
  32773: 'Saving',
  32776: 'Pausing',
  32777: 'Resuming',
  32779: 'FastSaved',
  32780: 'FastSaving',
  32781: 'ForceShutdown',
  32782: 'ForceReboot',
  32783: 'RunningCritical',
  32784: 'OffCritical',
  32785: 'StoppingCritical',
  32786: 'SavedCritical',
  32787: 'PausedCritical',
  32788: 'StartingCritical',
  32789: 'ResetCritical',
  32790: 'SavingCritical',
  32791: 'PausingCritical',
  32792: 'ResumingCritical',
  32793: 'FastSavedCritical',
  32794: 'FastSavingCritical',
};

/** The driver contract's states (drivers/driver.ts), without 'absent': a VM that Get-VM returned exists. */
export type HypervVmState = 'running' | 'stopped' | 'paused' | 'saved' | 'starting' | 'stopping' | 'broken';

/** What a Hyper-V state means to the driver. "Critical" states are a VM whose storage Hyper-V cannot reach. */
export function vmStateOf(name: string | undefined): HypervVmState {
  switch (name) {
    case 'Running':
      return 'running';
    case 'Off':
      return 'stopped';
    case 'Paused':
      return 'paused';
    case 'Saved':
    case 'FastSaved':
      return 'saved';
    case 'Starting':
    case 'Resuming':
    case 'Reset':
    case 'ForceReboot':
      return 'starting';
    case 'Stopping':
    case 'Saving':
    case 'Pausing':
    case 'FastSaving':
    case 'ForceShutdown':
      return 'stopping';
    default:
      return 'broken';
  }
}

export interface VmInfo {
  name: string;
  /** The VM's GUID, lower case: names are not unique, the Id is. */
  id: string;
  /** Hyper-V's state name (Running, Off, ...), or "Unknown(n)" for a number this table does not know. */
  stateName: string;
  state: HypervVmState;
  status?: string;
  generation?: number;
  processorCount?: number;
  memoryStartupBytes?: number;
  path?: string;
}

/** A GUID as ConvertTo-Json prints a System.Guid: a string, or (5.1, some shapes) {"Guid": "..."}. */
function guidField(row: JsonRecord, name: string): string | undefined {
  const v = row[name];
  const text = typeof v === 'string' ? v : typeof v === 'object' && v !== null ? (v as JsonRecord)['Guid'] : undefined;
  return typeof text === 'string' && /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i.test(text.trim()) ? text.trim().toLowerCase() : undefined;
}

function stateNameOf(row: JsonRecord): string | undefined {
  const named = enumField(row, 'State', VM_STATES);
  if (named !== undefined) return named;
  const raw = row['State'];
  if (typeof raw === 'number') return `Unknown(${raw})`;
  return undefined;
}

/** `Hyper-V\Get-VM | Select-Object Name, Id, State, ...` */
export function parseVms(json: unknown): VmInfo[] {
  const out: VmInfo[] = [];
  for (const row of records(json)) {
    const name = stringField(row, 'Name') ?? stringField(row, 'VMName');
    const id = guidField(row, 'Id') ?? guidField(row, 'VMId');
    const stateName = stateNameOf(row);
    if (name === undefined || id === undefined || stateName === undefined) continue;
    const status = stringField(row, 'Status');
    const generation = numberField(row, 'Generation');
    const processorCount = numberField(row, 'ProcessorCount');
    const memoryStartupBytes = numberField(row, 'MemoryStartup');
    const path = stringField(row, 'Path');
    out.push({
      name,
      id,
      stateName,
      state: vmStateOf(stateName),
      ...(status === undefined ? {} : { status }),
      ...(generation === undefined ? {} : { generation }),
      ...(processorCount === undefined ? {} : { processorCount }),
      ...(memoryStartupBytes === undefined ? {} : { memoryStartupBytes }),
      ...(path === undefined ? {} : { path }),
    });
  }
  return out;
}

// ---------------------------------------------------------------------------
// VM network adapters (Hyper-V\Get-VMNetworkAdapter)

export interface VmNetworkAdapterInfo {
  vmName?: string;
  name: string;
  switchName?: string;
  /** Twelve upper-case hex digits, as Hyper-V prints it (00155DC0FF01); "000000000000" before a dynamic MAC is assigned. */
  macAddress?: string;
  /** As the guest's KVP daemon reported them, in Hyper-V's order (often IPv6 first). */
  ipAddresses: string[];
  /** The host side's adapter, for -ManagementOS adapters: Get-NetAdapter's DeviceID. */
  deviceId?: string;
}

export function normalizeMac(text: string | undefined): string | undefined {
  if (text === undefined) return undefined;
  const hex = text.replace(/[-:.]/g, '').toUpperCase();
  return /^[0-9A-F]{12}$/.test(hex) ? hex : undefined;
}

/** `Hyper-V\Get-VMNetworkAdapter -VMName ... | Select-Object VMName, Name, SwitchName, MacAddress, IPAddresses` */
export function parseVmNetworkAdapters(json: unknown): VmNetworkAdapterInfo[] {
  const out: VmNetworkAdapterInfo[] = [];
  for (const row of records(json)) {
    const name = stringField(row, 'Name');
    if (name === undefined) continue;
    const vmName = stringField(row, 'VMName');
    const switchName = stringField(row, 'SwitchName');
    const macAddress = normalizeMac(stringField(row, 'MacAddress'));
    const deviceId = stringField(row, 'DeviceId');
    out.push({
      name,
      ipAddresses: stringList(row, 'IPAddresses').map((a) => a.trim()),
      ...(vmName === undefined ? {} : { vmName }),
      ...(switchName === undefined ? {} : { switchName }),
      ...(macAddress === undefined ? {} : { macAddress }),
      ...(deviceId === undefined ? {} : { deviceId }),
    });
  }
  return out;
}

/**
 * The guest's IPv4 address from a KVP address list: the first IPv4 that is
 * usable, never an IPv6 (a link-local fe80:: is what a guest without DHCP
 * reports first), never 0.0.0.0 (reported before the interface is up) or a
 * link-local 169.254.x.x (the guest gave up on DHCP).
 */
export function firstUsableIpv4(addresses: readonly string[]): string | undefined {
  return addresses.map((a) => a.trim()).find((a) => isIpv4(a) && a !== '0.0.0.0' && !a.startsWith('169.254.') && !a.startsWith('127.'));
}

// ---------------------------------------------------------------------------
// Virtual switches (Hyper-V\Get-VMSwitch)

/** The Default Switch has this Id on every host; its name is localized ("Standardväxel"). */
export const DEFAULT_SWITCH_ID = 'c08cb7b8-9b3c-408e-8e30-5e16a3aeb444';

export type SwitchType = 'private' | 'internal' | 'external';
/** Microsoft.HyperV.PowerShell.VMSwitchType. */
export const SWITCH_TYPES: Readonly<Record<number, SwitchType>> = { 0: 'private', 1: 'internal', 2: 'external' };

export interface VmSwitchInfo {
  id: string;
  name: string;
  switchType: SwitchType;
  /** The physical adapter an External switch is bound to. */
  netAdapterInterfaceDescription?: string;
  notes?: string;
}

/** `Hyper-V\Get-VMSwitch | Select-Object Id, Name, SwitchType, NetAdapterInterfaceDescription, Notes` */
export function parseVmSwitches(json: unknown): VmSwitchInfo[] {
  const out: VmSwitchInfo[] = [];
  for (const row of records(json)) {
    const id = guidField(row, 'Id');
    const name = stringField(row, 'Name');
    const switchType = enumField(row, 'SwitchType', SWITCH_TYPES);
    if (id === undefined || name === undefined || switchType === undefined) continue;
    const description = stringField(row, 'NetAdapterInterfaceDescription');
    const notes = stringField(row, 'Notes');
    out.push({
      id,
      name,
      switchType,
      ...(description === undefined || description === '' ? {} : { netAdapterInterfaceDescription: description }),
      ...(notes === undefined || notes === '' ? {} : { notes }),
    });
  }
  return out;
}

// ---------------------------------------------------------------------------
// Error records

/**
 * A PowerShell error as the driver matches it: FullyQualifiedErrorId (the
 * error's id, then the command that raised it: "InvalidParameter,
 * Microsoft.HyperV.PowerShell.Commands.GetVM") and the exception's .NET type.
 * The message is localized and only shown, never matched.
 */
export interface PowerShellErrorRecord {
  fullyQualifiedErrorId: string;
  exceptionType?: string;
  message?: string;
  /** System.Management.Automation.ErrorCategory's name (ObjectNotFound, PermissionDenied, ...). */
  category?: string;
}

/** System.Management.Automation.ErrorCategory, which 5.1 serializes as a number. */
export const ERROR_CATEGORIES: Readonly<Record<number, string>> = {
  0: 'NotSpecified',
  1: 'OpenError',
  2: 'CloseError',
  3: 'DeviceError',
  4: 'DeadlockDetected',
  5: 'InvalidArgument',
  6: 'InvalidData',
  7: 'InvalidOperation',
  8: 'InvalidResult',
  9: 'InvalidType',
  10: 'MetadataError',
  11: 'NotImplemented',
  12: 'NotInstalled',
  13: 'ObjectNotFound',
  14: 'OperationStopped',
  15: 'OperationTimeout',
  16: 'SyntaxError',
  17: 'ParserError',
  18: 'PermissionDenied',
  19: 'ResourceBusy',
  20: 'ResourceExists',
  21: 'ResourceUnavailable',
  22: 'ReadError',
  23: 'WriteError',
  24: 'FromStdErr',
  25: 'SecurityError',
  26: 'ProtocolError',
  27: 'ConnectionError',
  28: 'AuthenticationError',
  29: 'LimitsExceeded',
  30: 'QuotaExceeded',
  31: 'NotEnabled',
};

/**
 * One error record, in either shape a script can print: the compact one the
 * driver's runner prints ({fullyQualifiedErrorId, exceptionType, message}) or
 * ConvertTo-Json of the ErrorRecord itself (FullyQualifiedErrorId,
 * Exception.Message, CategoryInfo.Category/Reason). Undefined when the value
 * carries no FullyQualifiedErrorId.
 */
export function parseErrorRecord(json: unknown): PowerShellErrorRecord | undefined {
  const row = records(json)[0];
  if (row === undefined) return undefined;
  const id = stringField(row, 'fullyQualifiedErrorId') ?? stringField(row, 'FullyQualifiedErrorId');
  if (id === undefined || id.trim() === '') return undefined;
  const exception = typeof row['Exception'] === 'object' && row['Exception'] !== null ? (row['Exception'] as JsonRecord) : undefined;
  const categoryInfo = typeof row['CategoryInfo'] === 'object' && row['CategoryInfo'] !== null ? (row['CategoryInfo'] as JsonRecord) : undefined;
  const exceptionType = stringField(row, 'exceptionType') ?? stringField(row, 'ExceptionType') ?? (exception === undefined ? undefined : stringField(exception, 'ClassName'));
  const message = stringField(row, 'message') ?? stringField(row, 'Message') ?? (exception === undefined ? undefined : stringField(exception, 'Message'));
  const category = stringField(row, 'category') ?? (categoryInfo === undefined ? undefined : enumField(categoryInfo, 'Category', ERROR_CATEGORIES));
  return {
    fullyQualifiedErrorId: id.trim(),
    ...(exceptionType === undefined ? {} : { exceptionType }),
    ...(message === undefined ? {} : { message: message.replace(/\r/g, '') }),
    ...(category === undefined ? {} : { category }),
  };
}

/** "InvalidParameter,Microsoft.HyperV.PowerShell.Commands.GetVM" -> { errorId: "InvalidParameter", command: "GetVM" }. */
export function splitErrorId(fullyQualifiedErrorId: string): { errorId: string; command?: string } {
  const comma = fullyQualifiedErrorId.indexOf(',');
  if (comma < 0) return { errorId: fullyQualifiedErrorId };
  const errorId = fullyQualifiedErrorId.slice(0, comma).trim();
  const qualified = fullyQualifiedErrorId.slice(comma + 1).trim();
  const command = qualified.split('.').pop();
  return { errorId, ...(command === undefined || command === '' ? {} : { command }) };
}

export type PowerShellErrorKind = 'not-found' | 'access-denied' | 'constrained-language' | 'command-not-found' | 'other';

const HYPERV_COMMANDS = 'Microsoft.HyperV.PowerShell.Commands.';

/**
 * What an error means, from its id and exception type only:
 * - not-found: Hyper-V's Get-* cmdlets report a missing VM or switch as
 *   InvalidParameter with a VirtualizationException (ObjectNotFound from
 *   other modules, such as Get-NetNat's CIM "Windows System Error 2");
 * - access-denied: AccessDenied from a Hyper-V cmdlet (not an Administrator
 *   nor a Hyper-V Administrator), or UnauthorizedAccessException;
 * - constrained-language: the session runs in Constrained Language Mode;
 * - command-not-found: the module is missing (CommandNotFoundException).
 */
export function classifyError(error: PowerShellErrorRecord): PowerShellErrorKind {
  const fqid = error.fullyQualifiedErrorId;
  const { errorId } = splitErrorId(fqid);
  const type = error.exceptionType ?? '';
  if (errorId === 'MethodInvocationNotSupportedInConstrainedLanguage' || errorId === 'ConstrainedLanguage' || /ConstrainedLanguage/.test(errorId)) return 'constrained-language';
  if (errorId === 'CommandNotFoundException' || type === 'System.Management.Automation.CommandNotFoundException') return 'command-not-found';
  if (errorId === 'AccessDenied' || type === 'System.UnauthorizedAccessException' || error.category === 'PermissionDenied') return 'access-denied';
  if (fqid.includes(HYPERV_COMMANDS) && errorId === 'InvalidParameter' && /\.Get[A-Z]\w*$/.test(fqid) && (type === '' || /VirtualizationException$/.test(type))) return 'not-found';
  if (error.category === 'ObjectNotFound') return 'not-found';
  return 'other';
}
