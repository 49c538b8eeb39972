import { stat } from 'node:fs/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import { DevclusterError } from '../ui/errors.ts';
import './errors.ts';

/**
 * A guest that printed part of its boot on the console and then nothing for
 * minutes, before its SSH server answered, is hung, not slow: under software
 * emulation a kernel now and then stops in early boot (device probing) and
 * never continues. Waiting out the SSH deadline (minutes) ends in a timeout
 * with no cause; a reset boots it again in seconds. The watch is armed only
 * for a boot this command started, and only counts silence after the console
 * printed something since: a driver or guest without a console log is never
 * judged, and a VM that was already running is never reset.
 */
export interface BootWatchOptions {
  /** The console log the driver writes. */
  serialLog: string;
  /** Silence after output, before SSH answered, that counts as a hang. */
  silenceMs: number;
  /** Epoch ms when this command began the boot: older console output says nothing about it. */
  bootStartedAt: number;
  pollMs?: number;
}

// Some filesystems keep modification times to the second.
const MTIME_SLACK_MS = 1000;

/** When the console last printed during this boot; undefined when it has not printed yet. */
async function lastOutputAt(o: BootWatchOptions): Promise<number | undefined> {
  const s = await stat(o.serialLog).catch(() => undefined);
  return s !== undefined && s.size > 0 && s.mtimeMs >= o.bootStartedAt - MTIME_SLACK_MS ? s.mtimeMs : undefined;
}

export function bootStalledError(serialLog: string, silenceMs: number, resets: number): DevclusterError {
  const minutes = Math.round(silenceMs / 6000) / 10;
  return new DevclusterError('GUEST_BOOT_STALLED', `the guest's console printed nothing for ${minutes} min during boot, before its SSH server answered${resets > 0 ? `, after ${resets} reset` : ''}`, {
    advice: `How far it booted is at the end of ${serialLog}. A boot that stops at the same line again points at the image or the VM's settings (memory, CPU model, acceleration): \`devcluster doctor\` checks them.`,
    details: { serialLog, silenceMs, resets },
  });
}

/**
 * Runs `wait` (address, then SSH) while watching the console. `wait` gets a
 * `disarm` to call once the SSH server answered; until then, silence after
 * output aborts it with GUEST_BOOT_STALLED.
 */
export async function watchBoot<T>(options: BootWatchOptions, signal: AbortSignal, wait: (signal: AbortSignal, disarm: () => void) => Promise<T>): Promise<T> {
  const inner = new AbortController();
  const onOuterAbort = (): void => inner.abort(signal.reason);
  signal.addEventListener('abort', onOuterAbort, { once: true });
  let armed = true;
  let stalled: DevclusterError | undefined;
  const watcher = (async () => {
    while (armed && !inner.signal.aborted) {
      await sleep(options.pollMs ?? 2000, undefined, { signal: inner.signal }).catch(() => undefined);
      if (!armed || inner.signal.aborted) return;
      const printed = await lastOutputAt(options);
      if (printed !== undefined && Date.now() - printed >= options.silenceMs) {
        stalled = bootStalledError(options.serialLog, options.silenceMs, 0);
        inner.abort(stalled);
        return;
      }
    }
  })();
  try {
    return await wait(inner.signal, () => {
      armed = false;
    });
  } catch (e) {
    throw stalled ?? e;
  } finally {
    armed = false;
    signal.removeEventListener('abort', onOuterAbort);
    if (!inner.signal.aborted) inner.abort();
    await watcher;
  }
}
