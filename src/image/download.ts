import { createHash } from 'node:crypto';
import type { Hash } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdir, rename, rm, stat } from 'node:fs/promises';
import { dirname } from 'node:path';
import { Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import got from 'got';
import { readJsonIfExists, writeJsonAtomic } from '../profile/atomic.ts';
import { DevclusterError, isDevclusterError } from '../ui/errors.ts';
import { logLine } from '../ui/context.ts';
import './errors.ts';
import { RateMeter, eta, formatBytes } from './progress.ts';
import type { ProgressCallback } from './progress.ts';
import { ProxyRefusedError, agentsFor } from './proxy.ts';
import type { ProxyChoice } from './proxy.ts';

/**
 * One verified download: bytes stream into a part file while sha256 is
 * computed in the same pass; only a file whose digest matches is renamed to
 * its destination. An interrupted download resumes with an HTTP Range request
 * guarded by If-Range, so a file that changed on the server is fetched again
 * from zero instead of being spliced.
 */
export interface DownloadOptions {
  readonly url: string;
  /** Expected sha256, 64 lowercase hex characters. */
  readonly sha256: string;
  /** Where the verified file ends up (renamed there; the parent is created). */
  readonly destination: string;
  /** Where partial bytes live between attempts and runs; `<partPath>.json` holds the validator. */
  readonly partPath: string;
  /** Expected size in bytes (e.g. from the catalog): a server offering another size is refused early. */
  readonly expectedSize?: number;
  readonly signal?: AbortSignal;
  readonly onProgress?: ProgressCallback;
  /** Least time between progress callbacks (the final one is always sent). Default 200 ms. */
  readonly progressIntervalMs?: number;
  /** Retries after failed attempts (resets, timeouts, stalls, 5xx). Default 5; 4xx is never retried. */
  readonly retries?: number;
  /** Delay before the first retry, doubled for each further one. Default 1000 ms. */
  readonly backoffMs?: number;
  /** Upper bound of the retry delay. Default 30 s. */
  readonly maxBackoffMs?: number;
  /** An attempt that receives no byte for this long (headers included) is abandoned and retried. Default 30 s. */
  readonly stallTimeoutMs?: number;
  /** Environment for the proxy variables. Default process.env. */
  readonly env?: NodeJS.ProcessEnv;
  /** Extra trusted CA certificates (PEM), e.g. for a TLS-intercepting proxy. */
  readonly ca?: string | Buffer | ReadonlyArray<string | Buffer>;
}

export interface DownloadResult {
  readonly path: string;
  readonly sha256: string;
  readonly size: number;
  /** HTTP requests made, all attempts included. */
  readonly requests: number;
  /** Body bytes received over the network by this call. */
  readonly bytesTransferred: number;
  /** Bytes of an earlier partial download that were kept (0 when none). */
  readonly resumedFrom: number;
  readonly durationMs: number;
}

interface PartMeta {
  url: string;
  etag?: string;
  lastModified?: string;
  total?: number;
}

interface PartState {
  offset: number;
  meta: PartMeta | undefined;
}

const DEFAULTS = {
  retries: 5,
  backoffMs: 1000,
  maxBackoffMs: 30_000,
  stallTimeoutMs: 30_000,
  progressIntervalMs: 200,
};

/** An attempt ended without a usable response; `retryable` says whether trying again can help. */
class AttemptError extends Error {
  readonly retryable: boolean;
  readonly status: number | undefined;
  readonly retryAfterMs: number | undefined;
  constructor(message: string, retryable: boolean, extra: { status?: number; retryAfterMs?: number; cause?: unknown } = {}) {
    super(message, extra.cause === undefined ? undefined : { cause: extra.cause });
    this.name = 'AttemptError';
    this.retryable = retryable;
    this.status = extra.status;
    this.retryAfterMs = extra.retryAfterMs;
  }
}

/** The body or the server asked to start over: not a failure, no retry counted. */
class RestartSignal extends Error {
  constructor(reason: string) {
    super(reason);
    this.name = 'RestartSignal';
  }
}

const FATAL_CODES = new Set([
  'ENOTFOUND',
  'CERT_HAS_EXPIRED', 'DEPTH_ZERO_SELF_SIGNED_CERT', 'SELF_SIGNED_CERT_IN_CHAIN', 'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY', 'ERR_TLS_CERT_ALTNAME_INVALID', 'CERT_NOT_YET_VALID',
  'ERR_INVALID_URL', 'ERR_UNSUPPORTED_PROTOCOL',
]);
const LOCAL_FILE_ERRORS: Readonly<Record<string, string>> = {
  ENOSPC: 'HOST_DISK_FULL',
  EDQUOT: 'HOST_DISK_FULL',
  EACCES: 'HOST_PERMISSION_DENIED',
  EPERM: 'HOST_PERMISSION_DENIED',
  EROFS: 'HOST_PERMISSION_DENIED',
};

function errorCode(e: unknown): string | undefined {
  let current: unknown = e;
  for (let i = 0; i < 4 && current instanceof Error; i += 1) {
    const code = (current as NodeJS.ErrnoException).code;
    if (typeof code === 'string' && code !== 'ERR_GOT_REQUEST_ERROR') return code;
    current = current.cause;
  }
  return undefined;
}

function parseContentRange(header: string | undefined): { start: number; end: number; total: number | undefined } | undefined {
  const m = /^bytes (\d+)-(\d+)\/(\d+|\*)$/.exec((header ?? '').trim());
  if (m === null) return undefined;
  return { start: Number(m[1]), end: Number(m[2]), total: m[3] === '*' ? undefined : Number(m[3]) };
}

function retryAfterMs(header: string | undefined): number | undefined {
  if (header === undefined) return undefined;
  if (/^\d+$/.test(header.trim())) return Number(header.trim()) * 1000;
  const date = Date.parse(header);
  return Number.isNaN(date) ? undefined : Math.max(0, date - Date.now());
}

function isStrongEtag(etag: string | undefined): etag is string {
  return etag !== undefined && etag !== '' && !etag.startsWith('W/');
}

/** The If-Range value for a resume; undefined means the part cannot be resumed safely. */
function validatorOf(meta: PartMeta | undefined): string | undefined {
  if (meta === undefined) return undefined;
  if (isStrongEtag(meta.etag)) return meta.etag;
  return meta.lastModified;
}

async function fileSize(path: string): Promise<number> {
  try {
    return (await stat(path)).size;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return 0;
    throw e;
  }
}

async function discardPart(partPath: string): Promise<void> {
  await rm(partPath, { force: true });
  await rm(`${partPath}.json`, { force: true });
}

/** What is kept from an earlier attempt: the part's bytes, if they can be resumed against this URL. */
async function loadPart(partPath: string, url: string): Promise<PartState> {
  const size = await fileSize(partPath);
  let meta: PartMeta | undefined;
  try {
    meta = (await readJsonIfExists(`${partPath}.json`)) as PartMeta | undefined;
  } catch {
    meta = undefined;
  }
  if (size === 0) return { offset: 0, meta: undefined };
  const usable = meta !== undefined && meta.url === url && validatorOf(meta) !== undefined && (meta.total === undefined || size <= meta.total);
  if (!usable) {
    await discardPart(partPath);
    return { offset: 0, meta: undefined };
  }
  return { offset: size, meta };
}

async function hashPrefix(hash: Hash, path: string, length: number): Promise<void> {
  if (length === 0) return;
  const stream = createReadStream(path, { start: 0, end: length - 1, highWaterMark: 1024 * 1024 });
  for await (const chunk of stream) hash.update(chunk as Buffer);
}

function abortReason(signal: AbortSignal): DevclusterError {
  const reason: unknown = signal.reason;
  if (isDevclusterError(reason)) return reason;
  return new DevclusterError('INTERRUPTED', 'the download was cancelled', { cause: reason });
}

interface AttemptOutcome {
  digest: string;
  size: number;
  transferred: number;
  /** True when the bytes came partly from an earlier attempt. */
  spliced: boolean;
}

interface Counters {
  requests: number;
  transferred: number;
}

function describeUrl(url: string): string {
  try {
    const u = new URL(url);
    u.username = '';
    u.password = '';
    u.search = '';
    return u.toString();
  } catch {
    return url;
  }
}

class Downloader {
  private readonly o: DownloadOptions;
  private readonly interval: number;
  private readonly meter = new RateMeter();
  private readonly agents: ReturnType<typeof agentsFor>;
  private lastProgressAt = -Infinity;
  private resumedFrom = 0;

  constructor(options: DownloadOptions) {
    this.o = options;
    this.interval = options.progressIntervalMs ?? DEFAULTS.progressIntervalMs;
    this.agents = agentsFor(new URL(options.url), options.env ?? process.env, options.ca === undefined ? {} : { ca: options.ca as string });
  }

  get proxy(): ProxyChoice | undefined {
    return this.agents.choice;
  }

  progress(bytes: number, total: number | undefined, done: boolean): void {
    const now = performance.now();
    if (!done && now - this.lastProgressAt < this.interval) return;
    this.lastProgressAt = now;
    const rate = this.meter.sample(bytes, now);
    this.o.onProgress?.({ bytes, total, rate, eta: done ? 0 : eta(bytes, total, rate), resumedFrom: this.resumedFrom, done });
  }

  /** One HTTP request: resumes from the part when it can, streams, hashes, checks the length. */
  async attempt(part: PartState, counters: Counters, signal: AbortSignal | undefined): Promise<AttemptOutcome> {
    const { url, partPath } = this.o;
    let hash = createHash('sha256');
    let offset = part.offset;
    // A complete part left by a run that stopped before verifying needs no request.
    if (offset > 0 && part.meta?.total === offset) {
      await hashPrefix(hash, partPath, offset);
      this.resumedFrom = offset;
      return { digest: hash.digest('hex'), size: offset, transferred: 0, spliced: true };
    }
    const headers: Record<string, string> = {
      'accept-encoding': 'identity',
      'user-agent': 'devcluster',
    };
    const validator = validatorOf(part.meta);
    if (offset > 0 && validator !== undefined) {
      headers['range'] = `bytes=${offset}-`;
      headers['if-range'] = validator;
      // Hashed before the request, so a long prefix cannot look like a stalled connection.
      await hashPrefix(hash, partPath, offset);
    }

    const controller = new AbortController();
    const onAbort = () => controller.abort(signal?.reason);
    signal?.addEventListener('abort', onAbort, { once: true });
    let stalled = false;
    const stallMs = this.o.stallTimeoutMs ?? DEFAULTS.stallTimeoutMs;
    let stallTimer: NodeJS.Timeout | undefined;
    const armStall = () => {
      clearTimeout(stallTimer);
      stallTimer = setTimeout(() => {
        stalled = true;
        controller.abort(new Error('stalled'));
      }, stallMs);
    };

    counters.requests += 1;
    armStall();
    const request = got.stream(url, {
      headers,
      decompress: false,
      retry: { limit: 0 },
      throwHttpErrors: false,
      signal: controller.signal,
      ...(this.agents.agent === undefined ? {} : { agent: this.agents.agent }),
      ...(this.o.ca === undefined ? {} : { https: { certificateAuthority: this.o.ca as string } }),
    });
    let transferred = 0;
    let metaWritten: Promise<void> = Promise.resolve();
    try {
      const response = await new Promise<{ statusCode: number; headers: Record<string, string | string[] | undefined> }>((resolve, reject) => {
        request.once('response', resolve);
        request.once('error', reject);
      });
      armStall();
      const status = response.statusCode;
      const header = (name: string) => {
        const v = response.headers[name];
        return Array.isArray(v) ? v[0] : v;
      };
      let total: number | undefined;
      if (status === 206 && headers['range'] !== undefined) {
        const range = parseContentRange(header('content-range'));
        const etag = header('etag');
        const lastModified = header('last-modified');
        if (range === undefined || range.start !== offset) throw new RestartSignal(`the server answered the range request with ${header('content-range') ?? 'no Content-Range'}`);
        if ((part.meta?.etag !== undefined && etag !== undefined && etag !== part.meta.etag)
          || (part.meta?.etag === undefined && part.meta?.lastModified !== undefined && lastModified !== undefined && lastModified !== part.meta.lastModified)) {
          throw new RestartSignal('the file changed on the server since the partial download');
        }
        total = range.total;
        this.resumedFrom = offset;
        logLine('info', `download: resuming ${describeUrl(url)} at ${offset} bytes`);
      } else if (status === 200) {
        if (offset > 0) logLine('info', `download: ${describeUrl(url)} answered the range request with the whole file; starting from zero`);
        offset = 0;
        hash = createHash('sha256');
        this.resumedFrom = 0;
        const length = header('content-length');
        total = length !== undefined && /^\d+$/.test(length) ? Number(length) : undefined;
      } else if (status === 416) {
        throw new RestartSignal('the server cannot serve the remaining range');
      } else {
        const retryable = status === 408 || status === 429 || status >= 500;
        const after = retryAfterMs(header('retry-after'));
        throw new AttemptError(`HTTP ${status}`, retryable, { status, ...(after === undefined ? {} : { retryAfterMs: after }) });
      }
      if (this.o.expectedSize !== undefined && total !== undefined && total !== this.o.expectedSize) {
        throw new DevclusterError('IMAGE_CHECKSUM_MISMATCH', `${describeUrl(url)} is ${total} bytes but ${this.o.expectedSize} were expected`, {
          advice: 'The server (or DEVCLUSTER_IMAGE_MIRROR) offers a different file than the catalog pins; nothing was downloaded.',
          details: { url: describeUrl(url), size: total, expectedSize: this.o.expectedSize },
        });
      }
      // No await between the response and the pipeline: a body that arrives
      // with its connection's end must be read before the stream is torn down.
      // The validator is written alongside; a crash before it lands leaves a
      // part without one, which the next run discards.
      const meta: PartMeta = {
        url,
        ...(header('etag') === undefined ? {} : { etag: header('etag') as string }),
        ...(header('last-modified') === undefined ? {} : { lastModified: header('last-modified') as string }),
        ...(total === undefined ? {} : { total }),
      };
      metaWritten = writeJsonAtomic(`${partPath}.json`, meta).catch((e: unknown) => {
        logLine('warn', `download: cannot record the validator in ${partPath}.json: ${(e as Error).message}`);
      });

      let bytes = offset;
      this.meter.reset();
      this.progress(bytes, total, false);
      const counter = new Transform({
        transform: (chunk: Buffer, _encoding, callback) => {
          armStall();
          hash.update(chunk);
          bytes += chunk.length;
          transferred += chunk.length;
          counters.transferred += chunk.length;
          this.progress(bytes, total, false);
          callback(null, chunk);
        },
      });
      const out = createWriteStream(partPath, { flags: offset > 0 ? 'r+' : 'w', start: offset, flush: true, highWaterMark: 1024 * 1024 });
      await pipeline(request, counter, out);
      if (total !== undefined && bytes !== total) {
        throw new AttemptError(`the connection ended after ${bytes} of ${total} bytes`, true);
      }
      return { digest: hash.digest('hex'), size: bytes, transferred, spliced: offset > 0 };
    } catch (e) {
      request.destroy();
      if (signal?.aborted === true) throw abortReason(signal);
      if (stalled) throw new AttemptError(`no data for ${Math.round(stallMs / 100) / 10}s (stalled)`, true, { cause: e });
      if (e instanceof AttemptError || e instanceof RestartSignal || isDevclusterError(e)) throw e;
      const code = errorCode(e);
      if (code !== undefined && code in LOCAL_FILE_ERRORS) {
        throw new DevclusterError(LOCAL_FILE_ERRORS[code] as string, `cannot write ${partPath}: ${(e as Error).message}`, { cause: e });
      }
      if (e instanceof ProxyRefusedError || (e instanceof Error && e.cause instanceof ProxyRefusedError)) {
        const refused = e instanceof ProxyRefusedError ? e : (e.cause as ProxyRefusedError);
        throw new AttemptError(refused.message, refused.statusCode >= 500, { status: refused.statusCode, cause: e });
      }
      throw new AttemptError(`${code ?? 'error'}: ${(e as Error).message}`, code === undefined || !FATAL_CODES.has(code), { cause: e });
    } finally {
      clearTimeout(stallTimer);
      signal?.removeEventListener('abort', onAbort);
      await metaWritten;
    }
  }

  async run(): Promise<DownloadResult> {
    const o = this.o;
    const started = performance.now();
    const retries = o.retries ?? DEFAULTS.retries;
    const counters: Counters = { requests: 0, transferred: 0 };
    let failures = 0;
    let restarts = 0;
    let freshRetryUsed = false;
    let furthest = 0;
    await mkdir(dirname(o.partPath), { recursive: true });
    for (;;) {
      if (o.signal?.aborted === true) throw abortReason(o.signal);
      const part = await loadPart(o.partPath, o.url);
      let outcome: AttemptOutcome;
      try {
        outcome = await this.attempt(part, counters, o.signal);
      } catch (e) {
        if (e instanceof RestartSignal) {
          restarts += 1;
          logLine('info', `download: ${e.message}; starting from zero`);
          await discardPart(o.partPath);
          if (restarts > retries + 1) throw this.failure(new AttemptError(`${e.message} (again after ${restarts} restarts)`, false), counters);
          continue;
        }
        if (!(e instanceof AttemptError)) {
          if (isDevclusterError(e) && e.id === 'IMAGE_CHECKSUM_MISMATCH') await discardPart(o.partPath);
          throw e;
        }
        if (!e.retryable) {
          await discardPart(o.partPath);
          throw this.failure(e, counters);
        }
        // Progress that a resume keeps is not a failure of the connection as a whole.
        const kept = (await loadPart(o.partPath, o.url)).offset;
        if (kept > furthest) failures = 0;
        furthest = Math.max(furthest, kept);
        failures += 1;
        if (failures > retries) throw this.failure(e, counters);
        const delay = Math.min(o.maxBackoffMs ?? DEFAULTS.maxBackoffMs, e.retryAfterMs ?? (o.backoffMs ?? DEFAULTS.backoffMs) * 2 ** (failures - 1));
        const jittered = Math.round(delay * (0.8 + Math.random() * 0.4));
        logLine('warn', `download: ${describeUrl(o.url)}: ${e.message}; retry ${failures} of ${retries} in ${jittered} ms`);
        try {
          await sleep(jittered, undefined, o.signal === undefined ? {} : { signal: o.signal });
        } catch {
          throw abortReason(o.signal as AbortSignal);
        }
        continue;
      }
      if (outcome.digest !== o.sha256) {
        await discardPart(o.partPath);
        if (outcome.spliced && !freshRetryUsed) {
          // Bytes from two attempts may not belong together; one clean download decides.
          freshRetryUsed = true;
          logLine('warn', `download: ${describeUrl(o.url)}: resumed file has sha256 ${outcome.digest}; downloading it again from zero`);
          continue;
        }
        throw new DevclusterError('IMAGE_CHECKSUM_MISMATCH', `${describeUrl(o.url)} has sha256 ${outcome.digest}, expected ${o.sha256}`, {
          advice: 'The file on the server is not the one expected: check the URL and --image-sha256 (or the mirror). Nothing was cached.',
          details: { url: describeUrl(o.url), sha256: outcome.digest, expected: o.sha256, size: outcome.size },
        });
      }
      await mkdir(dirname(o.destination), { recursive: true });
      await rename(o.partPath, o.destination);
      await rm(`${o.partPath}.json`, { force: true });
      this.progress(outcome.size, outcome.size, true);
      return {
        path: o.destination,
        sha256: outcome.digest,
        size: outcome.size,
        requests: counters.requests,
        bytesTransferred: counters.transferred,
        resumedFrom: this.resumedFrom,
        durationMs: Math.round(performance.now() - started),
      };
    }
  }

  private failure(e: AttemptError, counters: Counters): DevclusterError {
    const url = describeUrl(this.o.url);
    const via = this.proxy === undefined ? '' : ` via proxy ${this.proxy.proxy.host} (${this.proxy.variable})`;
    const details = { url, requests: counters.requests, bytesTransferred: counters.transferred, ...(e.status === undefined ? {} : { status: e.status }) };
    if (e.status !== undefined && e.status >= 400 && e.status < 500 && !e.retryable) {
      const proxyAuth = e.status === 407;
      return new DevclusterError('IMAGE_DOWNLOAD_REJECTED', `${url}${via}: the server answered ${e.message.startsWith('HTTP') ? e.message : `HTTP ${e.status}`}`, {
        advice: proxyAuth
          ? 'The proxy needs credentials: put them in the proxy URL (http://user:password@host:port).'
          : e.status === 404 ? 'The file is not there: check the URL (and DEVCLUSTER_IMAGE_MIRROR).' : 'Check the URL and that you may download it.',
        details,
        cause: e,
      });
    }
    return new DevclusterError('IMAGE_DOWNLOAD_FAILED', `downloading ${url}${via} failed: ${e.message}`, {
      advice: this.proxy === undefined
        ? `Check the network connection and run the command again; it resumes where it stopped${counters.transferred > 0 ? ` (${formatBytes(counters.transferred)} received so far)` : ''}. Offline? Use --offline with an image already in the cache.`
        : `Check the proxy in ${this.proxy.variable} (or add the host to NO_PROXY) and run the command again; it resumes where it stopped.`,
      details,
      cause: e,
    });
  }
}

/** Downloads `url` to `destination` if and only if its bytes have the expected sha256. */
export async function download(options: DownloadOptions): Promise<DownloadResult> {
  if (!/^[0-9a-f]{64}$/.test(options.sha256)) throw new Error(`download: sha256 must be 64 lowercase hex characters, got ${options.sha256}`);
  return new Downloader(options).run();
}
