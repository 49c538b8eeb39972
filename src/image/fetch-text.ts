import { setTimeout as sleep } from 'node:timers/promises';
import got from 'got';
import { agentsFor } from './proxy.ts';

/**
 * A small text file from a server: a published checksum, a release channel
 * such as stable.txt. Files whose digest is known beforehand go through
 * download() instead; this is for the ones that tell us what to expect.
 * Same proxy rules as download(); a size cap so a mirror that answers with
 * something large (an HTML page, the wrong file) is refused quickly.
 */
export interface FetchTextOptions {
  readonly signal?: AbortSignal;
  /** Environment for the proxy variables. Default process.env. */
  readonly env?: NodeJS.ProcessEnv;
  /** Default 64 KiB. */
  readonly maxBytes?: number;
  /** Per attempt, headers and body. Default 30 s. */
  readonly timeoutMs?: number;
  /** Further attempts after a connection failure or a 5xx answer. Default 2. */
  readonly retries?: number;
}

export type FetchText = (url: string, options?: FetchTextOptions) => Promise<string>;

/** Why a text could not be fetched; callers turn it into their own error ID. */
export class FetchTextError extends Error {
  /** The HTTP status when the server answered, undefined when it could not be reached. */
  readonly status: number | undefined;
  constructor(message: string, status: number | undefined, cause?: unknown) {
    super(message, cause === undefined ? undefined : { cause });
    this.name = 'FetchTextError';
    this.status = status;
  }
}

class TooLarge extends Error {}

function causeCode(e: unknown): string | undefined {
  let current: unknown = e;
  for (let i = 0; i < 4 && current instanceof Error; i += 1) {
    const code = (current as NodeJS.ErrnoException).code;
    if (typeof code === 'string' && !code.startsWith('ERR_GOT')) return code;
    current = current.cause;
  }
  return undefined;
}

async function attempt(url: string, options: FetchTextOptions, maxBytes: number): Promise<string> {
  const controller = new AbortController();
  const onAbort = () => controller.abort(options.signal?.reason);
  options.signal?.addEventListener('abort', onAbort, { once: true });
  const timer = setTimeout(() => controller.abort(new Error(`no complete answer within ${options.timeoutMs ?? 30_000} ms`)), options.timeoutMs ?? 30_000);
  const agents = agentsFor(new URL(url), options.env ?? process.env);
  try {
    const stream = got.stream(url, {
      headers: { 'user-agent': 'devcluster', 'accept-encoding': 'identity' },
      decompress: false,
      retry: { limit: 0 },
      throwHttpErrors: false,
      signal: controller.signal,
      ...(agents.agent === undefined ? {} : { agent: agents.agent }),
    });
    const status = await new Promise<number>((resolve, reject) => {
      stream.once('response', (r: { statusCode: number }) => resolve(r.statusCode));
      stream.once('error', reject);
    });
    if (status !== 200) {
      stream.destroy();
      throw new FetchTextError(`${url} answered HTTP ${status}`, status);
    }
    const chunks: Buffer[] = [];
    let size = 0;
    for await (const chunk of stream) {
      size += (chunk as Buffer).length;
      if (size > maxBytes) {
        stream.destroy();
        throw new TooLarge(`${url} is larger than ${maxBytes} bytes, so it is not the small text file expected`);
      }
      chunks.push(chunk as Buffer);
    }
    return Buffer.concat(chunks).toString('utf8');
  } finally {
    clearTimeout(timer);
    options.signal?.removeEventListener('abort', onAbort);
  }
}

function throwIfAborted(signal: AbortSignal | undefined): void {
  if (signal?.aborted === true) throw signal.reason;
}

/** The body of `url` as UTF-8 text; throws FetchTextError (or the abort reason when cancelled). */
export async function fetchText(url: string, options: FetchTextOptions = {}): Promise<string> {
  const maxBytes = options.maxBytes ?? 64 * 1024;
  const retries = options.retries ?? 2;
  for (let tries = 0; ; tries += 1) {
    throwIfAborted(options.signal);
    try {
      return await attempt(url, options, maxBytes);
    } catch (e) {
      throwIfAborted(options.signal);
      if (e instanceof TooLarge) throw new FetchTextError(e.message, 200);
      const status = e instanceof FetchTextError ? e.status : undefined;
      const retryable = status === undefined ? causeCode(e) !== 'ENOTFOUND' && causeCode(e) !== 'ERR_INVALID_URL' : status >= 500 || status === 408 || status === 429;
      if (!retryable || tries >= retries) {
        if (e instanceof FetchTextError) throw e;
        const code = causeCode(e);
        throw new FetchTextError(`${url} could not be reached: ${code === undefined ? (e as Error).message : `${code} (${(e as Error).message})`}`, undefined, e);
      }
      await sleep(500 * 2 ** tries, undefined, options.signal === undefined ? {} : { signal: options.signal }).catch(() => undefined);
    }
  }
}
