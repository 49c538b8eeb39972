import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Ajv } from 'ajv';
import { parseCatalog } from '../../src/image/catalog.ts';
import { DevclusterError } from '../../src/ui/errors.ts';
import { REPO } from '../helpers/cli.ts';

// Reading the shipped catalog and its schema is this test's fixture, not I/O under test.
const catalog = JSON.parse(readFileSync(join(REPO, 'images', 'catalog.json'), 'utf8')) as Record<string, unknown>;
const schema = JSON.parse(readFileSync(join(REPO, 'images', 'catalog.schema.json'), 'utf8')) as Record<string, unknown>;
const validate = new Ajv({ allErrors: true, strict: true, allowUnionTypes: true }).compile(schema);

function clone<T>(v: T): T {
  return JSON.parse(JSON.stringify(v)) as T;
}

type Doc = { images: Array<Record<string, unknown> & { formats: Record<string, Record<string, unknown>> }> } & Record<string, unknown>;

test('the shipped catalog passes the JSON schema', () => {
  assert.equal(validate(catalog), true, JSON.stringify(validate.errors, null, 2));
});

test('the shipped catalog passes the runtime check and names the two guest images', () => {
  const parsed = parseCatalog(catalog);
  assert.deepEqual(parsed.images.map((i) => i.name), ['photon-5', 'debian-12']);
  assert.deepEqual(parsed.images.map((i) => i.recipe), ['photon', 'debian']);
});

test('photon-5 is honestly unpublished: every planned format is listed with null url, sha256 and size', () => {
  const photon = parseCatalog(catalog).images.find((i) => i.name === 'photon-5');
  assert.equal(photon?.published, false);
  assert.deepEqual(Object.keys(photon?.formats ?? {}).sort(), ['initrd', 'kernel', 'ova', 'qcow2', 'raw', 'vhdx', 'vmdk']);
  for (const artifact of Object.values(photon?.formats ?? {})) assert.deepEqual(artifact, { url: null, sha256: null, size: null });
});

test('debian-12 is built locally: no formats in the catalog', () => {
  const debian = parseCatalog(catalog).images.find((i) => i.name === 'debian-12');
  assert.equal(debian?.published, false);
  assert.deepEqual(debian?.formats, {});
  assert.match(debian?.kernelCmdline ?? '', /root=LABEL=devcluster-root/);
});

const published = (): Doc => {
  const doc = clone(catalog) as Doc;
  const image = doc.images[0] as Doc['images'][number];
  image['published'] = true;
  image.formats = {
    qcow2: { url: `${String(doc['downloadBase'])}photon-5/photon-5.qcow2`, sha256: 'a'.repeat(64), size: 123 },
    kernel: { url: `${String(doc['downloadBase'])}photon-5/vmlinuz`, sha256: 'b'.repeat(64), size: 12 },
    initrd: { url: `${String(doc['downloadBase'])}photon-5/initrd`, sha256: 'c'.repeat(64), size: 13 },
  };
  return doc;
};

test('a published image with complete artifacts is accepted by both checks', () => {
  const doc = published();
  assert.equal(validate(doc), true, JSON.stringify(validate.errors));
  assert.equal(parseCatalog(doc).images[0]?.formats.qcow2?.size, 123);
});

const BROKEN: Array<[string, (doc: Doc) => void]> = [
  ['a published artifact without a digest', (d) => {
    (d.images[0] as Doc['images'][number]).formats['qcow2'] = { url: 'https://x/y.qcow2', sha256: null, size: 1 };
  }],
  ['an upper-case digest', (d) => {
    ((d.images[0] as Doc['images'][number]).formats['qcow2'] as Record<string, unknown>)['sha256'] = 'A'.repeat(64);
  }],
  ['a zero size', (d) => {
    ((d.images[0] as Doc['images'][number]).formats['qcow2'] as Record<string, unknown>)['size'] = 0;
  }],
  ['an unknown format', (d) => {
    (d.images[0] as Doc['images'][number]).formats['iso'] = { url: 'https://x/y.iso', sha256: 'a'.repeat(64), size: 1 };
  }],
  ['a kernel without an initrd', (d) => {
    delete (d.images[0] as Doc['images'][number]).formats['initrd'];
  }],
  ['an unknown key', (d) => {
    (d.images[0] as Doc['images'][number])['checksum'] = 'x';
  }],
  ['an upper-case name', (d) => {
    (d.images[0] as Doc['images'][number])['name'] = 'Photon-5';
  }],
  ['another schema version', (d) => {
    d['schemaVersion'] = 2;
  }],
];

for (const [what, breakIt] of BROKEN) {
  test(`rejected by the schema and the runtime check: ${what}`, () => {
    const doc = published();
    breakIt(doc);
    assert.equal(validate(doc), false, 'the schema rejects it');
    assert.throws(() => parseCatalog(doc), (e: unknown) => e instanceof DevclusterError && e.id === 'IMAGE_CATALOG_INVALID');
  });
}

test('an unpublished image may not carry a URL', () => {
  const doc = clone(catalog) as Doc;
  ((doc.images[0] as Doc['images'][number]).formats['qcow2'] as Record<string, unknown>)['url'] = 'https://example.com/x.qcow2';
  assert.equal(validate(doc), false);
  assert.throws(() => parseCatalog(doc), /unpublished image has url, sha256 and size null/);
});

test('runtime-only rules: duplicate names, URLs outside the download base', () => {
  const dup = clone(catalog) as Doc;
  (dup.images[1] as Doc['images'][number])['name'] = 'photon-5';
  assert.throws(() => parseCatalog(dup), /duplicate name/);
  const outside = published();
  ((outside.images[0] as Doc['images'][number]).formats['qcow2'] as Record<string, unknown>)['url'] = 'https://elsewhere.example/x.qcow2';
  assert.throws(() => parseCatalog(outside), /must start with downloadBase/);
});
