/**
 * Size parsing for memory and disk flags. A bare number means MiB, as in
 * minikube (`--memory 4096`); suffixes are case-insensitive and binary
 * (`4g`, `4GiB` and `4gb` are all 4096 MiB: VM sizes are binary in practice).
 */
const UNIT_MIB: Readonly<Record<string, number>> = {
  '': 1,
  k: 1 / 1024, kb: 1 / 1024, kib: 1 / 1024,
  m: 1, mb: 1, mib: 1,
  g: 1024, gb: 1024, gib: 1024,
  t: 1024 * 1024, tb: 1024 * 1024, tib: 1024 * 1024,
};

export const SIZE_FORMS = '4096 (MiB), 512mb, 4g, 4GiB, 1.5g, 1t';

/** MiB, or undefined when the text is not a size. Zero and negatives are not sizes. */
export function parseSizeMiB(text: string): number | undefined {
  const m = /^\s*(\d+(?:\.\d+)?)\s*([a-z]*)\s*$/i.exec(text);
  if (m === null) return undefined;
  const factor = UNIT_MIB[(m[2] ?? '').toLowerCase()];
  if (factor === undefined) return undefined;
  const mib = Number(m[1]) * factor;
  if (!Number.isFinite(mib) || mib <= 0 || !Number.isInteger(mib)) return undefined;
  return mib;
}

export function formatMiB(mib: number): string {
  if (mib % (1024 * 1024) === 0) return `${mib / 1024 / 1024}TiB`;
  if (mib % 1024 === 0) return `${mib / 1024}GiB`;
  return `${mib}MiB`;
}
