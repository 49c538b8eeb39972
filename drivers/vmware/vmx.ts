/**
 * The VM's configuration file (.vmx): `key = "value"` lines, UTF-8 when
 * `.encoding = "UTF-8"` comes first. Inside the quotes VMware writes a
 * character it cannot keep literally as "|" and two hex digits: "|22" for a
 * double quote, "|7C" for the bar itself, "|23" for "#" (which would start a
 * comment) and "|0A"-style codes for control characters. Backslashes in
 * Windows paths are literal; non-ASCII stays UTF-8.
 *
 * The file is built from a typed model (vmxEntries) and never by pasting
 * strings, and parseVmx reads any .vmx back (the tests read ours).
 */

export type Firmware = 'bios' | 'efi';

export interface VmxModel {
  displayName: string;
  guestOS: string;
  firmware: Firmware;
  virtualHwVersion: number;
  cpus: number;
  memoryMiB: number;
  /** Static MAC in VMware's range 00:50:56:00:00:00-00:50:56:3f:ff:ff. */
  mac: string;
  /** The VM's own disk (a delta of the cached base), relative to the .vmx or absolute. */
  disk: string;
  /** Read-only CD-ROM images: the seed first, then the data media, on SATA. */
  cdroms: readonly string[];
  serialLog: string;
}

export const VMX_CHARSET = 'UTF-8';

/** "|" + two hex digits for `"`, `|`, `#` and control characters; everything else as it is. */
export function escapeVmxValue(value: string): string {
  let out = '';
  for (const ch of value) {
    const code = ch.codePointAt(0) as number;
    out += ch === '"' || ch === '|' || ch === '#' || code < 0x20 || code === 0x7f ? `|${code.toString(16).toUpperCase().padStart(2, '0')}` : ch;
  }
  return out;
}

export function unescapeVmxValue(value: string): string {
  return value.replace(/\|([0-9a-fA-F]{2})/g, (_, hex: string) => String.fromCharCode(Number.parseInt(hex, 16)));
}

/** A SATA controller holds 30 devices; the disk is on SCSI, so every CD-ROM fits on sata0. */
const MAX_SATA_DEVICES = 30;

/** The model as ordered key/value pairs (values unescaped). */
export function vmxEntries(m: VmxModel): Array<[string, string]> {
  if (m.cdroms.length > MAX_SATA_DEVICES) throw new RangeError(`${m.cdroms.length} CD-ROM images do not fit on one SATA controller (${MAX_SATA_DEVICES})`);
  const e: Array<[string, string]> = [
    ['.encoding', VMX_CHARSET],
    ['config.version', '8'],
    ['virtualHW.version', String(m.virtualHwVersion)],
    ['displayName', m.displayName],
    ['guestOS', m.guestOS],
    ['firmware', m.firmware],
    ['numvcpus', String(m.cpus)],
    ['cpuid.coresPerSocket', '1'],
    ['memsize', String(m.memoryMiB)],
    // Hardware the guest needs and nothing it would not use: no sound, USB, floppy or shared folders.
    ['pciBridge0.present', 'TRUE'],
    ['pciBridge4.present', 'TRUE'],
    ['pciBridge4.virtualDev', 'pcieRootPort'],
    ['pciBridge4.functions', '8'],
    ['vmci0.present', 'TRUE'],
    ['hpet0.present', 'TRUE'],
    ['floppy0.present', 'FALSE'],
    ['sound.present', 'FALSE'],
    ['usb.present', 'FALSE'],
    ['hgfs.mapRootShare', 'FALSE'],
    ['hgfs.linkRootShare', 'FALSE'],
    ['isolation.tools.hgfs.disable', 'TRUE'],
    ['scsi0.present', 'TRUE'],
    ['scsi0.virtualDev', 'pvscsi'],
    ['scsi0:0.present', 'TRUE'],
    ['scsi0:0.fileName', m.disk],
    ['scsi0:0.mode', 'persistent'],
    ['sata0.present', 'TRUE'],
  ];
  m.cdroms.forEach((iso, unit) => {
    e.push([`sata0:${unit}.present`, 'TRUE'], [`sata0:${unit}.deviceType`, 'cdrom-image'], [`sata0:${unit}.fileName`, iso], [`sata0:${unit}.startConnected`, 'TRUE']);
  });
  e.push(
    ['ethernet0.present', 'TRUE'],
    // nat is vmnet8, VMware's NAT network.
    ['ethernet0.connectionType', 'nat'],
    ['ethernet0.virtualDev', 'vmxnet3'],
    ['ethernet0.addressType', 'static'],
    ['ethernet0.address', m.mac],
    ['ethernet0.startConnected', 'TRUE'],
    ['serial0.present', 'TRUE'],
    ['serial0.fileType', 'file'],
    ['serial0.fileName', m.serialLog],
    ['serial0.yieldOnMsrRead', 'TRUE'],
    ['tools.syncTime', 'TRUE'],
    ['tools.upgrade.policy', 'manual'],
    // Answers "I copied it / I moved it" questions itself: a headless VM has no one to click.
    ['msg.autoAnswer', 'TRUE'],
    ['uuid.action', 'create'],
    ['powerType.powerOff', 'soft'],
    ['powerType.reset', 'soft'],
    ['powerType.suspend', 'soft'],
  );
  return e;
}

export function renderVmx(entries: ReadonlyArray<readonly [string, string]>): string {
  const keys = new Set<string>();
  for (const [key] of entries) {
    if (!/^[A-Za-z0-9._:-]+$/.test(key)) throw new RangeError(`not a .vmx key: ${JSON.stringify(key)}`);
    if (keys.has(key.toLowerCase())) throw new RangeError(`.vmx key ${key} given twice`);
    keys.add(key.toLowerCase());
  }
  return `${entries.map(([k, v]) => `${k} = "${escapeVmxValue(v)}"`).join('\n')}\n`;
}

/**
 * A .vmx's text as a map of lower-cased keys (VMware ignores case) to
 * unescaped values. Accepts CRLF, comments, blank lines and unquoted
 * values (VMware writes some, such as `scsi0:0.virtualSSD = 1`); the last
 * of a repeated key wins, as in VMware.
 */
export function parseVmx(text: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const raw of text.replace(/^\uFEFF/, '').split('\n')) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) continue;
    const eq = line.indexOf('=');
    if (eq <= 0) continue;
    const key = line.slice(0, eq).trim().toLowerCase();
    let value = line.slice(eq + 1).trim();
    if (value.startsWith('"')) {
      const end = value.indexOf('"', 1);
      value = end < 0 ? value.slice(1) : value.slice(1, end);
    } else {
      value = value.replace(/\s+#.*$/, '');
    }
    out.set(key, unescapeVmxValue(value));
  }
  return out;
}
