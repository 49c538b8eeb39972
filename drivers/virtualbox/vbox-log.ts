/**
 * What a VM's VBox.log says about a start that failed: the VERR_* codes that
 * name a host problem, with its cause and fix. The patterns come from the
 * VirtualBox source's status codes (include/iprt/err.h, include/VBox/err.h)
 * as they appear in "Power up failed (vrc=...)" lines.
 */
export interface LogVerdict {
  /** A known-issue ID in src/doctor/reasons.ts. */
  reason: 'HOST_VTX_DISABLED' | 'HOST_VTX_MISSING' | 'VBOX_HYPERV_CONFLICT' | 'VBOX_HOSTONLY_MISSING';
  code: string;
  cause: string;
  fix: string;
  /** The log line that shows it. */
  line: string;
}

interface Rule {
  test: RegExp;
  reason: LogVerdict['reason'];
  cause: string;
  fix: string;
}

const FIRMWARE_FIX = 'Enable Intel VT-x or AMD-V (SVM) in the firmware (BIOS/UEFI) setup and restart; inside a VM, turn on nested virtualization in its host.';
const HYPERV_FIX = 'Hyper-V (or WSL 2, Virtual Machine Platform, Memory Integrity) holds VT-x: use --driver hyperv or --driver qemu, or turn the hypervisor off (`bcdedit /set hypervisorlaunchtype off`, then restart; this disables WSL 2).';

const RULES: readonly Rule[] = [
  { test: /VERR_VMX_MSR_(ALL_)?VMX_DISABLED|VERR_VMX_MSR_LOCKED_OR_DISABLED/, reason: 'HOST_VTX_DISABLED', cause: 'VT-x is disabled in the firmware', fix: FIRMWARE_FIX },
  { test: /VERR_SVM_DISABLED/, reason: 'HOST_VTX_DISABLED', cause: 'AMD-V is disabled in the firmware', fix: FIRMWARE_FIX },
  { test: /VERR_VMX_NO_VMX|VERR_SVM_NO_SVM|the host CPU does NOT support HW virtualization/, reason: 'HOST_VTX_MISSING', cause: 'the CPU offers no hardware virtualization to VirtualBox', fix: `${FIRMWARE_FIX} On Windows, Hyper-V hides VT-x: ${HYPERV_FIX}` },
  { test: /VERR_VMX_IN_VMX_ROOT_MODE|VERR_SVM_IN_USE|VERR_VMX_UNABLE_TO_START_VM/, reason: 'VBOX_HYPERV_CONFLICT', cause: 'another hypervisor (Hyper-V, KVM) already uses VT-x/AMD-V', fix: `Stop the other hypervisor's VMs (Linux: unload kvm_intel/kvm_amd), or use it as the driver. ${HYPERV_FIX}` },
  { test: /VERR_NEM_[A-Z_]+/, reason: 'VBOX_HYPERV_CONFLICT', cause: 'VirtualBox had to run on Hyper-V\'s API (NEM) and it refused', fix: HYPERV_FIX },
  { test: /VERR_INTNET_FLT_IF_NOT_FOUND|VERR_SUPDRV_COMPONENT_NOT_FOUND/, reason: 'VBOX_HOSTONLY_MISSING', cause: 'the host-only adapter the VM is attached to does not exist (or its network filter driver is missing)', fix: 'Run `devcluster start` again (it recreates the adapter); if it persists, reinstall VirtualBox with its networking components and restart.' },
];

/** "VT-x is disabled" without the raw-mode fallback of old VirtualBox versions, which still ran the VM. */
const VTX_DISABLED_TEXT = /VT-x is disabled/;
const RAW_MODE_FALLBACK = /Falling back to raw-mode/;

export function explainVBoxLog(text: string): LogVerdict | undefined {
  const lines = text.replace(/\r\n?/g, '\n').split('\n');
  for (const rule of RULES) {
    const line = lines.find((l) => rule.test.test(l));
    if (line !== undefined) {
      const code = /VERR_[A-Z0-9_]+/.exec(line)?.[0] ?? line.trim();
      return { reason: rule.reason, code, cause: rule.cause, fix: rule.fix, line: line.trim() };
    }
  }
  const disabled = lines.find((l) => VTX_DISABLED_TEXT.test(l) && !RAW_MODE_FALLBACK.test(l));
  if (disabled !== undefined) return { reason: 'HOST_VTX_DISABLED', code: 'VT-x is disabled', cause: 'VT-x is disabled in the firmware', fix: FIRMWARE_FIX, line: disabled.trim() };
  return undefined;
}

/** VirtualBox ran on Hyper-V's API (slow, but it runs): "HM: HMR3Init: Attempting fall back to NEM". */
export function usedNem(text: string): boolean {
  return /fall(ing)? back to NEM|NEM: .*(WHvCapabilityCodeHypervisorPresent|Windows Hypervisor Platform)/i.test(text);
}
