import { readFile } from 'node:fs/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Driver, DriverContext, VmState } from '../../drivers/driver.ts';
import { tail } from '../host/exec.ts';
import { DevclusterError } from '../ui/errors.ts';
import './errors.ts';

/** States in which a VM that was booting can no longer become reachable. */
const DEAD: ReadonlySet<VmState> = new Set(['absent', 'stopped', 'broken']);

export interface VmWatchOptions {
  pollMs?: number;
  /** Consecutive dead observations before giving up: a monitor can miss one poll. */
  confirmations?: number;
}

/**
 * Runs a wait (SSH, address, API server) while watching the VM: when the VM
 * dies, the wait is cancelled at once and fails with the cause and the last
 * lines of the hypervisor's and the guest console's logs, instead of polling
 * a dead guest until its deadline while holding the profile's lock.
 */
export async function whileVmAlive<T>(driver: Driver, ctx: DriverContext, wait: (signal: AbortSignal) => Promise<T>, options: VmWatchOptions = {}): Promise<T> {
  const pollMs = options.pollMs ?? 2000;
  const confirmations = options.confirmations ?? 2;
  const inner = new AbortController();
  const onOuterAbort = (): void => inner.abort(ctx.signal.reason);
  ctx.signal.addEventListener('abort', onOuterAbort, { once: true });
  let died: DevclusterError | undefined;
  let done = false;
  const watcher = (async () => {
    let dead = 0;
    while (!done) {
      await sleep(pollMs, undefined, { signal: inner.signal }).catch(() => undefined);
      if (done || inner.signal.aborted) return;
      const state = await driver.state(ctx).catch((): VmState => 'broken');
      dead = DEAD.has(state) ? dead + 1 : 0;
      if (dead >= confirmations) {
        died = await vmDiedError(driver, ctx, state);
        inner.abort(died);
        return;
      }
    }
  })();
  try {
    return await wait(inner.signal);
  } catch (e) {
    throw died ?? e;
  } finally {
    done = true;
    ctx.signal.removeEventListener('abort', onOuterAbort);
    if (!inner.signal.aborted) inner.abort();
    await watcher;
  }
}

export async function vmDiedError(driver: Driver, ctx: DriverContext, state: VmState): Promise<DevclusterError> {
  const report = await driver.crashReport(ctx).catch(() => ({ cause: `the VM is ${state}`, log: undefined }));
  const serial = tail(await readFile(ctx.paths.serialLog, 'utf8').catch(() => ''), 15);
  const parts = [report.log === undefined ? undefined : `${driver.info.displayName} said:\n${report.log}`, serial === '' ? undefined : `Last lines of the guest console (${ctx.paths.serialLog}):\n${serial}`];
  return new DevclusterError('VM_DIED', `the VM stopped while devcluster waited for it (${state}): ${report.cause}`, {
    advice: [...parts.filter((p) => p !== undefined), `\`devcluster start -p ${ctx.profile}\` boots it again; \`devcluster logs -p ${ctx.profile}\` shows the logs.`].join('\n'),
    details: { state, cause: report.cause, ...(report.log === undefined ? {} : { hypervisorLog: report.log }), ...(serial === '' ? {} : { serialLog: serial }) },
  });
}
