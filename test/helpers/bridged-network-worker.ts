/**
 * Runs one bridgedNetwork operation for one profile and prints the outcome as
 * one JSON line. The integration test starts it under `ip netns exec`, so
 * every ip/nft/sysctl/dnsmasq call it makes happens inside a throw-away
 * network namespace.
 *
 *   node bridged-network-worker.ts '{"home":"/tmp/x","profile":"a","op":"ensure","mac":"52:54:00:..","settings":{}}'
 */
import { bridgedNetwork } from '../../drivers/qemu/bridged-network.ts';
import type { DriverContext } from '../../drivers/driver.ts';
import { profilePaths } from '../../src/profile/paths.ts';
import { StateStore } from '../../src/profile/state.ts';
import { DevclusterError } from '../../src/ui/errors.ts';

export interface Job {
  home: string;
  profile: string;
  op: 'ensure' | 'ensureTap' | 'teardown';
  mac?: string;
  tap?: string;
  settings?: Record<string, unknown>;
}

const job = JSON.parse(process.argv[2] ?? '{}') as Job;
const paths = profilePaths(job.home, job.profile);
const state = new StateStore(paths.state);
if ((await state.load()) === undefined) await state.init(job.profile, 'qemu');
const reports: Array<{ level: string; message: string }> = [];
const ctx: DriverContext = {
  profile: job.profile,
  home: job.home,
  platform: process.platform,
  paths,
  settings: job.settings ?? {},
  state,
  signal: new AbortController().signal,
  report: (message, level = 'info') => reports.push({ level, message }),
};

let out: Record<string, unknown>;
try {
  let result: unknown;
  if (job.op === 'ensure') result = await bridgedNetwork.ensure(ctx, job.mac ?? '52:54:00:00:00:01');
  else if (job.op === 'ensureTap') result = await bridgedNetwork.ensureTap(ctx, job.tap ?? '');
  else result = await bridgedNetwork.teardown(ctx);
  out = { ok: true, result: result ?? null, reports, resources: state.require().resources };
} catch (e) {
  const err = e instanceof DevclusterError ? { id: e.id, message: e.message, advice: e.advice } : { id: 'UNEXPECTED', message: String((e as Error).stack ?? e) };
  out = { ok: false, error: err, reports, resources: state.require().resources };
}
process.stdout.write(`${JSON.stringify(out)}\n`);
