import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import type { FileHandle } from 'node:fs/promises';
import { writeFileAtomicWith } from '../profile/atomic.ts';
import { layoutIso } from './iso9660.ts';

export interface IsoSourceFile {
  /** Name at the image's root (see IsoFile). */
  name: string;
  /** The host file whose bytes the image carries. */
  source: string;
  mode?: number;
  /** Expected sha256 of the source: a mismatch fails the write before the image replaces anything. */
  sha256?: string;
}

/** A source file whose bytes were not the ones expected (IsoSourceFile.sha256). */
export class IsoSourceMismatch extends Error {
  readonly mismatches: ReadonlyArray<{ source: string; expected: string; actual: string }>;

  constructor(mismatches: ReadonlyArray<{ source: string; expected: string; actual: string }>) {
    super(`${mismatches.length} source file(s) differ from their expected sha256`);
    this.mismatches = mismatches;
  }
}

export interface IsoFileOptions {
  volumeId: string;
  files: readonly IsoSourceFile[];
  date?: Date;
  signal?: AbortSignal;
}

export interface WrittenIso {
  size: number;
  sha256: string;
  /** Each file's sha256 as it was copied, in the order given. */
  fileSha256: string[];
}

/** Writes at increasing offsets and hashes every byte of the image on the way. */
class ImageSink {
  private readonly hash = createHash('sha256');
  private readonly handle: FileHandle;
  position = 0;

  constructor(handle: FileHandle) {
    this.handle = handle;
  }

  async write(bytes: Uint8Array): Promise<void> {
    let done = 0;
    while (done < bytes.length) {
      const { bytesWritten } = await this.handle.write(bytes, done, bytes.length - done, this.position + done);
      done += bytesWritten;
    }
    this.hash.update(bytes);
    this.position += bytes.length;
  }

  async padTo(offset: number): Promise<void> {
    if (offset > this.position) await this.write(new Uint8Array(offset - this.position));
  }

  digest(): string {
    return this.hash.digest('hex');
  }
}

/**
 * Writes an ISO9660 image whose files are read from the host as it goes, for
 * media too large to build in memory (the node bundle). Atomic: readers see
 * the old image or the whole new one. A source that changes size while it is
 * copied fails the write.
 */
export async function writeIsoFile(path: string, options: IsoFileOptions): Promise<WrittenIso> {
  const sizes = await Promise.all(options.files.map(async (f) => (await stat(f.source)).size));
  const layout = layoutIso({
    volumeId: options.volumeId,
    entries: options.files.map((f, i) => ({ name: f.name, size: sizes[i] as number, ...(f.mode === undefined ? {} : { mode: f.mode }) })),
    ...(options.date === undefined ? {} : { date: options.date }),
  });
  let sha256 = '';
  const fileSha256: string[] = [];
  await writeFileAtomicWith(path, async (handle) => {
    const sink = new ImageSink(handle);
    await sink.write(layout.head);
    for (const [i, f] of options.files.entries()) {
      await sink.padTo(layout.offsets[i] as number);
      const start = sink.position;
      const hash = createHash('sha256');
      for await (const chunk of createReadStream(f.source, { highWaterMark: 1 << 20, ...(options.signal === undefined ? {} : { signal: options.signal }) })) {
        hash.update(chunk as Buffer);
        await sink.write(chunk as Buffer);
      }
      if (sink.position - start !== sizes[i]) throw new Error(`${f.source} changed size while it was written into ${path}`);
      fileSha256.push(hash.digest('hex'));
    }
    await sink.padTo(layout.size);
    const mismatches = options.files.flatMap((f, i) => (f.sha256 === undefined || f.sha256 === fileSha256[i] ? [] : [{ source: f.source, expected: f.sha256, actual: fileSha256[i] ?? '' }]));
    if (mismatches.length > 0) throw new IsoSourceMismatch(mismatches);
    sha256 = sink.digest();
  });
  return { size: layout.size, sha256, fileSha256 };
}
