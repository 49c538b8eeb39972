import { settingOf } from '../../src/doctor/context.ts';
import { fail, pass, warn } from '../../src/doctor/outcome.ts';
import type { Check, CheckContext, CheckOutcome, DoctorContext, FixCommand } from '../../src/doctor/types.ts';
import { netsOverlap, parseCidr } from '../../src/host/ipv4.ts';
import { arrayScript, powershellExecutable, psString } from '../../src/host/powershell.ts';
import {
  chooseNatSubnet,
  connectedVpnAdapters,
  natConflict,
  parseHostAddresses,
  parseNetAdapters,
  parseNetNats,
  parseRoutes,
  subnetBlockers,
} from './host-network.ts';
import type { HostAddress, HostRoute, NetAdapterInfo, NetNatInfo } from './host-network.ts';
import { ICS_SUBNET, loadHypervRegistry, modeFromSettings, NAT_NAME, networkRecorded } from './network.ts';
import type { HypervNetworkMode } from './network.ts';
import { hostNetworkScript } from './network-scripts.ts';
import { asBoolean, numberField, records, stringField } from './output.ts';
import { HYPERV_ADMINISTRATORS_SID, hypervPresenceScript, parsePresence, parseRights, rightsScript } from './rights.ts';
import { createRunner } from './runner.ts';
import type { Runner } from './runner.ts';

/**
 * The Hyper-V driver's doctor checks, in the order of multipass's Hyper-V
 * health check: the Windows edition, the hypervisor, the Hyper-V module and
 * its management service, rights, then what stands in the network's way
 * (another NetNat, PowerCLI's Get-VM, a VPN routing our subnet). The core
 * checks already read the Windows build (HOST_OS_UNSUPPORTED) and the
 * firmware's virtualization switch (HOST_VIRT_UNAVAILABLE, which looks at
 * Win32_Processor only when no hypervisor runs), so neither is read again.
 * Every query goes through the driver's runner over src/host/powershell.ts
 * with the doctor's exec, so tests answer them from fixtures. A fix is a
 * command to type (as Administrator where marked); the doctor applies none
 * of them: enabling Windows features, rebooting and group membership are
 * the user's to do.
 */

const WINDOWS = ['win32'] as const;
const DRIVERS = ['hyperv'];

const ps = (run: string, elevated: boolean): FixCommand => ({ shell: 'powershell', run, elevated });
const QEMU_INSTEAD = ps('devcluster config set driver qemu', false);
const ENABLE_HYPERV = ps('Enable-WindowsOptionalFeature -Online -FeatureName Microsoft-Hyper-V -All', true);
const START_VMMS = ps('Start-Service -Name vmms', true);
const JOIN_HYPERV_ADMINS = ps(`Add-LocalGroupMember -SID '${HYPERV_ADMINISTRATORS_SID}' -Member "$env:USERDOMAIN\\$env:USERNAME"`, true);
const removeNetNat = (name: string) => ps(`NetNat\\Remove-NetNat -Name ${psString(name)}`, true);

/** The PowerShell cmdlet lines the fixes show (typed by the user, so not module-qualified), for the contract test to check against the cmdlet table. */
export const HYPERV_FIX_CMDLETS: readonly string[] = [ENABLE_HYPERV.run, START_VMMS.run, JOIN_HYPERV_ADMINS.run, removeNetNat("it's ’ours’").run];

// ---------------------------------------------------------------------------
// Queries (each a complete script; the contract test parses every one)

/** The edition from the registry: EditionID is "Core" (and CoreN, CoreSingleLanguage, CoreCountrySpecific) on Home. */
export function editionScript(): string {
  return arrayScript(
    "    Microsoft.PowerShell.Management\\Get-ItemProperty -LiteralPath 'HKLM:\\SOFTWARE\\Microsoft\\Windows NT\\CurrentVersion' | Microsoft.PowerShell.Utility\\Select-Object -Property 'EditionID', 'ProductName', 'CurrentBuildNumber'",
    { op: 'doctor-edition' },
  );
}

/**
 * Whether a hypervisor runs, and the state of the Hyper-V features
 * (Win32_OptionalFeature needs no elevation, unlike Get-WindowsOptionalFeature;
 * InstallState 1 enabled, 2 disabled, 3 absent).
 */
export function hypervisorScript(): string {
  return arrayScript(
    [
      "    $computer = CimCmdlets\\Get-CimInstance -ClassName 'Win32_ComputerSystem'",
      "    $features = @(CimCmdlets\\Get-CimInstance -ClassName 'Win32_OptionalFeature' -Filter 'Name LIKE ''Microsoft-Hyper-V%''' | Microsoft.PowerShell.Core\\ForEach-Object { [pscustomobject]@{ Name = [string]$_.Name; InstallState = [int]$_.InstallState } })",
      '    [pscustomobject]@{ HypervisorPresent = [bool]$computer.HypervisorPresent; Features = $features }',
    ].join('\n'),
    { op: 'doctor-hypervisor' },
  );
}

/** Where a bare Get-VM would come from: every module that exports one (Hyper-V, VMware PowerCLI's VMware.VimAutomation.Core, ...). */
export function getVmSourcesScript(): string {
  return arrayScript(
    "    Microsoft.PowerShell.Core\\Get-Command -Name 'Get-VM' -All -ErrorAction SilentlyContinue | Microsoft.PowerShell.Core\\ForEach-Object { [pscustomobject]@{ Source = [string]$_.Source; CommandType = [string]$_.CommandType } }",
    { op: 'doctor-get-vm-sources' },
  );
}

/** Every script the checks run, by name, for the contract test. */
export const HYPERV_CHECK_SCRIPTS: Readonly<Record<string, string>> = {
  edition: editionScript(),
  hypervisor: hypervisorScript(),
  presence: hypervPresenceScript(),
  rights: rightsScript(),
  hostNetwork: hostNetworkScript(),
  getVmSources: getVmSourcesScript(),
};

function runnerOf(ctx: CheckContext): Runner {
  return createRunner({ platform: ctx.host.platform, exec: ctx.exec, powershell: powershellExecutable(ctx.env, ctx.host.platform, ctx.host.arch) });
}

async function query(ctx: CheckContext, key: string, script: string): Promise<unknown[]> {
  return ctx.memo(`hyperv:${key}`, (c) => runnerOf(c)(script, { signal: c.signal, timeoutMs: 30_000 }));
}

/** The network mode start would use, from the same settings and the same function as the driver. */
function networkMode(ctx: DoctorContext): HypervNetworkMode {
  return modeFromSettings(Object.fromEntries(['hyperv-nat', 'hyperv-virtual-switch', 'hyperv-external-adapter'].map((k) => [k, settingOf(ctx, k, undefined)])));
}

// ---------------------------------------------------------------------------
// 1. Edition

export interface WindowsEdition {
  editionId: string;
  productName: string;
}

export function parseEdition(json: unknown): WindowsEdition {
  const row = records(json)[0] ?? {};
  return { editionId: stringField(row, 'EditionID') ?? '', productName: stringField(row, 'ProductName') ?? '' };
}

/** Home editions: Core, CoreN, CoreSingleLanguage, CoreCountrySpecific. Hyper-V is not offered there. */
export function isHomeEdition(editionId: string): boolean {
  return /^core/i.test(editionId.trim());
}

export function evaluateEdition(e: WindowsEdition): CheckOutcome {
  const name = e.productName || 'Windows';
  if (e.editionId === '') return warn(`cannot read the Windows edition (EditionID is empty); assuming ${name} offers Hyper-V`);
  if (isHomeEdition(e.editionId)) {
    return fail(`${name} (edition ${e.editionId}) is a Home edition, which has no Hyper-V`, {
      details: ['Hyper-V is part of Windows 10/11 Pro, Enterprise and Education only. Upgrading the edition (Settings, System, Activation) adds it.'],
      fix: { description: 'Use the QEMU driver, which runs on Windows Home (with the Windows Hypervisor Platform for speed), or upgrade to Windows Pro.', commands: [QEMU_INSTEAD] },
      related: ['kubernetes/minikube#20334'],
    });
  }
  return pass(`${name} (edition ${e.editionId})`);
}

const editionCheck: Check = {
  id: 'HYPERV_EDITION_UNSUPPORTED',
  title: 'Windows edition',
  category: 'host',
  looksAt: 'EditionID in HKLM\\SOFTWARE\\Microsoft\\Windows NT\\CurrentVersion: Home editions (Core*) have no Hyper-V',
  platforms: WINDOWS,
  drivers: DRIVERS,
  fatal: true,
  exitCode: 36,
  async run(ctx) {
    return evaluateEdition(parseEdition(await query(ctx, 'edition', editionScript())));
  },
};

// ---------------------------------------------------------------------------
// 2. Hypervisor

export interface HypervisorFacts {
  hypervisorPresent: boolean;
  /** Feature name -> InstallState (1 enabled, 2 disabled, 3 absent). */
  features: Record<string, number>;
}

export function parseHypervisorFacts(json: unknown): HypervisorFacts {
  const row = records(json)[0] ?? {};
  const features: Record<string, number> = {};
  for (const f of records(row['Features'])) {
    const name = stringField(f, 'Name');
    const state = numberField(f, 'InstallState');
    if (name !== undefined && state !== undefined) features[name] = state;
  }
  return { hypervisorPresent: asBoolean(row['HypervisorPresent']) === true, features };
}


export function evaluateHypervisor(f: HypervisorFacts): CheckOutcome {
  const hypervisorFeature = f.features['Microsoft-Hyper-V-Hypervisor'];
  if (f.hypervisorPresent) {
    if (hypervisorFeature !== undefined && hypervisorFeature !== 1) {
      return fail('a hypervisor runs, but not for Hyper-V: the Hyper-V feature is off (WSL 2, the Virtual Machine Platform or Memory Integrity started it)', {
        fix: { description: 'Enable Hyper-V in an Administrator PowerShell, then restart Windows.', commands: [ENABLE_HYPERV], requires: ['reboot'] },
      });
    }
    return pass('the Windows hypervisor is running');
  }
  if (hypervisorFeature === undefined || hypervisorFeature === 3) {
    return fail('no hypervisor runs and this Windows does not offer the Hyper-V feature', {
      details: ['Win32_OptionalFeature lists no Microsoft-Hyper-V-Hypervisor feature: the edition lacks Hyper-V, or the CPU does not meet its requirements (SLAT).'],
      fix: { description: 'Use the QEMU driver instead.', commands: [QEMU_INSTEAD] },
    });
  }
  if (hypervisorFeature !== 1) {
    return fail('Hyper-V is not enabled', {
      fix: { description: 'Enable Hyper-V in an Administrator PowerShell, then restart Windows.', commands: [ENABLE_HYPERV], requires: ['reboot'] },
      related: ['kubernetes/minikube#9040'],
    });
  }
  return fail('Hyper-V is enabled but its hypervisor is not running: Windows has not restarted since it was enabled, or the boot configuration does not start it', {
    details: ['`bcdedit /enum {current}` shows hypervisorlaunchtype; tools that need the hypervisor off (old VirtualBox, some games\' anti-cheat) set it to Off.'],
    fix: {
      description: 'Restart Windows. If it still does not run, set the hypervisor to start at boot in an Administrator prompt and restart again.',
      commands: [ps('bcdedit /set hypervisorlaunchtype auto', true)],
      requires: ['reboot'],
    },
    related: ['minishift/minishift#3292'],
  });
}

const hypervisorCheck: Check = {
  id: 'HYPERV_HYPERVISOR_ABSENT',
  title: 'Hyper-V hypervisor',
  category: 'hypervisor',
  looksAt: 'Win32_ComputerSystem.HypervisorPresent, and the Microsoft-Hyper-V* features in Win32_OptionalFeature (readable without elevation) to tell "not enabled" from "not started"',
  platforms: WINDOWS,
  drivers: DRIVERS,
  // With virtualization off in the firmware, that check names the cause.
  requires: ['HOST_VIRT_UNAVAILABLE', 'HYPERV_EDITION_UNSUPPORTED'],
  fatal: true,
  exitCode: 63,
  async run(ctx) {
    return evaluateHypervisor(parseHypervisorFacts(await query(ctx, 'hypervisor', hypervisorScript())));
  },
};

// ---------------------------------------------------------------------------
// 3. Module and vmms

export function evaluatePresence(p: { module: boolean; vmmsStatus: string }): CheckOutcome {
  if (!p.module) {
    return fail('the Hyper-V PowerShell module is not installed', {
      details: ['devcluster drives Hyper-V through its PowerShell cmdlets (Hyper-V\\New-VM, ...). The module is the feature Microsoft-Hyper-V-Management-PowerShell.'],
      fix: {
        description: 'Enable Hyper-V with its management tools in an Administrator PowerShell, then restart Windows.',
        commands: [ENABLE_HYPERV],
        requires: ['reboot'],
      },
      related: ['kubernetes/minikube#9040'],
    });
  }
  if (p.vmmsStatus === '') {
    return fail('the Hyper-V Virtual Machine Management service (vmms) does not exist', {
      fix: { description: 'Enable Hyper-V (its services are the feature Microsoft-Hyper-V-Services) in an Administrator PowerShell, then restart Windows.', commands: [ENABLE_HYPERV], requires: ['reboot'] },
    });
  }
  if (p.vmmsStatus !== 'Running') {
    return fail(`the Hyper-V Virtual Machine Management service (vmms) is ${p.vmmsStatus}`, {
      fix: { description: 'Start the service in an Administrator PowerShell (after enabling Hyper-V, restart Windows first).', commands: [START_VMMS] },
      related: ['minishift/minishift#3292'],
    });
  }
  return pass('the Hyper-V module is installed and vmms is running');
}

const moduleCheck: Check = {
  id: 'HYPERV_MODULE_MISSING',
  title: 'Hyper-V module and service',
  category: 'hypervisor',
  looksAt: 'the Hyper-V PowerShell module (Get-Module -ListAvailable) and the Virtual Machine Management service vmms (Get-Service)',
  platforms: WINDOWS,
  drivers: DRIVERS,
  requires: ['HYPERV_EDITION_UNSUPPORTED'],
  fatal: true,
  exitCode: 69,
  async run(ctx) {
    return evaluatePresence(parsePresence(await query(ctx, 'presence', hypervPresenceScript())));
  },
};

// ---------------------------------------------------------------------------
// 4. Rights

/**
 * `networkExists`: devcluster's network for the mode is recorded on this host
 * (the driver's networkRecorded), so using it needs only the right to manage
 * VMs, as start decides.
 */
export function evaluateRights(r: { administrator: boolean; hypervAdministrators: boolean }, mode: HypervNetworkMode, networkExists: boolean): CheckOutcome {
  if (r.administrator) return pass('this shell runs as an elevated Administrator: it may create the switch, the NAT and the VM');
  const creates = mode === 'switch' || networkExists ? undefined : mode === 'external' ? 'an External switch' : mode === 'ics' ? 'the devcluster switch and its connection sharing' : 'the devcluster switch, its host address and the NetNat';
  if (!r.hypervAdministrators) {
    return fail('this account is neither an elevated Administrator nor a member of Hyper-V Administrators, so it may not manage VMs', {
      details: [
        'Managing VMs needs membership of Hyper-V Administrators (S-1-5-32-578) or an elevated Administrator.',
        ...(creates === undefined ? [] : [`Creating ${creates} needs an elevated Administrator in any case (a terminal opened with "Run as administrator").`]),
        'A new membership counts only after signing out and in again.',
      ],
      fix: { description: 'Add your account to Hyper-V Administrators in an Administrator PowerShell, then sign out and back in.', commands: [JOIN_HYPERV_ADMINS], requires: ['relogin'] },
      related: ['kubernetes/minikube#4189', 'kubernetes/minikube#7789'],
    });
  }
  if (creates === undefined) return pass(mode === 'switch' ? 'member of Hyper-V Administrators: enough for VMs on an existing switch' : "member of Hyper-V Administrators: enough, since devcluster's network exists on this host");
  return warn(`member of Hyper-V Administrators, which covers VMs; creating ${creates} needs an elevated Administrator`, {
    details: ['Run the first start from a terminal opened with "Run as administrator"; once the network exists, Hyper-V Administrators is enough (and always with --hyperv-virtual-switch).'],
  });
}

const rightsCheck: Check = {
  id: 'HYPERV_RIGHTS',
  title: 'Hyper-V rights',
  category: 'hypervisor',
  looksAt: 'whether the current token holds Administrators (S-1-5-32-544, elevated) or Hyper-V Administrators (S-1-5-32-578), against what the network mode creates',
  platforms: WINDOWS,
  drivers: DRIVERS,
  requires: ['HYPERV_MODULE_MISSING'],
  fatal: true,
  exitCode: 37,
  async run(ctx) {
    const mode = networkMode(ctx);
    return evaluateRights(parseRights(await query(ctx, 'rights', rightsScript())), mode, await networkRecorded(ctx.home, mode));
  },
};

// ---------------------------------------------------------------------------
// Host network facts and our subnet, shared by the NetNat and VPN checks

interface HostNetwork {
  nats: NetNatInfo[];
  routes: HostRoute[];
  addresses: HostAddress[];
  adapters: NetAdapterInfo[];
}

async function hostNetwork(ctx: CheckContext): Promise<HostNetwork> {
  const row = records(await query(ctx, 'host-network', hostNetworkScript()))[0] ?? {};
  return { nats: parseNetNats(row['NetNats']), routes: parseRoutes(row['Routes']), addresses: parseHostAddresses(row['Addresses']), adapters: parseNetAdapters(row['Adapters']) };
}

export interface OurSubnet {
  subnet: string;
  /** recorded: devcluster's switch has it; setting: --hyperv-nat-subnet; planned: what start would choose now; ics: ICS's fixed range. */
  source: 'recorded' | 'setting' | 'planned' | 'ics';
}

/** The subnet the devcluster switch has, or would get: the one recorded, the setting, or the planner's choice on this host's facts. */
export async function ourSubnet(ctx: CheckContext, net: HostNetwork): Promise<OurSubnet | undefined> {
  const mode = networkMode(ctx);
  if (mode === 'ics') return { subnet: ICS_SUBNET, source: 'ics' };
  if (mode !== 'winnat') return undefined;
  if (ctx.cluster.subnet !== undefined) return { subnet: ctx.cluster.subnet, source: 'recorded' };
  const registry = await loadHypervRegistry(ctx.home).catch(() => undefined);
  const recorded = Object.values(registry?.entries ?? {}).find((e) => e.kind === 'host-address' && e.subnet !== undefined)?.subnet;
  if (recorded !== undefined) return { subnet: recorded, source: 'recorded' };
  const setting = String(settingOf(ctx, 'hyperv-nat-subnet', 'auto'));
  if (setting !== 'auto') return { subnet: setting, source: 'setting' };
  const plan = chooseNatSubnet({ routes: net.routes, addresses: net.addresses, nats: net.nats, ownNatName: NAT_NAME });
  return plan === undefined ? undefined : { subnet: plan.subnet, source: 'planned' };
}

function describeSubnet(s: OurSubnet): string {
  switch (s.source) {
    case 'recorded':
      return `the devcluster switch's ${s.subnet}`;
    case 'setting':
      return `${s.subnet} (--hyperv-nat-subnet)`;
    case 'planned':
      return `${s.subnet} (the subnet start would choose now)`;
    case 'ics':
      return `${s.subnet} (Internet Connection Sharing's range)`;
  }
}

// ---------------------------------------------------------------------------
// 5. NetNat conflicts

/**
 * `inTheWay`: for a subnet the user asked for (--hyperv-nat-subnet), the
 * routes and addresses that overlap it; start refuses such a subnet, so the
 * doctor says so here (the core subnet check looks at the `subnet` setting,
 * not this one).
 */
export function evaluateNetNats(nats: readonly NetNatInfo[], ours: OurSubnet | undefined, inTheWay: { routes: readonly HostRoute[]; addresses: readonly HostAddress[] } = { routes: [], addresses: [] }): CheckOutcome {
  const listed = nats.map((n) => `${n.name} ${n.internalPrefix}${n.active ? '' : ' (inactive)'}`);
  const used = [...inTheWay.routes.map((r) => `the route ${r.destinationPrefix} via ${r.interfaceAlias}`), ...inTheWay.addresses.map((a) => `the address ${a.ipAddress}/${a.prefixLength} of ${a.interfaceAlias}`)];
  if (ours !== undefined && ours.source === 'setting' && used.length > 0) {
    return fail(`${describeSubnet(ours)} is already used on this host: ${used.join('; ')}`, {
      fix: { description: 'Choose a subnet no route or address uses, or let devcluster choose one.', commands: [ps('devcluster config set hyperv-nat-subnet auto', false)] },
    });
  }
  if (ours === undefined) {
    return fail('no free /24 is left for the devcluster switch in 172.16.0.0/12: routes, addresses or NetNats cover every candidate', {
      details: listed.length === 0 ? [] : [`NetNats on this host: ${listed.join('; ')}`],
      fix: { description: 'Choose a subnet yourself with --hyperv-nat-subnet=<cidr> (a private range no route uses), or use Internet Connection Sharing.', commands: [ps('devcluster config set hyperv-nat ics', false)] },
    });
  }
  const verdict = natConflict(nats, ours.subnet);
  if (verdict.kind === 'conflict') {
    return fail(`the NetNat "${verdict.name}" (${verdict.prefix}) overlaps ${describeSubnet(ours)}; Windows translates a prefix for one NetNat only`, {
      details: [
        `NetNats on this host: ${listed.join('; ')}`,
        'Docker Desktop, Windows containers, WSL and lab scripts create NetNats. devcluster never removes one it did not create.',
      ],
      fix: {
        description:
          ours.source === 'recorded'
            ? `Remove "${verdict.name}" if nothing uses it any more (in an Administrator PowerShell), or delete this cluster and start it again with --hyperv-nat-subnet set to a free range.`
            : `Choose a subnet that no NetNat covers with --hyperv-nat-subnet=<cidr>, or remove "${verdict.name}" if nothing uses it any more (in an Administrator PowerShell).`,
        commands: [removeNetNat(verdict.name)],
      },
      related: ['MicrosoftDocs/Virtualization-Documentation#361'],
    });
  }
  if (verdict.kind === 'reuse') {
    return pass(verdict.name === NAT_NAME ? `devcluster's NetNat translates ${describeSubnet(ours)}` : `the existing NetNat "${verdict.name}" already translates ${describeSubnet(ours)}; devcluster uses it and will not remove it`);
  }
  return pass(`no NetNat overlaps ${describeSubnet(ours)}${listed.length === 0 ? '' : ` (others: ${listed.join('; ')})`}`);
}

const netNatCheck: Check = {
  id: 'HYPERV_NAT_CONFLICT',
  title: 'NetNat conflicts',
  category: 'network',
  looksAt: "Get-NetNat's prefixes against the devcluster switch's subnet (recorded, --hyperv-nat-subnet, or the /24 start would choose from Get-NetRoute, Get-NetIPAddress and Get-NetNat), with --hyperv-nat=winnat",
  platforms: WINDOWS,
  drivers: DRIVERS,
  requires: ['HYPERV_MODULE_MISSING'],
  fatal: true,
  exitCode: 73,
  inapplicable(ctx) {
    const mode = networkMode(ctx);
    return mode === 'winnat' ? undefined : `the network mode is ${mode}, which creates no NetNat`;
  },
  async run(ctx) {
    const net = await hostNetwork(ctx);
    const ours = await ourSubnet(ctx, net);
    const inTheWay = ours?.source === 'setting' ? subnetBlockers({ routes: net.routes, addresses: net.addresses, nats: [] }, ours.subnet) : { routes: [], addresses: [] };
    return evaluateNetNats(net.nats, ours, inTheWay);
  },
};

// ---------------------------------------------------------------------------
// 6. PowerCLI collision

export function evaluateGetVmSources(rows: unknown): CheckOutcome {
  const sources = [...new Set(records(rows).map((r) => stringField(r, 'Source') ?? '').filter((s) => s !== ''))];
  const others = sources.filter((s) => s.toLowerCase() !== 'hyper-v');
  if (others.length === 0) return pass(sources.length === 0 ? 'no module exports Get-VM (see the Hyper-V module check)' : 'only the Hyper-V module exports Get-VM');
  return warn(`Get-VM is also exported by ${others.join(', ')}${others.some((s) => /^VMware\./i.test(s)) ? ' (VMware PowerCLI)' : ''}`, {
    details: [
      'devcluster is not affected: it calls every cmdlet with its module (Hyper-V\\Get-VM).',
      'In your own shell, a bare Get-VM, Start-VM or Stop-VM runs whichever module was imported last; type Hyper-V\\Get-VM when following the Hyper-V documentation.',
    ],
    related: ['docker/machine#4342'],
  });
}

const powercliCheck: Check = {
  id: 'HYPERV_POWERCLI_SHADOWING',
  title: 'Get-VM name collision',
  category: 'hypervisor',
  looksAt: 'the modules that export a Get-VM command (Get-Command -All): VMware PowerCLI defines Get-VM, Start-VM and Stop-VM too',
  platforms: WINDOWS,
  drivers: DRIVERS,
  exitCode: 61,
  async run(ctx) {
    return evaluateGetVmSources(await query(ctx, 'get-vm-sources', getVmSourcesScript()));
  },
};

// ---------------------------------------------------------------------------
// 7. VPN adapters

export function evaluateVpn(net: HostNetwork, ours: OurSubnet | undefined): CheckOutcome {
  const vpns = connectedVpnAdapters(net.adapters);
  if (vpns.length === 0) return pass('no VPN adapter is connected');
  const names = vpns.map((a) => `${a.name} (${a.interfaceDescription})`).join(', ');
  const onVpn = (r: HostRoute) => vpns.some((a) => a.ifIndex === r.interfaceIndex);
  const subnet = ours === undefined ? undefined : parseCidr(ours.subnet);
  const overlapping =
    subnet === undefined
      ? []
      : net.routes.filter((r) => {
          const dest = parseCidr(r.destinationPrefix);
          return onVpn(r) && dest !== undefined && dest.prefix > 0 && netsOverlap(dest, subnet);
        });
  const related = ['kubernetes/minikube#3388', 'kubernetes/minikube#7072'];
  if (ours !== undefined && subnet !== undefined && overlapping.length > 0) {
    return fail(`the VPN routes ${overlapping.map((r) => `${r.destinationPrefix} via ${r.interfaceAlias}`).join('; ')} over ${describeSubnet(ours)}: traffic to the VM would enter the tunnel`, {
      details: [`Connected VPN adapters: ${names}.`],
      fix: {
        description:
          ours.source === 'planned' || ours.source === 'setting'
            ? 'Disconnect the VPN while starting, allow local network access in its client, or choose a subnet the VPN does not route with --hyperv-nat-subnet=<cidr>.'
            : 'Disconnect the VPN, or allow local network access in its client; if the VPN must route this range, delete the cluster and start it again with --hyperv-nat-subnet set to a range the VPN leaves alone.',
        commands: [],
      },
      related,
    });
  }
  const fullTunnel = net.routes.some((r) => onVpn(r) && r.destinationPrefix.trim() === '0.0.0.0/0');
  if (fullTunnel) {
    return warn(`a VPN carries the default route (${names}); some clients also block the host's local networks, the devcluster switch included`, {
      details: [ours === undefined ? 'The VM network is not devcluster\'s own here, so its subnet is unknown.' : `No VPN route covers ${describeSubnet(ours)}.`, 'If the VM cannot be reached while the VPN is up, allow local network access in the VPN client.'],
      related,
    });
  }
  return pass(`connected VPN adapters (${names}) route nothing over ${ours === undefined ? 'the VM network' : describeSubnet(ours)}`);
}

const vpnCheck: Check = {
  id: 'HYPERV_VPN_ROUTE',
  title: 'VPN routes',
  category: 'network',
  looksAt: "connected VPN adapters (Get-NetAdapter descriptions: AnyConnect, GlobalProtect, FortiClient, OpenVPN/TAP, WireGuard, ...) and their routes (Get-NetRoute) over the devcluster switch's subnet or the default route",
  platforms: WINDOWS,
  drivers: DRIVERS,
  requires: ['HYPERV_MODULE_MISSING'],
  exitCode: 71,
  async run(ctx) {
    const net = await hostNetwork(ctx);
    return evaluateVpn(net, await ourSubnet(ctx, net));
  },
};

/** In multipass's order; the doctor prints them by category (host, hypervisor, network). */
export const HYPERV_CHECKS: readonly Check[] = [editionCheck, hypervisorCheck, moduleCheck, rightsCheck, netNatCheck, powercliCheck, vpnCheck];
