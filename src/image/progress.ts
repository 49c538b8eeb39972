/**
 * Download progress: the numbers (bytes, total, rate over a sliding window,
 * ETA) and the two ways of showing them: one line rewritten in place on a
 * terminal, and one line per 10% elsewhere (CI logs stay short and readable).
 */
export interface DownloadProgress {
  /** Bytes of the file on disk so far, including bytes kept from an earlier attempt. */
  readonly bytes: number;
  /** The full size when the server (or the catalog) says it; undefined otherwise. */
  readonly total: number | undefined;
  /** Bytes per second over the last few seconds. */
  readonly rate: number;
  /** Seconds left at the current rate; undefined without a total or a rate. */
  readonly eta: number | undefined;
  /** Bytes this download started from (resumed), 0 when from scratch. */
  readonly resumedFrom: number;
  readonly done: boolean;
}

export type ProgressCallback = (progress: DownloadProgress) => void;

/** Rate over a sliding window of samples, so a stall shows as a falling rate. */
export class RateMeter {
  private readonly windowMs: number;
  private readonly samples: Array<[number, number]> = [];

  constructor(windowMs = 5000) {
    this.windowMs = windowMs;
  }

  /** Records `bytes` (a running count) at `nowMs` and returns bytes per second. */
  sample(bytes: number, nowMs: number): number {
    this.samples.push([nowMs, bytes]);
    while (this.samples.length > 2 && (this.samples[1] as [number, number])[0] <= nowMs - this.windowMs) this.samples.shift();
    const [t0, b0] = this.samples[0] as [number, number];
    const elapsed = nowMs - t0;
    return elapsed <= 0 ? 0 : ((bytes - b0) * 1000) / elapsed;
  }

  reset(): void {
    this.samples.length = 0;
  }
}

export function eta(bytes: number, total: number | undefined, rate: number): number | undefined {
  if (total === undefined || rate <= 0) return undefined;
  return Math.max(0, (total - bytes) / rate);
}

const UNITS = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];

export function formatBytes(n: number): string {
  let value = n;
  let unit = 0;
  while (value >= 1024 && unit < UNITS.length - 1) {
    value /= 1024;
    unit += 1;
  }
  return unit === 0 ? `${value} B` : `${value.toFixed(value < 10 ? 1 : 0)} ${UNITS[unit]}`;
}

export function formatDuration(seconds: number): string {
  const s = Math.round(seconds);
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const rest = s % 60;
  return h > 0 ? `${h}:${String(m).padStart(2, '0')}:${String(rest).padStart(2, '0')}` : `${m}:${String(rest).padStart(2, '0')}`;
}

export function describeProgress(label: string, p: DownloadProgress): string {
  const parts = [label];
  if (p.total !== undefined && p.total > 0) {
    parts.push(`${String(Math.floor((p.bytes * 100) / p.total)).padStart(3)}%`, `${formatBytes(p.bytes)} / ${formatBytes(p.total)}`);
  } else {
    parts.push(formatBytes(p.bytes));
  }
  if (p.done) return parts.join('  ');
  parts.push(`${formatBytes(p.rate)}/s`);
  if (p.eta !== undefined) parts.push(`ETA ${formatDuration(p.eta)}`);
  return parts.join('  ');
}

export interface ProgressSink {
  write(text: string): boolean;
  isTTY?: boolean;
}

/** Bytes between lines when the total is unknown and the sink is not a terminal. */
const UNKNOWN_TOTAL_STEP = 100 * 1024 * 1024;

/**
 * A progress callback that draws on `sink`: on a terminal, one line redrawn in
 * place; otherwise one line each time another 10% is done (or 100 MiB when the
 * size is unknown), and a final line.
 */
export function progressPrinter(sink: ProgressSink, label: string): ProgressCallback {
  let lastStep = -1;
  return (p) => {
    if (sink.isTTY === true) {
      sink.write(`\r\u001b[K${describeProgress(label, p)}${p.done ? '\n' : ''}`);
      return;
    }
    const known = p.total !== undefined && p.total > 0;
    const step = known ? Math.floor((p.bytes * 10) / (p.total as number)) : Math.floor(p.bytes / UNKNOWN_TOTAL_STEP);
    // The 100% line of a known size is the final line; otherwise `done` adds one.
    if (step > lastStep || (p.done && !(known && lastStep === 10))) {
      sink.write(`${describeProgress(label, p)}\n`);
      lastStep = step;
    }
  };
}
