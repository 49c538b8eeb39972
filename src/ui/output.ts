import { inputError } from './errors.ts';

/**
 * Everything devcluster prints goes through here: colour only on a TTY and
 * never with NO_COLOR, ASCII symbols where the console cannot show UTF-8, and
 * in JSON mode stdout carries the one JSON document and nothing else.
 */
export type OutputFormat = 'text' | 'json';

export interface OutputOptions {
  format?: OutputFormat;
  verbose?: boolean;
  stdout?: NodeJS.WriteStream | { write(s: string): boolean; isTTY?: boolean };
  stderr?: NodeJS.WriteStream | { write(s: string): boolean; isTTY?: boolean };
  env?: NodeJS.ProcessEnv;
  platform?: NodeJS.Platform;
}

export interface Symbols {
  ok: string;
  warn: string;
  fail: string;
  skip: string;
  info: string;
  bullet: string;
  arrow: string;
}

const UNICODE: Symbols = { ok: '✓', warn: '!', fail: '✗', skip: '-', info: 'ℹ', bullet: '•', arrow: '→' };
const ASCII: Symbols = { ok: 'OK', warn: 'WARN', fail: 'FAIL', skip: 'SKIP', info: 'i', bullet: '*', arrow: '->' };

/** Whether the console can show UTF-8: LANG/LC_* on Unix; Windows Terminal and VS Code on Windows. */
export function supportsUnicode(env: NodeJS.ProcessEnv, platform: NodeJS.Platform): boolean {
  const forced = env['DEVCLUSTER_ASCII'];
  if (forced !== undefined && forced !== '' && forced !== '0') return false;
  if (platform === 'win32') {
    return env['WT_SESSION'] !== undefined || env['TERM_PROGRAM'] === 'vscode' || env['ConEmuTask'] !== undefined || env['TERM'] === 'xterm-256color';
  }
  const locale = env['LC_ALL'] || env['LC_CTYPE'] || env['LANG'] || '';
  if (locale === '') return env['TERM'] !== 'linux' && env['TERM'] !== undefined;
  return /utf-?8/i.test(locale);
}

export function colorEnabled(env: NodeJS.ProcessEnv, isTTY: boolean): boolean {
  if (env['NO_COLOR'] !== undefined && env['NO_COLOR'] !== '') return false;
  if (env['FORCE_COLOR'] !== undefined && env['FORCE_COLOR'] !== '0') return true;
  return isTTY && env['TERM'] !== 'dumb';
}

const CODES = { red: 31, green: 32, yellow: 33, blue: 34, magenta: 35, cyan: 36, gray: 90, bold: 1, dim: 2 } as const;
export type Color = keyof typeof CODES;

export function parseOutputFormat(raw: string | undefined, supported: readonly OutputFormat[] = ['text', 'json']): OutputFormat {
  const v = (raw ?? 'text').toLowerCase();
  if (!(supported as readonly string[]).includes(v)) {
    throw inputError('OUTPUT_FORMAT_INVALID', `--output ${JSON.stringify(raw)} is not supported here; accepted: ${supported.join(', ')}`);
  }
  return v as OutputFormat;
}

export class Output {
  readonly format: OutputFormat;
  readonly verbose: boolean;
  readonly isTTY: boolean;
  readonly color: boolean;
  readonly unicode: boolean;
  readonly symbols: Symbols;
  private readonly out: { write(s: string): boolean };
  private readonly err: { write(s: string): boolean };

  constructor(options: OutputOptions = {}) {
    const env = options.env ?? process.env;
    this.out = options.stdout ?? process.stdout;
    this.err = options.stderr ?? process.stderr;
    this.format = options.format ?? 'text';
    this.verbose = options.verbose ?? false;
    this.isTTY = (options.stdout ?? process.stdout).isTTY === true;
    this.color = colorEnabled(env, (options.stderr ?? process.stderr).isTTY === true || this.isTTY);
    this.unicode = supportsUnicode(env, options.platform ?? process.platform);
    this.symbols = this.unicode ? UNICODE : ASCII;
  }

  paint(color: Color, text: string): string {
    return this.color ? `\u001b[${CODES[color]}m${text}\u001b[0m` : text;
  }

  /** Human text: stdout in text mode, stderr in JSON mode so stdout stays one document. */
  line(text = ''): void {
    (this.format === 'json' ? this.err : this.out).write(`${text}\n`);
  }

  info(text: string): void {
    this.line(text);
  }

  success(text: string): void {
    this.line(`${this.paint('green', this.symbols.ok)} ${text}`);
  }

  warn(text: string): void {
    this.err.write(`${this.paint('yellow', this.unicode ? '❗' : '!')} ${text}\n`);
  }

  debug(text: string): void {
    if (this.verbose) this.err.write(`${this.paint('gray', text)}\n`);
  }

  /** Diagnostics that must never mix with data on stdout. */
  error(text: string): void {
    this.err.write(`${text}\n`);
  }

  json(document: unknown): void {
    this.out.write(`${JSON.stringify(document, null, 2)}\n`);
  }

  /** Plain data on stdout (the value of `config get`, an IP), whatever the format. */
  data(text: string): void {
    this.out.write(`${text}\n`);
  }

  table(headers: readonly string[], rows: ReadonlyArray<readonly string[]>): void {
    const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
    const fmt = (cells: readonly string[]) => cells.map((c, i) => c.padEnd(widths[i] ?? 0)).join('  ').trimEnd();
    this.line(this.paint('bold', fmt(headers)));
    for (const row of rows) this.line(fmt(row));
  }
}
