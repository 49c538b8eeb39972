import { setTimeout as sleep } from 'node:timers/promises';
import { ANY_EXIT_CODE, run, tail } from '../../src/host/exec.ts';
import type { RunResult } from '../../src/host/exec.ts';
import { DevclusterError, isDevclusterError } from '../../src/ui/errors.ts';
import type { FoundVBoxManage } from './locate.ts';
import { parseVBoxVersion, versionAtLeast, versionWarnings } from './parse.ts';
import type { VBoxVersion } from './parse.ts';
import './errors.ts';

/** The oldest VirtualBox the driver's commands are written for (the 6.1 dhcpserver syntax, the host-only range rules). */
export const MIN_VBOX: readonly [number, number] = [6, 1];

/** Failures VirtualBox reports while another client holds the VM or its media for a moment: tried again. */
const TRANSIENT = /object is not ready|is already locked for a session|is (currently )?locked|being unlocked|VBOX_E_OBJECT_IN_USE.*lock/i;
/** VBoxManage may exit 0 after a fatal error (VT-x not available): its `error:` lines decide. */
const ERROR_LINE = /(?:^|\n)[^\n]*error:/i;
export const MISSING_VM = /Could not find a registered machine (named|with UUID)|VBOX_E_OBJECT_NOT_FOUND/;

export interface VBoxRunOptions {
  timeoutMs?: number;
  signal?: AbortSignal;
  /** Return the result of a failure instead of throwing (the caller reads stderr). */
  allowFailure?: boolean;
}

export interface VBoxResult extends RunResult {
  failed: boolean;
}

export interface VBoxManageOptions {
  /** Attempts for a transient failure, counting the first. */
  attempts?: number;
  retryDelayMs?: number;
}

/** The one way the driver calls VBoxManage: the exec layer, LANG=C, `error:` as failure, bounded retries. */
export class VBoxManage {
  readonly path: string;
  readonly source: FoundVBoxManage['source'];
  private readonly attempts: number;
  private readonly retryDelayMs: number;

  constructor(found: Pick<FoundVBoxManage, 'path' | 'source'>, options: VBoxManageOptions = {}) {
    this.path = found.path;
    this.source = found.source;
    this.attempts = options.attempts ?? 5;
    this.retryDelayMs = options.retryDelayMs ?? 200;
  }

  async run(args: readonly string[], options: VBoxRunOptions = {}): Promise<VBoxResult> {
    let last: VBoxResult | undefined;
    for (let attempt = 1; attempt <= this.attempts; attempt += 1) {
      let r: RunResult;
      try {
        r = await run(this.path, args, { timeoutMs: options.timeoutMs ?? 60_000, parse: true, okExitCodes: ANY_EXIT_CODE, ...(options.signal === undefined ? {} : { signal: options.signal }) });
      } catch (e) {
        if (isDevclusterError(e) && e.id === 'HOST_COMMAND_NOT_FOUND') {
          throw new DevclusterError('VBOX_NOT_FOUND', `VBoxManage (${this.path}) cannot be run: it is gone or not executable`, { advice: 'Reinstall VirtualBox, or run `devcluster doctor --driver virtualbox`.', cause: e });
        }
        throw e;
      }
      const stdout = r.stdout.replace(/\r\n/g, '\n');
      const stderr = r.stderr.replace(/\r\n/g, '\n');
      last = { ...r, stdout, stderr, failed: r.exitCode !== 0 || ERROR_LINE.test(stderr) };
      if (!last.failed || !TRANSIENT.test(stderr) || attempt === this.attempts) break;
      await sleep(this.retryDelayMs * attempt, undefined, options.signal === undefined ? {} : { signal: options.signal });
    }
    const result = last as VBoxResult;
    if (result.failed && options.allowFailure !== true) throw commandError(args, result);
    return result;
  }

  /** `--version`, with the WARNING: paragraphs it printed before it. */
  async version(signal?: AbortSignal): Promise<{ version?: VBoxVersion; warnings: string[]; raw: string }> {
    const r = await this.run(['--version'], { timeoutMs: 15_000, allowFailure: true, ...(signal === undefined ? {} : { signal }) });
    const raw = `${r.stdout}\n${r.stderr}`;
    const version = parseVBoxVersion(r.stdout);
    return { ...(version === undefined ? {} : { version }), warnings: versionWarnings(raw), raw: raw.trim() };
  }
}

/** The first error line VBoxManage printed, without its "VBoxManage: error:" prefix. */
export function firstError(stderr: string): string {
  const line = stderr.split('\n').find((l) => /error:/i.test(l) && !/^\S*:\s*error:\s*Details:/i.test(l)) ?? tail(stderr, 1);
  return line.replace(/^\S*VBoxManage(\.exe)?:\s*error:\s*/i, '').trim();
}

export function commandError(args: readonly string[], r: VBoxResult): DevclusterError {
  const why = firstError(r.stderr) || tail(r.stdout, 1) || `exit code ${r.exitCode}`;
  return new DevclusterError('VBOX_COMMAND_FAILED', `VBoxManage ${args.slice(0, 2).join(' ')} failed: ${why}`, {
    details: { command: ['VBoxManage', ...args].join(' '), exitCode: r.exitCode, stderrTail: tail(r.stderr, 10) },
  });
}

/** VBoxManage located and its version checked: >= 6.1, else a VBOX_VERSION_UNSUPPORTED error that says what it printed. */
export async function openVBoxManage(found: FoundVBoxManage | undefined, platform: NodeJS.Platform, signal?: AbortSignal, options: VBoxManageOptions = {}): Promise<{ vbm: VBoxManage; version: VBoxVersion; warnings: string[] }> {
  if (found === undefined) throw notFound(platform);
  const vbm = new VBoxManage(found, options);
  const v = await vbm.version(signal);
  if (v.version === undefined) {
    throw new DevclusterError('VBOX_VERSION_UNSUPPORTED', `${found.path} printed no version: ${tail(v.raw, 2) || 'nothing'}`, {
      advice: 'VirtualBox is installed incompletely or its kernel driver is not loaded: reinstall it (Linux: install the kernel headers, then `sudo /sbin/vboxconfig`) and run `devcluster doctor --driver virtualbox`.',
      details: { output: v.raw },
    });
  }
  if (!versionAtLeast(v.version, MIN_VBOX[0], MIN_VBOX[1])) {
    throw new DevclusterError('VBOX_VERSION_UNSUPPORTED', `VirtualBox ${v.version.text} is older than ${MIN_VBOX.join('.')}`, { advice: 'Install VirtualBox 7 (or at least 6.1) from virtualbox.org.' });
  }
  return { vbm, version: v.version, warnings: v.warnings };
}

export function notFound(platform: NodeJS.Platform): DevclusterError {
  return new DevclusterError('VBOX_NOT_FOUND', 'VBoxManage was not found: VirtualBox is not installed, or not where its installer puts it', {
    advice: `${installAdvice(platform)} If it is installed elsewhere, set VBOX_INSTALL_PATH to its folder.`,
  });
}

export function installAdvice(platform: NodeJS.Platform): string {
  if (platform === 'win32') return 'Install VirtualBox from virtualbox.org (or `winget install Oracle.VirtualBox`).';
  if (platform === 'darwin') return 'Install VirtualBox from virtualbox.org (or `brew install --cask virtualbox`); on Apple silicon it needs VirtualBox 7.1 or newer.';
  return 'Install VirtualBox from virtualbox.org or your distribution\'s packages (e.g. `sudo apt-get install virtualbox`).';
}
