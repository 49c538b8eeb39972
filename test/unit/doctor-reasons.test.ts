import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { KNOWN_ISSUES, describeFailure, matchKnownIssue, renderLifecycleFailure } from '../../src/doctor/reasons.ts';
import { renderReasonsMarkdown } from '../../src/doctor/docs.ts';
import { DevclusterError } from '../../src/ui/errors.ts';
import { Output } from '../../src/ui/output.ts';
import { REPO } from '../helpers/cli.ts';

interface Sample {
  id: string;
  platform: NodeJS.Platform;
  driver?: string;
  text: string;
  /** Where the text was seen. */
  source: string;
}

/**
 * Real error text, each from the tool's own output as quoted in the research
 * notes, upstream issues, or seen on the development machine.
 */
const SAMPLES: Sample[] = [
  { id: 'RSRC_NO_SPACE', platform: 'linux', text: 'ENOSPC: no space left on device, write', source: 'Node.js fs error' },
  { id: 'RSRC_NO_SPACE', platform: 'win32', text: 'There is not enough space on the disk.', source: 'Windows ERROR_DISK_FULL' },
  { id: 'RSRC_NO_SPACE', platform: 'linux', text: 'failed to extract layer: write /var/lib/containerd/io.containerd.snapshotter.v1.overlayfs/snapshots/12/fs/usr/bin/etcd: no space left on device', source: 'containerd' },
  { id: 'RSRC_TOO_FEW_CPUS', platform: 'linux', text: 'error execution phase preflight: [preflight] Some fatal errors occurred:\n\t[ERROR NumCPU]: the number of available CPUs 1 is less than the required 2', source: 'kubeadm init (minikube#7905)' },
  { id: 'RSRC_GUEST_OUT_OF_MEMORY', platform: 'linux', text: 'Process exited with status 137 from signal KILL', source: 'Go x/crypto/ssh ExitError (minikube#1766)' },
  { id: 'RSRC_GUEST_OUT_OF_MEMORY', platform: 'linux', text: 'Out of memory: Killed process 2113 (kube-apiserver) total-vm:1326004kB', source: 'Linux OOM killer' },
  { id: 'HOST_VTX_DISABLED', platform: 'win32', driver: 'virtualbox', text: 'VT-x is disabled in the BIOS for all CPU modes (VERR_VMX_MSR_ALL_VMX_DISABLED)', source: 'VirtualBox (minikube#5282)' },
  { id: 'HOST_VTX_DISABLED', platform: 'linux', driver: 'virtualbox', text: 'AMD-V is disabled in the BIOS (or by the host OS) (VERR_SVM_DISABLED)', source: 'VirtualBox (minikube#7074)' },
  { id: 'HOST_VTX_MISSING', platform: 'win32', driver: 'virtualbox', text: 'VT-x is not available (VERR_VMX_NO_VMX)', source: 'VirtualBox (minikube#1994)' },
  { id: 'HOST_VTX_MISSING', platform: 'win32', driver: 'virtualbox', text: "This computer doesn't have VT-X/AMD-v enabled. Enabling it in the BIOS is mandatory", source: 'docker-machine (minikube#3900)' },
  { id: 'HOST_KVM_PERMISSION', platform: 'linux', driver: 'qemu', text: 'Could not access KVM kernel module: Permission denied\nqemu-system-x86_64: failed to initialize kvm: Permission denied', source: 'QEMU accel/kvm' },
  { id: 'HOST_KVM_UNUSABLE', platform: 'linux', driver: 'qemu', text: 'Could not access KVM kernel module: No such file or directory\nqemu-system-x86_64: failed to initialize kvm: No such file or directory', source: 'QEMU accel/kvm' },
  { id: 'HOST_KVM_UNUSABLE', platform: 'linux', driver: 'qemu', text: "qemu-system-x86_64: error: failed to set MSR 0x10a to 0x69\nqemu-system-x86_64: ../../target/i386/kvm/kvm.c:3183: kvm_buf_set_msrs: Assertion `ret == cpu->kvm_msr_buf->nmsrs' failed.", source: 'QEMU 7.2 with -cpu host under nested KVM on the development machine' },
  { id: 'HOST_HVF_UNAVAILABLE', platform: 'darwin', driver: 'qemu', text: 'qemu-system-aarch64: HVF error: HV_UNSUPPORTED', source: 'QEMU on a macOS VM' },
  { id: 'HOST_WHPX_UNAVAILABLE', platform: 'win32', driver: 'qemu', text: 'qemu-system-x86_64.exe: -accel whpx: WHPX: No accelerator found, hr=00000000', source: 'QEMU accel/whpx' },
  { id: 'HOST_KUBECONFIG_PERMISSION', platform: 'linux', text: 'open /home/me/.kube/config: permission denied', source: 'kubectl (minikube#5714)' },
  { id: 'HOST_KUBECONFIG_PERMISSION', platform: 'darwin', text: "EACCES: permission denied, open '/Users/me/.kube/config'", source: 'Node.js fs error' },
  { id: 'HOST_KUBECONFIG_UNPARSABLE', platform: 'linux', text: 'error loading config file "/home/me/.kube/config": yaml: line 4: mapping values are not allowed in this context', source: 'kubectl' },
  { id: 'HYPERV_NOT_ENABLED', platform: 'win32', driver: 'hyperv', text: 'Hyper-V PowerShell Module is not available', source: 'minikube (minikube#9040)' },
  { id: 'HYPERV_NOT_ENABLED', platform: 'win32', driver: 'hyperv', text: "Hyper-V\\Get-VM : The term 'Hyper-V\\Get-VM' is not recognized as the name of a cmdlet, function, script file, or operable program.", source: 'PowerShell without the Hyper-V module' },
  { id: 'HYPERV_HYPERVISOR_NOT_RUNNING', platform: 'win32', driver: 'hyperv', text: "'devcluster' failed to start. The virtual machine could not be started because the hypervisor is not running.", source: 'Hyper-V Start-VM' },
  { id: 'HYPERV_NOT_ADMIN', platform: 'win32', driver: 'hyperv', text: 'Hyper-v commands have to be run as an Administrator', source: 'minikube (minikube#4511)' },
  { id: 'HYPERV_NOT_ADMIN', platform: 'win32', driver: 'hyperv', text: 'The requested operation requires elevation.', source: 'Windows ERROR_ELEVATION_REQUIRED (minikube#7347)' },
  { id: 'HYPERV_NOT_ADMIN', platform: 'win32', driver: 'hyperv', text: "You do not have the required permission to complete this task. Contact the administrator of the authorization policy for the computer 'DESKTOP-7Q2'.", source: 'Hyper-V cmdlets' },
  { id: 'POWERSHELL_CONSTRAINED', platform: 'win32', driver: 'hyperv', text: 'Cannot invoke method. Method invocation is supported only on core types in this language mode.\n    + FullyQualifiedErrorId : MethodInvocationNotSupportedInConstrainedLanguage', source: 'PowerShell (minikube#7990)' },
  { id: 'HYPERV_SWITCH_MISSING', platform: 'win32', driver: 'hyperv', text: 'Failed to create Switch "DockerNAT": Hyper-V was unable to find a virtual switch with name "DockerNAT".', source: 'Hyper-V Get-VMSwitch, quoted by Docker for Windows users' },
  { id: 'HYPERV_NAT_CONFLICT', platform: 'win32', driver: 'hyperv', text: 'New-NetNat : The parameter is incorrect.', source: 'NetNat (MicrosoftDocs/Virtualization-Documentation#361)' },
  { id: 'VBOX_HYPERV_CONFLICT', platform: 'win32', driver: 'virtualbox', text: "VirtualBox won't boot a 64bits VM when Hyper-V is activated. Either use Hyper-V as a driver, or disable the Hyper-V hypervisor. (To skip this check, use --virtualbox-no-vtx-check)", source: 'docker-machine VirtualBox driver (minikube#4051)' },
  { id: 'VBOX_HYPERV_CONFLICT', platform: 'win32', driver: 'virtualbox', text: 'Call to WHvSetupPartition failed: ERROR_SUCCESS (Last=0xc000000d/87) (VERR_NEM_VM_CREATE_FAILED)', source: 'VirtualBox NEM (minikube#4587)' },
  { id: 'VBOX_DRIVER_NOT_LOADED', platform: 'linux', driver: 'virtualbox', text: 'WARNING: The vboxdrv kernel module is not loaded. Either there is no module available for the current kernel (6.1.0-18-amd64) or it failed to load.', source: 'VBoxManage (minikube#4043)' },
  { id: 'VBOX_DRIVER_NOT_LOADED', platform: 'linux', driver: 'virtualbox', text: 'WARNING: The character device /dev/vboxdrv does not exist.', source: 'VBoxManage (minikube#3974)' },
  { id: 'VBOX_DRIVER_NOT_LOADED', platform: 'linux', driver: 'virtualbox', text: 'VBoxManage: error: VBoxNetAdpCtl: Error while adding new interface: failed to open /dev/vboxnetctl: No such file or directory', source: 'VBoxManage hostonlyif create (minikube#3614)' },
  { id: 'VBOX_HYPERV_CONFLICT', platform: 'win32', driver: 'virtualbox', text: 'VBoxManage.exe: error: Call to NEMR0InitVMPart2 failed: VERR_NEM_MISSING_KERNEL_API (VERR_NEM_MISSING_KERNEL_API).', source: 'VirtualBox NEM (minikube#5585)' },
  { id: 'VBOX_HOSTONLY_CREATE_DENIED', platform: 'win32', driver: 'virtualbox', text: 'VBoxManage.exe: error: Failed to create the host-only adapter\nVBoxManage.exe: error: Querying NetCfgInstanceId failed (0x00000002)', source: 'VBoxManage hostonlyif create (docker/machine#4066)' },
  { id: 'VBOX_HOSTONLY_CREATE_DENIED', platform: 'win32', driver: 'virtualbox', text: 'VBoxManage.exe: error: Failed to create the host-only adapter\nVBoxManage.exe: error: SetupDiCreateDeviceInfo failed (0x00000005)', source: 'VBoxManage hostonlyif create without Administrator rights (docker/machine#2972)' },
  { id: 'HOST_VTX_MISSING', platform: 'linux', driver: 'virtualbox', text: '00:00:00.402311 Power up failed (vrc=VERR_SVM_NO_SVM, rc=NS_ERROR_FAILURE (0X80004005))', source: 'VBox.log on an AMD host without SVM' },
  { id: 'VBOX_HOSTONLY_MISSING', platform: 'win32', driver: 'virtualbox', text: "Failed to open/create the internal network 'HostInterfaceNetworking-VirtualBox Host-Only Ethernet Adapter' (VERR_INTNET_FLT_IF_NOT_FOUND).\nFailed to attach the network LUN (VERR_INTNET_FLT_IF_NOT_FOUND).", source: 'VirtualBox VBox.log (minikube#6036)' },
  { id: 'VBOX_HOSTONLY_MISSING', platform: 'win32', driver: 'virtualbox', text: 'Failed to attach the network LUN (VERR_SUPDRV_COMPONENT_NOT_FOUND).', source: 'VirtualBox VBox.log' },
  { id: 'VBOX_HOSTONLY_RANGE', platform: 'linux', driver: 'virtualbox', text: 'VBoxManage: error: Code E_ACCESSDENIED (0x80070005) - Access denied (extended info not available)\nVBoxManage: error: Context: "EnableStaticIPConfig(Bstr(pszIp).raw(), Bstr(pszNetmask).raw())" at line 242 of file VBoxManageHostonly.cpp', source: 'VirtualBox 6.1.28+ (minikube#12764)' },
  { id: 'VBOX_HARDENING', platform: 'win32', driver: 'virtualbox', text: "The virtual machine 'devcluster' has terminated unexpectedly during startup with exit code 1 (0x1). More details may be available in 'C:\\Users\\me\\VirtualBox VMs\\devcluster\\Logs\\VBoxHardening.log'.", source: 'VirtualBox (minikube#3859)' },
  { id: 'VMWARE_VMRUN_NOT_FOUND', platform: 'win32', driver: 'vmware', text: "The 'vmware' provider was not found: exec: \"vmrun\": executable file not found in %PATH%", source: 'minikube (minikube#18088)' },
  { id: 'VMWARE_PLAYER_ONLY', platform: 'linux', driver: 'vmware', text: 'Error: Unable to connect to host.\nError: The specified version was not found', source: 'vmrun -T ws with only Workstation Player installed (research vbox-vmware.md §2.4)' },
  { id: 'VMWARE_PLAYER_ONLY', platform: 'win32', driver: 'vmware', text: 'Error: Service type VIX_SERVICEPROVIDER_VMWARE_WORKSTATION was specified, but not installed', source: 'vmrun with an old VIX (research vbox-vmware.md §2.4)' },
  { id: 'VMWARE_HYPERV_INCOMPATIBLE', platform: 'win32', driver: 'vmware', text: 'VMware Workstation and Device/Credential Guard are not compatible. VMware Workstation can be run after disabling Device/Credential Guard.', source: 'Workstation < 15.5.5 power-on (research vbox-vmware.md §2.7)' },
  { id: 'VMWARE_HYPERV_INCOMPATIBLE', platform: 'win32', driver: 'vmware', text: 'vmrun start failed (exit 255): Error: VMware Workstation and Hyper-V are not compatible. Remove the Hyper-V role from the system before running VMware Workstation.', source: 'Workstation < 15.5.5 with the Hyper-V role, as devcluster words it' },
  { id: 'VMWARE_TOOLS_NOT_RUNNING', platform: 'darwin', driver: 'vmware', text: 'Error: The VMware Tools are not running in the virtual machine: /Users/ann/.devcluster/profiles/dev/vm/devcluster-dev.vmx', source: 'vmrun getGuestIPAddress (Vagrant#11528)' },
  { id: 'HYPERKIT_NOT_ROOT', platform: 'darwin', driver: 'hyperkit', text: '/usr/local/bin/docker-machine-driver-hyperkit needs to run with elevated permissions. Please run the following command, then try again: sudo chown root:wheel /usr/local/bin/docker-machine-driver-hyperkit && sudo chmod u+s /usr/local/bin/docker-machine-driver-hyperkit', source: 'minikube HyperKit driver' },
  { id: 'HYPERKIT_VMNET', platform: 'darwin', driver: 'hyperkit', text: 'hyperkit: error from vmnet.framework: -1', source: 'HyperKit (minikube#6028)' },
  { id: 'HYPERKIT_NO_IP', platform: 'darwin', driver: 'hyperkit', text: 'IP address never found in dhcp leases file Temporary Error: Could not find an IP address for 6a:0:b5:2:7d:1e', source: 'HyperKit driver (minikube#1926)' },
  { id: 'NETWORK_PORT_IN_USE', platform: 'linux', text: '[ERROR Port-6443]: Port 6443 is in use', source: 'kubeadm preflight (minikube#5484)' },
  { id: 'NETWORK_PORT_IN_USE', platform: 'linux', text: 'listen tcp 127.0.0.1:6443: bind: address already in use', source: 'Go net' },
  { id: 'NETWORK_PORT_IN_USE', platform: 'win32', text: 'Only one usage of each socket address (protocol/network address/port) is normally permitted.', source: 'Windows WSAEADDRINUSE' },
  { id: 'NETWORK_PORT_EXCLUDED', platform: 'win32', text: 'listen tcp 127.0.0.1:6443: bind: An attempt was made to access a socket in a way forbidden by its access permissions.', source: 'Windows WSAEACCES (docker/for-win#3171)' },
  { id: 'SSH_AUTH_FAILED', platform: 'linux', text: 'All configured authentication methods failed', source: 'ssh2 (node-ssh)' },
  { id: 'SSH_AUTH_FAILED', platform: 'win32', text: 'ssh: handshake failed: ssh: unable to authenticate, attempted methods [none publickey], no supported methods remain', source: 'Go x/crypto/ssh (minikube#3930)' },
  { id: 'SSH_TIMEOUT', platform: 'linux', text: 'Timed out while waiting for handshake', source: 'ssh2 (node-ssh)' },
  { id: 'SSH_TIMEOUT', platform: 'win32', text: 'dial tcp 172.17.20.5:22: connectex: A connection attempt failed because the connected party did not properly respond after a period of time, or established connection failed because connected host has failed to respond.', source: 'Go net on Windows (minikube#3388)' },
  { id: 'SSH_TIMEOUT', platform: 'darwin', text: 'connect ETIMEDOUT 192.168.64.5:22', source: 'Node.js net' },
  { id: 'INET_DNS_FAILURE', platform: 'linux', text: 'dial tcp: lookup registry.k8s.io on 10.0.2.3:53: no such host', source: 'Go net in the guest' },
  { id: 'INET_DNS_FAILURE', platform: 'darwin', text: 'getaddrinfo ENOTFOUND dl.k8s.io', source: 'Node.js dns' },
  { id: 'INET_PROXY_PROTOCOL', platform: 'linux', text: 'Get "https://registry.k8s.io/v2/": http: server gave HTTP response to HTTPS client', source: 'Go net/http (minikube#6107)' },
  { id: 'INET_PROXY_PROTOCOL', platform: 'linux', text: 'proxyconnect tcp: tls: first record does not look like a TLS handshake', source: 'Go crypto/tls (minikube#7286)' },
  { id: 'INET_TLS_INTERCEPTED', platform: 'linux', text: 'x509: certificate signed by unknown authority', source: 'Go crypto/x509' },
  { id: 'INET_TLS_INTERCEPTED', platform: 'win32', text: 'self-signed certificate in certificate chain', source: 'Node.js TLS (SELF_SIGNED_CERT_IN_CHAIN)' },
  { id: 'INET_DOWNLOAD_TIMEOUT', platform: 'linux', text: "Timeout awaiting 'request' for 30000ms", source: 'got' },
  { id: 'INET_DOWNLOAD_TIMEOUT', platform: 'linux', text: 'read ECONNRESET', source: 'Node.js net' },
  { id: 'DOWNLOAD_CORRUPTED', platform: 'linux', text: `https://example.org/photon-5.qcow2 has sha256 ${'a'.repeat(64)}, expected ${'b'.repeat(64)}`, source: 'devcluster image download (src/image/download.ts message)' },
  { id: 'CERT_TIME_INVALID', platform: 'linux', text: 'Unable to connect to the server: x509: certificate has expired or is not yet valid: current time 2026-01-10T08:00:00Z is before 2026-01-10T08:05:12Z', source: 'kubectl after sleep (minikube#1378)' },
  { id: 'GUEST_FILE_IN_USE', platform: 'win32', driver: 'hyperv', text: 'The process cannot access the file because it is being used by another process.', source: 'Windows ERROR_SHARING_VIOLATION (minikube#7300)' },
  { id: 'GUEST_VM_MISSING', platform: 'linux', driver: 'virtualbox', text: "VBoxManage: error: Could not find a registered machine named 'devcluster'", source: 'VBoxManage (minikube#4694)' },
  { id: 'RUNTIME_CONTAINERD_DOWN', platform: 'linux', text: '[ERROR CRI]: container runtime is not running: output: time="2024-04-19T13:03:14+08:00" level=fatal msg="validate service connection: CRI v1 runtime API is not implemented for endpoint \\"unix:///var/run/containerd/containerd.sock\\""', source: 'kubeadm preflight' },
  { id: 'RUNTIME_CONTAINERD_DOWN', platform: 'linux', text: 'dial unix /run/containerd/containerd.sock: connect: no such file or directory', source: 'crictl' },
  { id: 'K8S_KUBELET_NOT_RUNNING', platform: 'linux', text: "[kubelet-check] It seems like the kubelet isn't running or healthy.", source: 'kubeadm init (minikube#4172)' },
  { id: 'K8S_KUBEADM_PREFLIGHT', platform: 'linux', text: 'error execution phase preflight: [preflight] Some fatal errors occurred:\n\t[ERROR FileContent--proc-sys-net-ipv4-ip_forward]: /proc/sys/net/ipv4/ip_forward contents are not set to 1', source: 'kubeadm init' },
  { id: 'K8S_APISERVER_TIMEOUT', platform: 'linux', text: 'apiserver: timed out waiting for the condition', source: 'minikube (minikube#4302)' },
  { id: 'K8S_APISERVER_TIMEOUT', platform: 'linux', text: 'error execution phase wait-control-plane: couldn\'t initialize a Kubernetes cluster', source: 'kubeadm init' },
];

describe('known issues', () => {
  test('every entry has at least one real sample, and every sample matches its entry', () => {
    for (const issue of KNOWN_ISSUES) {
      assert.ok(SAMPLES.some((s) => s.id === issue.id), `${issue.id} has no sample`);
    }
    for (const s of SAMPLES) {
      const got = matchKnownIssue(new Error(s.text), { platform: s.platform, driver: s.driver });
      assert.equal(got?.id, s.id, `${s.source}: ${JSON.stringify(s.text.slice(0, 80))} matched ${got?.id}`);
    }
  });

  test('IDs are unique, related issues are owner/repo#N, and exit codes follow the decade scheme', () => {
    const ids = KNOWN_ISSUES.map((k) => k.id);
    assert.equal(new Set(ids).size, ids.length);
    for (const k of KNOWN_ISSUES) {
      assert.match(k.id, /^[A-Z][A-Z0-9_]+$/);
      for (const r of k.related) assert.match(r, /^[\w.-]+\/[\w.-]+#\d+$/, `${k.id}: ${r}`);
      assert.ok(k.exitCode >= 20 && k.exitCode < 110, `${k.id}: ${k.exitCode}`);
      // Advice is prose; commands in it are quoted so nobody types the prose into a shell.
      assert.doesNotMatch(k.advice, /^(sudo|kubectl|Enable-|bcdedit|netsh|devcluster) /, k.id);
    }
  });

  test('an entry restricted to the platform wins over an earlier generic one', () => {
    // "Permission denied" on /dev/kvm is Linux-only; on macOS the same words are nothing known.
    assert.equal(matchKnownIssue(new Error('Could not access KVM kernel module: Permission denied'), { platform: 'linux', driver: 'qemu' })?.id, 'HOST_KVM_PERMISSION');
    assert.equal(matchKnownIssue(new Error('Could not access KVM kernel module: Permission denied'), { platform: 'darwin', driver: 'qemu' }), undefined);
    // A driver-restricted entry does not apply to another driver.
    assert.equal(matchKnownIssue(new Error('VT-x is not available (VERR_VMX_NO_VMX)'), { platform: 'win32', driver: 'hyperv' })?.id, 'HOST_VTX_MISSING');
    assert.equal(matchKnownIssue(new Error("The 'vmware' provider was not found: exec: \"vmrun\""), { platform: 'linux', driver: 'qemu' }), undefined);
  });

  test('a root cause wins over its symptom: SSH timeouts are not download timeouts', () => {
    assert.equal(matchKnownIssue(new Error('connect ETIMEDOUT 192.168.211.10:22'), { platform: 'linux' })?.id, 'SSH_TIMEOUT');
    assert.equal(matchKnownIssue(new Error('connect ETIMEDOUT 151.101.1.1:443'), { platform: 'linux' })?.id, 'INET_DOWNLOAD_TIMEOUT');
  });

  test('the cause chain and the failed command\'s stderr are searched', () => {
    const inner = new DevclusterError('HOST_COMMAND_FAILED', 'VBoxManage exited with code 1', { details: { stderrTail: 'VBoxManage: error: VT-x is disabled in the BIOS for all CPU modes (VERR_VMX_MSR_ALL_VMX_DISABLED)' } });
    const outer = new Error('starting the VM failed', { cause: inner });
    assert.equal(matchKnownIssue(outer, { platform: 'win32', driver: 'virtualbox' })?.id, 'HOST_VTX_DISABLED');
  });

  test('a generic error takes the known issue\'s ID and exit code; a precise one keeps its own and gains the advice', () => {
    const generic = new DevclusterError('HOST_COMMAND_FAILED', 'qemu-system-x86_64 exited with code -1: qemu-system-x86_64: error: failed to set MSR 0x10a to 0x69');
    const d = describeFailure(generic, { platform: 'linux', driver: 'qemu' });
    assert.equal(d.id, 'HOST_KVM_UNUSABLE');
    assert.equal(d.exitCode, 38);
    assert.match(d.docs ?? '', /reasons\.md#host_kvm_unusable$/);

    const precise = new DevclusterError('PROFILE_BUSY', 'profile dev is busy: no space left on device while writing the lock', { advice: 'Wait for the other command.' });
    const p = describeFailure(precise, { platform: 'linux' });
    assert.equal(p.id, 'PROFILE_BUSY');
    assert.equal(p.exitCode, precise.exitCode);
    assert.deepEqual(p.advice[0], 'Wait for the other command.');
    assert.equal(p.knownIssue, 'RSRC_NO_SPACE');

    const usage = new DevclusterError('USAGE_INVALID_ARGUMENT', '--memory: no space left on device is not a size');
    assert.equal(describeFailure(usage, { platform: 'linux' }).knownIssue, undefined);
  });
});

function capture(env: NodeJS.ProcessEnv = { NO_COLOR: '1', LANG: 'C.UTF-8' }, format: 'text' | 'json' = 'text') {
  let stdout = '';
  let stderr = '';
  const out = new Output({ env, platform: 'linux', format, stdout: { write: (s: string) => ((stdout += s), true) }, stderr: { write: (s: string) => ((stderr += s), true) } });
  return { out, text: () => ({ stdout, stderr }) };
}

describe('renderLifecycleFailure', () => {
  test('prints the ID, message, advice, docs, related issues, the doctor hint and the log file; returns the exit code', () => {
    const { out, text } = capture();
    const error = new DevclusterError('HOST_COMMAND_FAILED', 'VBoxManage exited with code 1: VT-x is disabled in the BIOS for all CPU modes (VERR_VMX_MSR_ALL_VMX_DISABLED)');
    const code = renderLifecycleFailure(out, error, '/home/me/.devcluster/logs/start.log', { platform: 'win32', driver: 'virtualbox' });
    assert.equal(code, 38);
    const { stderr, stdout } = text();
    assert.equal(stdout, '');
    const lines = stderr.split('\n');
    assert.match(lines[0] ?? '', /^✗ Exiting due to HOST_VTX_DISABLED: VBoxManage exited with code 1: VT-x is disabled/);
    assert.match(stderr, /→ Enable Intel VT-x or AMD-V/);
    assert.match(stderr, /Docs: https:\/\/\S+\/reasons\.md#host_vtx_disabled/);
    assert.match(stderr, /Related issues:\n {4}• https:\/\/github\.com\/kubernetes\/minikube\/issues\/5282/);
    assert.match(stderr, /Run `devcluster doctor` for a full report\./);
    assert.match(stderr, /Log file: \/home\/me\/\.devcluster\/logs\/start\.log/);
    assert.ok(!stderr.includes('\u001b['));
  });

  test('ASCII consoles get ASCII symbols', () => {
    const { out, text } = capture({ NO_COLOR: '1', DEVCLUSTER_ASCII: '1' });
    renderLifecycleFailure(out, new Error('listen tcp 127.0.0.1:6443: bind: address already in use'), undefined, { platform: 'linux' });
    const { stderr } = text();
    assert.match(stderr, /^X Exiting due to NETWORK_PORT_IN_USE: /);
    assert.match(stderr, /-> Another program/);
    assert.doesNotMatch(stderr, /[^\t\n\r -~]/);
  });

  test('JSON mode prints one error document on stdout', () => {
    const { out, text } = capture({ NO_COLOR: '1' }, 'json');
    const code = renderLifecycleFailure(out, new Error('getaddrinfo ENOTFOUND dl.k8s.io'), '/tmp/x.log', { platform: 'linux' });
    const doc = JSON.parse(text().stdout) as { error: Record<string, unknown> };
    assert.equal(code, 48);
    assert.equal(doc.error['id'], 'INET_DNS_FAILURE');
    assert.equal(doc.error['logFile'], '/tmp/x.log');
    assert.equal(doc.error['knownIssue'], 'INET_DNS_FAILURE');
  });

  test('secrets in the message are masked', () => {
    const { out, text } = capture();
    renderLifecycleFailure(out, new Error('proxyconnect tcp via http://alice:s3cret@proxy.corp:3128: tls: first record does not look like a TLS handshake'), undefined, { platform: 'linux' });
    assert.doesNotMatch(text().stderr, /s3cret/);
  });
});

test('docs/reasons.md is generated from the table (run `npm run docs:reasons` when this fails)', async () => {
  const committed = await readFile(join(REPO, 'docs', 'reasons.md'), 'utf8');
  assert.equal(committed, renderReasonsMarkdown());
});
