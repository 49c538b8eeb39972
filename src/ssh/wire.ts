/**
 * The SSH wire encoding (RFC 4251 section 5) for the few types keys use:
 * uint32 and length-prefixed strings.
 */

export function uint32(value: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(value >>> 0);
  return b;
}

export function sshString(data: string | Uint8Array): Buffer {
  const bytes = typeof data === 'string' ? Buffer.from(data, 'utf8') : Buffer.from(data);
  return Buffer.concat([uint32(bytes.length), bytes]);
}

/** Reads wire-encoded values in order; every read checks the bounds. */
export class WireReader {
  private offset = 0;
  private readonly data: Buffer;

  constructor(data: Uint8Array) {
    this.data = Buffer.from(data.buffer, data.byteOffset, data.byteLength);
  }

  get remaining(): number {
    return this.data.length - this.offset;
  }

  uint32(): number {
    if (this.remaining < 4) throw new Error('truncated (expected a uint32)');
    const v = this.data.readUInt32BE(this.offset);
    this.offset += 4;
    return v;
  }

  bytes(length: number): Buffer {
    if (this.remaining < length) throw new Error(`truncated (expected ${length} bytes, ${this.remaining} left)`);
    const v = this.data.subarray(this.offset, this.offset + length);
    this.offset += length;
    return v;
  }

  string(): Buffer {
    return this.bytes(this.uint32());
  }

  text(): string {
    return this.string().toString('utf8');
  }

  rest(): Buffer {
    return this.bytes(this.remaining);
  }
}
