import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { commandExists, run } from '../../src/host/exec.ts';
import { skipUnlessPresent } from './prerequisite.ts';

/**
 * Real disk images made by the real qemu-img, for the tests of the check
 * that an image names no other file. Without qemu-img these tests cannot
 * prove anything: on CI that is a failure, elsewhere a skip with the reason.
 */
export const QEMU_IMG_MISSING: string | false = skipUnlessPresent((await commandExists('qemu-img')) ? false : 'qemu-img is not installed (apt-get install qemu-utils)');

async function qemuImg(args: readonly string[], cwd: string): Promise<void> {
  await run('qemu-img', args, { cwd, timeoutMs: 30_000 });
}

/** A clean qcow2 with `size` of virtual disk. */
export async function cleanQcow2(dir: string, name = 'clean.qcow2', size = '1M'): Promise<string> {
  await qemuImg(['create', '-q', '-f', 'qcow2', name, size], dir);
  return join(dir, name);
}

/** A qcow2 whose backing file is `backing` (any path, even one that does not exist). */
export async function backedQcow2(dir: string, backing: string, name = 'backed.qcow2'): Promise<string> {
  await qemuImg(['create', '-q', '-f', 'qcow2', '-u', '-b', backing, '-F', 'raw', name, '1M'], dir);
  return join(dir, name);
}

/** A qcow2 with an external data file (created beside it, or wherever `dataFile` points). */
export async function dataFileQcow2(dir: string, dataFile: string, name = 'data-file.qcow2'): Promise<string> {
  await qemuImg(['create', '-q', '-f', 'qcow2', '-o', `data_file=${dataFile}`, name, '1M'], dir);
  return join(dir, name);
}

/** A monolithicFlat VMDK: a text descriptor plus `<name>-flat.vmdk` holding the data. */
export async function flatVmdk(dir: string, name = 'flat.vmdk'): Promise<string> {
  await qemuImg(['create', '-q', '-f', 'vmdk', '-o', 'subformat=monolithicFlat', name, '1M'], dir);
  return join(dir, name);
}

/** A sparse VMDK (binary KDMV header, no text descriptor) whose embedded descriptor names a parent disk. */
export async function childVmdk(dir: string, name = 'child.vmdk'): Promise<string> {
  await qemuImg(['create', '-q', '-f', 'vmdk', `${name}.parent.vmdk`, '1M'], dir);
  await qemuImg(['create', '-q', '-f', 'vmdk', '-b', `${name}.parent.vmdk`, '-F', 'vmdk', name], dir);
  return join(dir, name);
}

/** A streamOptimized VMDK (what an OVA carries): one self-contained file. */
export async function streamVmdk(dir: string, name = 'disk1.vmdk'): Promise<string> {
  const source = await cleanQcow2(dir, `${name}.source.qcow2`);
  await qemuImg(['convert', '-q', '-O', 'vmdk', '-o', 'subformat=streamOptimized', source, name], dir);
  return join(dir, name);
}

/** A raw disk of `size` bytes of a repeating pattern (no signature of any format). */
export async function rawDisk(dir: string, name = 'disk.raw', size = 256 * 1024): Promise<string> {
  const bytes = Buffer.alloc(size);
  for (let i = 0; i < size; i += 1) bytes[i] = (i * 7 + 3) & 0xff;
  await writeFile(join(dir, name), bytes);
  return join(dir, name);
}

/** A minimal OVF naming `hrefs` as its files. */
export function ovfNaming(hrefs: readonly string[]): string {
  const files = hrefs.map((h, i) => `    <File ovf:href="${h}" ovf:id="file${i + 1}"/>`).join('\n');
  return `<?xml version="1.0" encoding="UTF-8"?>\n<Envelope xmlns="http://schemas.dmtf.org/ovf/envelope/1" xmlns:ovf="http://schemas.dmtf.org/ovf/envelope/1">\n  <References>\n${files}\n  </References>\n</Envelope>\n`;
}

/** A ustar archive (an OVA) of the given members, written by our own small tar writer so tests control every header. */
export async function writeTar(path: string, members: ReadonlyArray<{ name: string; data?: Buffer; type?: string; linkName?: string }>): Promise<string> {
  const blocks: Buffer[] = [];
  for (const m of members) {
    const data = m.data ?? Buffer.alloc(0);
    const header = Buffer.alloc(512);
    header.write(m.name, 0, 100, 'utf8');
    header.write('0000644\0', 100, 'latin1');
    header.write('0000000\0', 108, 'latin1');
    header.write('0000000\0', 116, 'latin1');
    header.write(`${data.length.toString(8).padStart(11, '0')}\0`, 124, 'latin1');
    header.write('00000000000\0', 136, 'latin1');
    header.write('        ', 148, 'latin1');
    header.write(m.type ?? '0', 156, 'latin1');
    if (m.linkName !== undefined) header.write(m.linkName, 157, 100, 'utf8');
    header.write('ustar\0', 257, 'latin1');
    header.write('00', 263, 'latin1');
    let sum = 0;
    for (const b of header) sum += b;
    header.write(`${sum.toString(8).padStart(6, '0')}\0 `, 148, 'latin1');
    blocks.push(header, data, Buffer.alloc((512 - (data.length % 512)) % 512));
  }
  blocks.push(Buffer.alloc(1024));
  await writeFile(path, Buffer.concat(blocks));
  return path;
}

/** An OVA with an OVF naming its one streamOptimized disk. */
export async function cleanOva(dir: string, name = 'clean.ova'): Promise<string> {
  const vmdk = await readFile(await streamVmdk(dir, 'ova-disk1.vmdk'));
  return writeTar(join(dir, name), [
    { name: 'appliance.ovf', data: Buffer.from(ovfNaming(['disk1.vmdk'])) },
    { name: 'disk1.vmdk', data: vmdk },
  ]);
}
