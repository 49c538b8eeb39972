import { DOCS_BASE, isDevclusterError } from '../ui/errors.ts';
import type { Output } from '../ui/output.ts';
import { redact } from '../ui/redact.ts';
import { issueUrl } from './render.ts';

/**
 * Known failures of the tools devcluster drives (PowerShell, VBoxManage,
 * vmrun, QEMU, kubeadm, TLS stacks) mapped to an ID, an exit code, advice and
 * related upstream issues. Entries are in dependency order (resources, host,
 * hypervisor, network, internet, guest, runtime, Kubernetes) so a root cause
 * wins over its symptoms; within that, an entry restricted to the current
 * platform or driver wins over a generic one. Every pattern has real sample
 * strings in test/unit/doctor-reasons.test.ts; docs/reasons.md is generated
 * from this table.
 */
export interface KnownIssue {
  id: string;
  exitCode: number;
  /** Short name of the problem, for docs/reasons.md. */
  title: string;
  /** Matched against the error's ID, message, cause chain and command output. */
  pattern: RegExp;
  platforms?: readonly NodeJS.Platform[];
  drivers?: readonly string[];
  advice: string;
  /** owner/repo#N */
  related: readonly string[];
}

const mk = 'kubernetes/minikube';

export const KNOWN_ISSUES: readonly KnownIssue[] = [
  // Resources (20s)
  {
    id: 'RSRC_NO_SPACE', exitCode: 26, title: 'No space left on a disk',
    pattern: /no space left on device|\bENOSPC\b|There is not enough space on the disk/i,
    advice: 'A disk is full: on this host, free space on the filesystem holding DEVCLUSTER_HOME (`devcluster doctor HOST_DISK_LOW` shows it); inside the VM, a larger disk-size needs a new cluster.',
    related: [`${mk}#10482`],
  },
  {
    id: 'RSRC_TOO_FEW_CPUS', exitCode: 29, title: 'Fewer than 2 CPUs for Kubernetes',
    pattern: /the number of available CPUs \d+ is less than the required \d+/,
    advice: 'Kubernetes needs at least 2 CPUs: start the cluster with `--cpus 2` or more.',
    related: [`${mk}#7905`],
  },
  {
    id: 'RSRC_GUEST_OUT_OF_MEMORY', exitCode: 23, title: 'A process in the VM was killed for lack of memory',
    pattern: /exited with status 137|Out of memory: Killed process/,
    advice: 'The VM ran out of memory: delete the cluster and start it again with more, e.g. `--memory 6g`.',
    related: [`${mk}#1766`],
  },
  // Host (30s)
  {
    id: 'HOST_VTX_DISABLED', exitCode: 38, title: 'Virtualization disabled in the firmware',
    pattern: /VT-x is disabled|VERR_VMX_MSR_(ALL_)?VMX_DISABLED|VERR_VMX_MSR_LOCKED_OR_DISABLED|AMD-V is disabled|VERR_SVM_DISABLED|virtualization (support )?(is |appears to be )?disabled in the (BIOS|firmware)/i,
    advice: 'Enable Intel VT-x or AMD-V (SVM Mode) in the firmware setup (BIOS/UEFI), then restart. Inside a VM, enable nested virtualization on its host.',
    related: [`${mk}#5282`, `${mk}#5456`, `${mk}#7074`],
  },
  {
    id: 'HOST_VTX_MISSING', exitCode: 38, title: 'No hardware virtualization',
    pattern: /VERR_VMX_NO_VMX|VERR_SVM_NO_SVM|VT-x is not available|AMD-V is not available|does NOT support HW virtualization|doesn't have VT-X\/AMD-v enabled/i,
    advice: 'This CPU offers no virtualization to the hypervisor: enable it in the firmware, or run devcluster on a machine (or VM with nested virtualization) that has it. The QEMU driver can run without it, slowly.',
    related: [`${mk}#1994`, `${mk}#5326`, `${mk}#3900`, `${mk}#4730`],
  },
  {
    id: 'HOST_KVM_PERMISSION', exitCode: 37, title: '/dev/kvm not accessible',
    pattern: /Could not access KVM kernel module: Permission denied|\/dev\/kvm[^\n]*Permission denied/,
    platforms: ['linux'],
    advice: 'Add yourself to the kvm group (`sudo usermod -aG kvm $USER`), then sign out and back in; `devcluster doctor --fix QEMU_KVM_PERMISSION` does it for you.',
    related: [],
  },
  {
    id: 'HOST_KVM_UNUSABLE', exitCode: 38, title: 'KVM cannot run the VM',
    pattern: /Could not access KVM kernel module|failed to initialize kvm|KVM internal error|failed to set MSR 0x[0-9a-f]+|kvm_buf_set_msrs/i,
    platforms: ['linux'],
    advice: 'KVM is missing or refuses this CPU model (common inside VMs without full nested virtualization). Set `qemu-accel` to auto so QEMU falls back to software emulation, or enable virtualization on the host; `devcluster doctor QEMU_ACCEL_UNAVAILABLE` tests it.',
    related: [`${mk}#5282`],
  },
  {
    id: 'HOST_HVF_UNAVAILABLE', exitCode: 38, title: 'Hypervisor.framework refused QEMU',
    pattern: /HV_UNSUPPORTED|HV_DENIED|failed to initialize HVF|HVF error/i,
    platforms: ['darwin'],
    advice: 'macOS refused hardware virtualization: HV_DENIED means this QEMU lacks the hypervisor entitlement (install QEMU with Homebrew), HV_UNSUPPORTED means this Mac is a VM without nested virtualization.',
    related: [],
  },
  {
    id: 'HOST_WHPX_UNAVAILABLE', exitCode: 38, title: 'Windows Hypervisor Platform not enabled',
    pattern: /WHPX: No accelerator found|failed to initialize whpx/i,
    platforms: ['win32'],
    advice: 'Enable the Windows Hypervisor Platform feature in an Administrator PowerShell (`Enable-WindowsOptionalFeature -Online -FeatureName HypervisorPlatform`), then restart.',
    related: [],
  },
  {
    id: 'HOST_KUBECONFIG_PERMISSION', exitCode: 37, title: 'kubeconfig not writable',
    pattern: /kube[/\\]config: permission denied|EACCES[^\n]*\.kube[/\\]config/i,
    platforms: ['linux', 'darwin'],
    advice: 'Your kubeconfig belongs to another user (often root after a sudo): `sudo chown $USER ~/.kube/config && chmod 600 ~/.kube/config`.',
    related: [`${mk}#5714`],
  },
  {
    id: 'HOST_KUBECONFIG_UNPARSABLE', exitCode: 38, title: 'kubeconfig is not valid YAML',
    pattern: /error loading config file[^\n]*(yaml|json)|KUBECONFIG_INVALID/,
    advice: 'A file in KUBECONFIG (or ~/.kube/config) does not parse; `devcluster doctor KUBECONFIG_INVALID` names the file and line.',
    related: [`${mk}#5268`],
  },
  // Hypervisors (60s)
  {
    id: 'HYPERV_NOT_ENABLED', exitCode: 65, title: 'Hyper-V is not enabled',
    pattern: /Hyper-V PowerShell Module is not available|The term '(Hyper-V\\)?[A-Za-z]+-VM[A-Za-z]*' is not recognized/,
    platforms: ['win32'], drivers: ['hyperv'],
    advice: 'Enable Hyper-V in an Administrator PowerShell (`Enable-WindowsOptionalFeature -Online -FeatureName Microsoft-Hyper-V -All`) and restart. Windows Home has no Hyper-V: use `--driver qemu`.',
    related: [`${mk}#9040`],
  },
  {
    id: 'HYPERV_HYPERVISOR_NOT_RUNNING', exitCode: 63, title: 'The Hyper-V hypervisor is not running',
    pattern: /the hypervisor is not running/i,
    platforms: ['win32'],
    advice: 'Hyper-V is installed but its hypervisor did not start at boot: run `bcdedit /set hypervisorlaunchtype auto` in an Administrator prompt and restart; check that virtualization is enabled in the firmware.',
    related: [],
  },
  {
    id: 'HYPERV_NOT_ADMIN', exitCode: 67, title: 'Not allowed to manage Hyper-V',
    pattern: /Hyper-v commands have to be run as an Administrator|The requested operation requires elevation|You do not have the required permission to complete this task/i,
    platforms: ['win32'],
    advice: 'Managing Hyper-V needs an Administrator or a member of "Hyper-V Administrators": add yourself (`Add-LocalGroupMember -SID S-1-5-32-578 -Member $env:USERNAME` as Administrator), then sign out and back in.',
    related: [`${mk}#4511`, `${mk}#7347`],
  },
  {
    id: 'POWERSHELL_CONSTRAINED', exitCode: 67, title: 'PowerShell in Constrained Language mode',
    pattern: /MethodInvocationNotSupportedInConstrainedLanguage|Method invocation is supported only on core types in this language mode/,
    platforms: ['win32'],
    advice: 'A policy runs PowerShell in Constrained Language mode, which blocks the scripts devcluster needs; ask your administrator for an exception.',
    related: [`${mk}#7990`, `${mk}#6098`],
  },
  {
    id: 'HYPERV_SWITCH_MISSING', exitCode: 75, title: 'Hyper-V virtual switch not found',
    pattern: /unable to find a virtual switch with name|no External vswitch found|vswitch[^\n]*not found/i,
    platforms: ['win32'],
    advice: 'The virtual switch was removed or renamed outside devcluster: `Get-VMSwitch` lists the switches that exist.',
    related: [],
  },
  {
    id: 'HYPERV_NAT_CONFLICT', exitCode: 73, title: 'Windows NAT conflict',
    pattern: /New-NetNat[\s\S]*(The parameter is incorrect|Windows System Error 87)|MSFT_NetNat[\s\S]*Windows System Error 87/,
    platforms: ['win32'],
    advice: 'Windows supports one NAT network per internal prefix and conflicts with overlapping ones (Docker Desktop, WSL, other tools): list them with `Get-NetNat` and choose a subnet that none of them uses.',
    related: ['MicrosoftDocs/Virtualization-Documentation#361', 'MicrosoftDocs/Virtualization-Documentation#338'],
  },
  {
    id: 'VBOX_HYPERV_CONFLICT', exitCode: 61, title: 'VirtualBox cannot run beside Hyper-V',
    pattern: /VirtualBox won't boot a 64bits VM when Hyper-V is activated|VERR_NEM_[A-Z_]+|VERR_VMX_IN_VMX_ROOT_MODE|VERR_SVM_IN_USE/,
    drivers: ['virtualbox'],
    advice: 'Hyper-V (or WSL 2, or Memory Integrity) holds the virtualization hardware: update VirtualBox to 7 or newer, or use `--driver qemu`, which runs beside Hyper-V. Turning the hypervisor off breaks WSL 2 and Docker Desktop.',
    related: [`${mk}#4051`, `${mk}#4783`, `${mk}#4587`],
  },
  {
    id: 'VBOX_DRIVER_NOT_LOADED', exitCode: 65, title: 'VirtualBox kernel driver not loaded',
    pattern: /vboxdrv kernel module is not loaded|\/dev\/vboxdrv does not exist|VERR_VM_DRIVER_NOT_INSTALLED|failed to open \/dev\/vboxnetctl/,
    drivers: ['virtualbox'],
    advice: 'VirtualBox\'s kernel driver is missing: reinstall VirtualBox (on macOS, allow its system extension in Privacy & Security) and restart.',
    related: [`${mk}#4043`, `${mk}#4711`, `${mk}#3974`],
  },
  {
    id: 'VBOX_HOSTONLY_RANGE', exitCode: 71, title: 'VirtualBox refuses the host-only address',
    pattern: /E_ACCESSDENIED \(0x80070005\)[\s\S]*(EnableStaticIPConfig|hostonly)|host-only cidr conflicts/i,
    drivers: ['virtualbox'],
    advice: 'VirtualBox 6.1.28 and newer only allow host-only addresses in 192.168.56.0/21 unless /etc/vbox/networks.conf lists others; devcluster picks a free /24 inside the allowed ranges, so when none is free, widen /etc/vbox/networks.conf (`* 192.168.56.0/21`) or remove host-only adapters you no longer use (`VBoxManage list hostonlyifs`).',
    related: [`${mk}#12748`, `${mk}#12764`, `${mk}#12765`, `${mk}#3594`],
  },
  {
    id: 'VBOX_HOSTONLY_MISSING', exitCode: 71, title: 'The VM\'s host-only adapter or its network filter is missing',
    pattern: /VERR_INTNET_FLT_IF_NOT_FOUND|VERR_SUPDRV_COMPONENT_NOT_FOUND/,
    drivers: ['virtualbox'],
    advice: 'The host-only adapter the VM uses is gone or VirtualBox\'s network filter driver is missing: run `devcluster start` again, which makes the adapter anew; if it persists, reinstall VirtualBox with its networking components and restart the machine.',
    related: [`${mk}#6036`],
  },
  {
    id: 'VBOX_HOSTONLY_CREATE_DENIED', exitCode: 67, title: 'Not allowed to create a VirtualBox host-only adapter',
    pattern: /SetupDiCreateDeviceInfo failed \(0x00000005\)|Querying NetCfgInstanceId failed|Failed to create the host-only adapter[\s\S]*(E_ACCESSDENIED|0x80070005)/,
    platforms: ['win32'], drivers: ['virtualbox'],
    advice: 'Windows lets only an Administrator add a network adapter: run the first `devcluster start --driver virtualbox` from an elevated terminal (or accept the prompt, which may open minimized in the taskbar). If it still fails, reinstall VirtualBox with its networking components and restart.',
    related: ['docker/machine#2972', 'docker/machine#4066', `${mk}#3614`],
  },
  {
    id: 'VBOX_HARDENING', exitCode: 61, title: 'VirtualBox hardening blocked the VM',
    pattern: /VBoxHardening|supR3HardenedWinReSpawn/,
    platforms: ['win32'], drivers: ['virtualbox'],
    advice: 'VirtualBox\'s process hardening failed, usually because of anti-virus software: add an exclusion or update it, restart, and reinstall VirtualBox if it continues.',
    related: [`${mk}#3859`, `${mk}#3910`],
  },
  {
    id: 'VMWARE_VMRUN_NOT_FOUND', exitCode: 65, title: 'vmrun not found',
    pattern: /vmrun[^\n]*(not found|executable file not found|is not recognized)|The 'vmware' provider was not found/,
    drivers: ['vmware'],
    advice: 'VMware Workstation or Fusion is not installed where devcluster looks: install it, or add the folder holding vmrun (e.g. C:\\Program Files (x86)\\VMware\\VMware Workstation) to PATH.',
    related: [`${mk}#18088`, `${mk}#11308`],
  },
  {
    id: 'VMWARE_PLAYER_ONLY', exitCode: 69, title: 'vmrun cannot drive Workstation (Player or an old VIX)',
    pattern: /The specified version was not found|VIX_SERVICEPROVIDER_VMWARE_WORKSTATION was specified, but not installed/,
    drivers: ['vmware'],
    advice: 'The vmrun found belongs to VMware Workstation Player or an older VIX, which refuses `-T ws`: install VMware Workstation Pro, free for every use since 17.6.2.',
    related: [],
  },
  {
    id: 'VMWARE_HYPERV_INCOMPATIBLE', exitCode: 37, title: 'VMware Workstation refuses to run beside Hyper-V',
    pattern: /VMware Workstation and (Hyper-V|Device\/Credential Guard) are not compatible/,
    platforms: ['win32'], drivers: ['vmware'],
    advice: 'Workstation older than 15.5.5 cannot run VMs while the Windows hypervisor runs (Hyper-V, WSL 2, Credential Guard): update Workstation (17.6.2 and later are free), or turn the hypervisor off with `bcdedit /set hypervisorlaunchtype off` in an Administrator prompt and restart.',
    related: [],
  },
  {
    id: 'VMWARE_TOOLS_NOT_RUNNING', exitCode: 75, title: 'VMware Tools do not run in the guest',
    pattern: /The VMware Tools are not running in the virtual machine/,
    drivers: ['vmware'],
    advice: 'vmrun learns the guest\'s address from open-vm-tools in the guest; without them devcluster reads vmnet8\'s DHCP leases instead. If no address came, the guest\'s network did not come up: read the profile\'s logs/serial.log, and `devcluster doctor --driver vmware` checks vmnet8\'s NAT and DHCP services.',
    related: ['hashicorp/vagrant#11528', 'hashicorp/vagrant#10575'],
  },
  {
    id: 'HYPERKIT_NOT_ROOT', exitCode: 67, title: 'HyperKit lacks root privileges',
    pattern: /needs to run with elevated permissions/,
    platforms: ['darwin'], drivers: ['hyperkit'],
    advice: 'HyperKit needs root for vmnet: devcluster runs it through `sudo -n`, never setuid, and `devcluster doctor --driver hyperkit` shows (and with --fix installs) the sudoers line; on Apple silicon use `--driver qemu` instead.',
    related: ['machine-drivers/docker-machine-driver-hyperkit#15'],
  },
  {
    id: 'HYPERKIT_VMNET', exitCode: 71, title: 'vmnet.framework failed',
    pattern: /error from vmnet\.framework: -1/,
    platforms: ['darwin'], drivers: ['hyperkit'],
    advice: 'macOS networking for the VM failed: turn off Internet Sharing (System Settings, General, Sharing) and try again.',
    related: [`${mk}#6028`, `${mk}#5594`],
  },
  {
    id: 'HYPERKIT_NO_IP', exitCode: 72, title: 'No DHCP lease for the VM',
    pattern: /IP address never found in dhcp leases file|no DHCP lease for \S+ in \S*dhcpd_leases/,
    platforms: ['darwin'], drivers: ['hyperkit'],
    advice: 'The VM got no address from macOS\'s DHCP server: allow /usr/libexec/bootpd in the application firewall, turn off Internet Sharing, and delete the cluster before starting again.',
    related: [`${mk}#1926`, `${mk}#4206`],
  },
  // Network between host and VM (70s)
  {
    id: 'NETWORK_PORT_IN_USE', exitCode: 71, title: 'A port is already in use',
    pattern: /address already in use|\bEADDRINUSE\b|\[ERROR Port-\d+\]: Port \d+ is in use|Only one usage of each socket address/i,
    advice: 'Another program (often another local Kubernetes) listens on the port: stop it, or stop the other cluster.',
    related: [`${mk}#5484`, `${mk}#1474`],
  },
  {
    id: 'NETWORK_PORT_EXCLUDED', exitCode: 77, title: 'Windows reserved the port',
    pattern: /An attempt was made to access a socket in a way forbidden by its access permissions|\bWSAEACCES\b/,
    platforms: ['win32'],
    advice: 'Hyper-V or WinNAT reserved the port: see the reserved ranges with `netsh int ipv4 show excludedportrange protocol=tcp` and choose a port outside them.',
    related: ['docker/for-win#3171', 'microsoft/WSL#5514'],
  },
  {
    id: 'SSH_AUTH_FAILED', exitCode: 78, title: 'SSH key refused by the VM',
    pattern: /All configured authentication methods failed|unable to authenticate[\s\S]*no supported methods remain/,
    advice: 'The VM refused the profile\'s SSH key, usually because the VM was not created from this profile\'s seed: delete the cluster and start it again.',
    related: [`${mk}#3930`],
  },
  {
    id: 'SSH_TIMEOUT', exitCode: 72, title: 'SSH to the VM timed out',
    pattern: /Timed out while waiting for handshake|waiting for SSH to be available|connect ETIMEDOUT [\d.]+:22\b|dial tcp [\d.]+:22: (i\/o timeout|connectex)/,
    advice: 'The host cannot reach the VM: a VPN or firewall may capture its network (allow local network access, or disconnect), or the VM did not boot; the serial log in `devcluster logs` tells which.',
    related: [`${mk}#3388`, `${mk}#4617`],
  },
  // Internet (40s)
  {
    id: 'INET_DNS_FAILURE', exitCode: 48, title: 'A host name cannot be resolved',
    pattern: /dial tcp: lookup \S+( on \S+)?: no such host|getaddrinfo (ENOTFOUND|EAI_AGAIN)|Temporary failure in name resolution/,
    advice: 'DNS does not answer: check the network connection, the VPN\'s DNS settings, and HTTP(S)_PROXY when a proxy is required.',
    related: [`${mk}#5891`, `${mk}#4594`],
  },
  {
    id: 'INET_PROXY_PROTOCOL', exitCode: 48, title: 'Proxy speaks the wrong protocol',
    pattern: /server gave HTTP response to HTTPS client|first record does not look like a TLS handshake|tls: oversized record received|wrong version number/,
    advice: 'HTTPS_PROXY probably points at a proxy with an https:// URL while the proxy speaks plain HTTP (or the reverse): most proxies need an http:// URL even for HTTPS traffic.',
    related: [`${mk}#6107`, `${mk}#7286`, `${mk}#3857`],
  },
  {
    id: 'INET_TLS_INTERCEPTED', exitCode: 48, title: 'TLS certificate from an unknown authority',
    pattern: /x509: certificate signed by unknown authority|self[- ]signed certificate in certificate chain|unable to get local issuer certificate|SELF_SIGNED_CERT_IN_CHAIN|UNABLE_TO_GET_ISSUER_CERT_LOCALLY/,
    advice: 'Something between you and the internet (a corporate proxy or security product) re-signs TLS: point NODE_EXTRA_CA_CERTS at its CA certificate file for downloads on this host.',
    related: [],
  },
  {
    id: 'INET_DOWNLOAD_TIMEOUT', exitCode: 42, title: 'A download timed out or was cut',
    pattern: /Timeout awaiting '\w+'|Error downloading[^\n]*(timeout|timed out)|\bETIMEDOUT\b|\bECONNRESET\b|connection reset by peer/,
    advice: 'The connection stalled or was reset: a firewall may block it, or a proxy is required (set HTTPS_PROXY); devcluster resumes the download when started again.',
    related: [`${mk}#3846`, `${mk}#3909`],
  },
  {
    id: 'DOWNLOAD_CORRUPTED', exitCode: 45, title: 'A download does not match its checksum',
    pattern: /IMAGE_CHECKSUM_MISMATCH|has sha256 [0-9a-f]{64}, expected [0-9a-f]{64}|checksum mismatch/i,
    advice: 'The downloaded file differs from the published one (a proxy rewrote it, or the download was cut): devcluster deleted it; start again to download it anew, through another network if it repeats.',
    related: [],
  },
  // Guest (80s)
  {
    id: 'CERT_TIME_INVALID', exitCode: 88, title: 'Certificate expired or not yet valid',
    pattern: /certificate has expired or is not yet valid|certificate is not yet valid|CERT_NOT_YET_VALID|CERT_HAS_EXPIRED/,
    advice: 'A clock is wrong or a certificate expired: `devcluster doctor HOST_CLOCK_SKEW K8S_CERTS_EXPIRING` checks both.',
    related: [`${mk}#1378`, `${mk}#4263`],
  },
  {
    id: 'GUEST_FILE_IN_USE', exitCode: 81, title: 'A VM file is locked by another process',
    pattern: /The process cannot access the file because it is being used by another process/,
    platforms: ['win32'],
    advice: 'Another program holds the VM\'s disk or configuration (Hyper-V Manager, a backup or anti-virus scan): close it and try again.',
    related: [`${mk}#7300`],
  },
  {
    id: 'GUEST_VM_MISSING', exitCode: 85, title: 'The VM no longer exists in the hypervisor',
    pattern: /Could not find a registered machine named|machine does not exist/,
    advice: 'The VM was removed outside devcluster: `devcluster delete` cleans up what is left, then start again.',
    related: [`${mk}#4694`, `${mk}#3864`],
  },
  // Container runtime (90s)
  {
    id: 'RUNTIME_CONTAINERD_DOWN', exitCode: 93, title: 'containerd is not running in the VM',
    pattern: /container runtime is not running|containerd\.sock: connect: (no such file or directory|connection refused)/,
    advice: 'containerd is not running in the VM: `devcluster doctor GUEST_CONTAINERD_INACTIVE` shows its state and the support bundle (`devcluster logs --bundle`) its journal.',
    related: [],
  },
  // Kubernetes (100s)
  {
    id: 'K8S_KUBELET_NOT_RUNNING', exitCode: 109, title: 'The kubelet is not running',
    pattern: /The kubelet is not running|kubelet isn't running/,
    advice: 'The kubelet stopped: `devcluster doctor GUEST_KUBELET_INACTIVE` shows why, and the support bundle has its journal.',
    related: [`${mk}#4172`],
  },
  {
    id: 'K8S_KUBEADM_PREFLIGHT', exitCode: 100, title: 'kubeadm preflight failed',
    pattern: /\[preflight\] Some fatal errors occurred|error execution phase preflight/,
    advice: 'kubeadm refused the VM: the [ERROR ...] lines above name each problem. With a devcluster image this means the VM was changed; delete the cluster and start again.',
    related: [],
  },
  {
    id: 'K8S_APISERVER_TIMEOUT', exitCode: 102, title: 'The control plane did not come up',
    pattern: /apiserver: timed out waiting for the condition|wait-control-plane|timed out waiting for the condition/,
    advice: 'The API server did not become ready in time: a slow VM (software emulation), too little memory, or a VPN/firewall in the way; `devcluster doctor` checks each.',
    related: [`${mk}#4302`],
  },
];

/** Everything an error says about itself: ID, message, command output, causes. */
export function errorTextForMatching(error: unknown): string {
  const parts: string[] = [];
  let e: unknown = error;
  for (let depth = 0; e !== undefined && e !== null && depth < 6; depth += 1) {
    if (isDevclusterError(e)) {
      parts.push(e.id, e.message);
      for (const key of ['stderrTail', 'stdoutTail', 'output']) {
        const v = e.details[key];
        if (typeof v === 'string') parts.push(v);
      }
    } else if (e instanceof Error) {
      parts.push(e.message);
    } else {
      parts.push(String(e));
      break;
    }
    e = (e as { cause?: unknown }).cause;
  }
  return parts.join('\n');
}

export interface MatchContext {
  platform: NodeJS.Platform;
  driver?: string | undefined;
}

function fits(issue: KnownIssue, ctx: MatchContext): 'specific' | 'generic' | 'no' {
  const p = issue.platforms === undefined || issue.platforms.includes(ctx.platform);
  const d = issue.drivers === undefined || ctx.driver === undefined || issue.drivers.includes(ctx.driver);
  if (!p || !d) return 'no';
  return issue.platforms !== undefined || (issue.drivers !== undefined && ctx.driver !== undefined) ? 'specific' : 'generic';
}

/**
 * The known issue an error is an instance of: the first entry restricted to
 * this platform/driver that matches, else the first generic one that
 * matches.
 */
export function matchKnownIssue(error: unknown, ctx: MatchContext): KnownIssue | undefined {
  const text = errorTextForMatching(error);
  let generic: KnownIssue | undefined;
  for (const issue of KNOWN_ISSUES) {
    const f = fits(issue, ctx);
    if (f === 'no' || !issue.pattern.test(text)) continue;
    if (f === 'specific') return issue;
    generic ??= issue;
  }
  return generic;
}

export function reasonDocs(id: string): string {
  return `${DOCS_BASE}/reasons.md#${id.toLowerCase()}`;
}

/**
 * Errors whose ID only says "a tool failed": a matching known issue names the
 * cause better, so its ID replaces theirs. Specific IDs are kept, with the
 * known issue's advice added.
 */
export function isGenericErrorId(id: string): boolean {
  return id === 'INTERNAL_ERROR' || id === 'HOST_COMMAND_FAILED' || id === 'HOST_COMMAND_TIMEOUT' || /_FAILED$/.test(id);
}

export interface FailureDescription {
  id: string;
  exitCode: number;
  message: string;
  advice: string[];
  docs?: string;
  related: string[];
  knownIssue?: string;
}

export function describeFailure(error: unknown, ctx: MatchContext): FailureDescription {
  const base: FailureDescription = isDevclusterError(error)
    ? {
        id: error.id,
        exitCode: error.exitCode,
        message: redact(error.message),
        advice: error.advice === undefined || error.advice === '' ? [] : [error.advice],
        ...(error.docs === undefined ? {} : { docs: error.docs }),
        related: [],
      }
    : { id: 'INTERNAL_ERROR', exitCode: 1, message: redact(error instanceof Error ? error.message : String(error)), advice: ['This is a bug in devcluster. Please report it with the log file.'], related: [] };
  if (isDevclusterError(error) && error.input) return base;
  const issue = matchKnownIssue(error, ctx);
  if (issue === undefined) return base;
  if (isGenericErrorId(base.id)) {
    return { id: issue.id, exitCode: issue.exitCode, message: base.message, advice: [issue.advice], docs: reasonDocs(issue.id), related: [...issue.related], knownIssue: issue.id };
  }
  return { ...base, advice: [...base.advice, issue.advice], docs: base.docs ?? reasonDocs(issue.id), related: [...issue.related], knownIssue: issue.id };
}

export interface LifecycleFailureOptions {
  platform?: NodeJS.Platform;
  driver?: string;
}

/**
 * How start, stop and delete end on a failure: "Exiting due to ID: message",
 * the advice, the docs link, related issues, the doctor hint and the log
 * file. Returns the exit code to use.
 */
export function renderLifecycleFailure(out: Output, error: unknown, logPath: string | undefined, options: LifecycleFailureOptions = {}): number {
  const detailDriver = isDevclusterError(error) && typeof error.details['driver'] === 'string' ? error.details['driver'] : undefined;
  const d = describeFailure(error, { platform: options.platform ?? process.platform, driver: options.driver ?? detailDriver });
  if (out.format === 'json') {
    out.json({
      error: {
        id: d.id,
        exitCode: d.exitCode,
        message: d.message,
        ...(d.advice.length === 0 ? {} : { advice: d.advice.join('\n') }),
        ...(d.docs === undefined ? {} : { docs: d.docs }),
        ...(d.related.length === 0 ? {} : { related: d.related.map(issueUrl) }),
        ...(d.knownIssue === undefined ? {} : { knownIssue: d.knownIssue }),
        ...(logPath === undefined ? {} : { logFile: logPath }),
      },
    });
    out.error(`${d.id}: ${d.message}`);
    return d.exitCode;
  }
  const s = out.symbols;
  out.error(out.paint('red', `${out.unicode ? s.fail : 'X'} Exiting due to ${d.id}: ${d.message}`));
  for (const a of d.advice) out.error(`  ${s.arrow} ${a}`);
  if (d.docs !== undefined) out.error(`  Docs: ${d.docs}`);
  if (d.related.length === 1) out.error(`  Related issue: ${issueUrl(d.related[0] as string)}`);
  if (d.related.length > 1) {
    out.error('  Related issues:');
    for (const r of d.related) out.error(`    ${s.bullet} ${issueUrl(r)}`);
  }
  out.error('  Run `devcluster doctor` for a full report.');
  if (logPath !== undefined) out.error(`  Log file: ${logPath}`);
  return d.exitCode;
}

