/**
 * Runs one lifecycle command (start, stop or delete) over the fake driver in
 * its own process, so a test can crash it (an 'exit' fault: process.exit in
 * the middle of a step, no finally block runs) or kill it with SIGKILL (a
 * 'hang' fault prints `REACHED <point>` and waits to be killed). The fake
 * VMs it starts are detached and outlive it, like a hypervisor's.
 *
 *   node test/helpers/lifecycle-worker.ts '{"command":"start","home":"...","fake":{...}}'
 *
 * Prints `RESULT <json>` or `ERROR <json>` as its last line.
 */
import { writeSync } from 'node:fs';
import { startCluster } from '../../src/cluster/start.ts';
import { stopCluster } from '../../src/cluster/stop.ts';
import { deleteProfile } from '../../src/cluster/delete.ts';
import { isDevclusterError } from '../../src/ui/errors.ts';
import { FakeDriver } from './fake-driver.ts';
import type { FakeDriverOptions } from './fake-driver.ts';
import { lifecycleOptions, startOptions } from './lifecycle.ts';

export interface WorkerJob {
  command: 'start' | 'stop' | 'delete';
  home: string;
  profile?: string;
  fake?: FakeDriverOptions;
  /** start only; default false (this build cannot install Kubernetes). */
  kubernetes?: boolean | null;
}

const job = JSON.parse(process.argv[2] ?? '{}') as WorkerJob;
const driver = new FakeDriver(job.fake);
const who = job.profile === undefined ? {} : { profile: job.profile };

async function main(): Promise<unknown> {
  if (job.command === 'start') return startCluster(startOptions(job.home, driver, { ...who, kubernetes: job.kubernetes === null ? undefined : (job.kubernetes ?? false) }));
  if (job.command === 'stop') return stopCluster({ ...lifecycleOptions(job.home, driver, { ...who, command: 'stop' }), timeoutMs: 5000 });
  return deleteProfile(lifecycleOptions(job.home, driver, { ...who, command: 'delete' }));
}

try {
  const result = await main();
  writeSync(1, `RESULT ${JSON.stringify(result)}\n`);
  process.exit(0);
} catch (e) {
  const error = isDevclusterError(e) ? { id: e.id, message: e.message, advice: e.advice, details: e.details } : { message: e instanceof Error ? e.message : String(e) };
  writeSync(1, `ERROR ${JSON.stringify(error)}\n`);
  process.exit(1);
}
