import { test } from 'node:test';
import assert from 'node:assert/strict';
import { formatMiB, parseSizeMiB } from '../../src/profile/units.ts';

test('sizes in every accepted form become MiB', () => {
  const cases: Array<[string, number]> = [
    ['4096', 4096], ['4g', 4096], ['4G', 4096], ['4GiB', 4096], ['4gb', 4096], ['512mb', 512], ['512M', 512],
    ['1.5g', 1536], ['1t', 1024 * 1024], [' 8g ', 8192], ['2097152k', 2048],
  ];
  for (const [text, mib] of cases) assert.equal(parseSizeMiB(text), mib, text);
});

test('non-sizes, zero, negatives and fractional MiB are rejected', () => {
  for (const text of ['abc', '0', '0g', '-1', '-4g', '4x', '4 g b', '', '1.3m', '4gigs', '0x10', '1e3']) {
    assert.equal(parseSizeMiB(text), undefined, text);
  }
});

test('sizes print in the largest whole binary unit', () => {
  assert.equal(formatMiB(4096), '4GiB');
  assert.equal(formatMiB(1536), '1536MiB');
  assert.equal(formatMiB(1024 * 1024), '1TiB');
});
