import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { describeReferences, fileReferences, isSelf, ovfForeignReferences, vmdkDescriptorReferences } from '../../src/image/file-references.ts';

/** Shapes as qemu-img 7.2 prints them (`qemu-img info --output=json -U -f <fmt> <path>`), trimmed. */
const IMG = '/cache/ab/disk.qcow2';
const clean = {
  'virtual-size': 1048576, filename: IMG, format: 'qcow2', 'actual-size': 200704,
  'format-specific': { type: 'qcow2', data: { compat: '1.1', 'compression-type': 'zlib', 'lazy-refcounts': false, 'refcount-bits': 16, corrupt: false, 'extended-l2': false } },
  'dirty-flag': false,
};

describe('fileReferences: qemu-img info JSON', () => {
  test('a clean qcow2, a raw file and a VHDX name nothing but themselves', () => {
    assert.deepEqual(fileReferences(clean, IMG), []);
    assert.deepEqual(fileReferences({ 'virtual-size': 1, filename: '/x/disk.raw', format: 'raw', 'dirty-flag': false }, '/x/disk.raw'), []);
    assert.deepEqual(fileReferences({ filename: '/x/v.vhdx', format: 'vhdx', 'cluster-size': 8388608 }, '/x/v.vhdx'), []);
  });

  test('a backing file is refused under both names it is reported with; its format alone is noted but not doubled', () => {
    const info = { ...clean, 'backing-filename-format': 'raw', 'full-backing-filename': '/etc/shadow', 'backing-filename': '/etc/shadow' };
    assert.deepEqual(fileReferences(info, IMG), [
      { field: 'full-backing-filename', file: '/etc/shadow' },
      { field: 'backing-filename', file: '/etc/shadow' },
    ]);
    assert.equal(describeReferences(fileReferences(info, IMG)), '"/etc/shadow" (full-backing-filename, backing-filename)');
    assert.deepEqual(fileReferences({ ...clean, 'backing-filename-format': 'qcow2' }, IMG), [{ field: 'backing-filename-format', file: undefined }]);
  });

  test('a qcow2 external data file, relative or absolute', () => {
    const withData = (dataFile: string) => ({ ...clean, 'format-specific': { type: 'qcow2', data: { ...clean['format-specific'].data, 'data-file': dataFile, 'data-file-raw': false } } });
    assert.deepEqual(fileReferences(withData('data.raw'), IMG), [{ field: 'format-specific.data.data-file', file: 'data.raw' }]);
    assert.deepEqual(fileReferences(withData('/dev/sda'), IMG), [{ field: 'format-specific.data.data-file', file: '/dev/sda' }]);
  });

  test('VMDK extents: the image itself is fine, any other file is not', () => {
    const vmdk = (extents: Array<{ filename: string }>) => ({ filename: '/x/d.vmdk', format: 'vmdk', 'format-specific': { type: 'vmdk', data: { 'create-type': 'monolithicSparse', extents } } });
    assert.deepEqual(fileReferences(vmdk([{ filename: '/x/d.vmdk' }]), '/x/d.vmdk'), []);
    assert.deepEqual(fileReferences(vmdk([{ filename: 'd.vmdk' }]), '/x/d.vmdk'), [], 'relative to the image folder is the image');
    assert.deepEqual(fileReferences(vmdk([{ filename: '/x/d.vmdk' }, { filename: 'd-s002.vmdk' }]), '/x/d.vmdk'), [
      { field: 'format-specific.data.extents[1].filename', file: 'd-s002.vmdk' },
    ]);
  });

  test('children of newer QEMU: the file child is the image, a data-file child is not', () => {
    const info = {
      ...clean,
      children: [
        { name: 'file', info: { filename: IMG, format: 'file', 'format-specific': { type: 'file', data: {} } } },
        { name: 'data-file', info: { filename: '/home/u/.ssh/id_ed25519', format: 'file' } },
      ],
    };
    assert.deepEqual(fileReferences(info, IMG), [{ field: 'children[1].info.filename', file: '/home/u/.ssh/id_ed25519' }]);
  });

  test('any other field named like a file is refused: the walk is generic', () => {
    assert.deepEqual(fileReferences({ ...clean, 'format-specific': { type: 'future', data: { 'parent-file': '/etc/hosts', 'journal-filename': 'j.log' } } }, IMG), [
      { field: 'format-specific.data.parent-file', file: '/etc/hosts' },
      { field: 'format-specific.data.journal-filename', file: 'j.log' },
    ]);
  });

  test('a json: pseudo-path is the image only when every file inside it is the image', () => {
    const ova = '/c/x.ova';
    const window = `json:${JSON.stringify({ driver: 'vmdk', file: { driver: 'raw', offset: 1536, size: 65536, file: { driver: 'file', filename: ova } } })}`;
    assert.equal(isSelf(window, ova), true);
    assert.equal(isSelf(`json:${JSON.stringify({ driver: 'raw', file: { driver: 'file', filename: '/etc/passwd' } })}`, ova), false);
    assert.equal(isSelf('json:{broken', ova), false);
    assert.equal(isSelf('json:{}', ova), false, 'names no file at all: not provably the image');
    assert.deepEqual(fileReferences({ filename: window, format: 'vmdk', 'format-specific': { type: 'vmdk', data: { extents: [{ filename: window }] } } }, ova), []);
  });

  test('output that is not an object names nothing (qemu-img failing is handled before this)', () => {
    assert.deepEqual(fileReferences(null, IMG), []);
    assert.deepEqual(fileReferences('text', IMG), []);
  });
});

describe('VMDK text descriptors and OVF', () => {
  test('extent lines and the parent hint of a descriptor', () => {
    const descriptor = [
      '# Disk DescriptorFile', 'version=1', 'CID=12345678', 'parentCID=ffffffff', 'createType="monolithicFlat"',
      'parentFileNameHint="/var/lib/base.vmdk"',
      '', '# Extent description', 'RW 2048 FLAT "flat-flat.vmdk" 0', 'RDONLY 100 FLAT "/etc/shadow" 0', 'RW 100 ZERO',
    ].join('\n');
    assert.deepEqual(vmdkDescriptorReferences(descriptor), [
      { field: 'VMDK extent', file: 'flat-flat.vmdk' },
      { field: 'VMDK extent', file: '/etc/shadow' },
      { field: 'VMDK extent', file: undefined },
      { field: 'parentFileNameHint', file: '/var/lib/base.vmdk' },
    ]);
  });

  test('OVF hrefs must be plain members of the archive', () => {
    const members = new Set(['disk1.vmdk', 'appliance.ovf']);
    const ovf = (href: string) => `<Envelope><References><ovf:File ovf:href="${href}" ovf:id="f"/></References></Envelope>`;
    assert.deepEqual(ovfForeignReferences(ovf('disk1.vmdk'), members), []);
    assert.deepEqual(ovfForeignReferences(`<References><File href='disk1.vmdk'/></References>`, members), []);
    for (const bad of ['/etc/passwd', '../disk1.vmdk', 'sub/disk1.vmdk', 'C:\\disk.vmdk', 'http://127.0.0.1/disk.vmdk', 'file:///etc/passwd', 'missing.vmdk', '&#47;etc&#47;passwd']) {
      assert.equal(ovfForeignReferences(ovf(bad), members).length, 1, bad);
    }
    assert.deepEqual(ovfForeignReferences(ovf('&#47;etc&#47;passwd'), members), [{ field: 'OVF File href', file: '/etc/passwd' }], 'entities are decoded before the check');
  });
});
