import type { HostFacts } from '../../src/host/platform.ts';
import type { RunResult } from '../../src/host/exec.ts';
import { DevclusterError } from '../../src/ui/errors.ts';
import { Output } from '../../src/ui/output.ts';
import { homePaths, profilePaths } from '../../src/profile/paths.ts';
import { SETTINGS } from '../../src/profile/settings.ts';
import type { SettingValue } from '../../src/profile/settings.ts';
import { DEFAULT_THRESHOLDS } from '../../src/doctor/context.ts';
import type { DoctorContext, ExecFn } from '../../src/doctor/types.ts';

export const LINUX_HOST: HostFacts = {
  platform: 'linux', arch: 'x64', release: '6.1.0', osVersion: '#1 SMP', hostname: 'test', cpus: 8, totalMemoryMiB: 16384, freeMemoryMiB: 8192,
};

/** A doctor context built in memory: tests choose the host, settings, state and commands. */
export function testContext(o: {
  host?: Partial<HostFacts>;
  settings?: Record<string, SettingValue>;
  env?: NodeJS.ProcessEnv;
  home?: string;
  userHome?: string;
  driver?: string;
  exec?: ExecFn;
  cluster?: DoctorContext['cluster'];
  guest?: DoctorContext['guest'];
  kube?: DoctorContext['kube'];
  now?: () => number;
} = {}): DoctorContext {
  const home = o.home ?? '/nonexistent/devcluster-home';
  const settings: DoctorContext['config']['settings'] = {};
  for (const d of SETTINGS) {
    const v = o.settings?.[d.key];
    settings[d.key] = v === undefined ? { key: d.key, value: d.defaultValue, source: 'default', origin: 'default' } : { key: d.key, value: v, source: 'global', origin: 'test' };
  }
  const exec = o.exec ?? (async (command: string) => {
    throw new DevclusterError('HOST_COMMAND_NOT_FOUND', `${command} was not found on PATH`);
  });
  return {
    host: { ...LINUX_HOST, ...o.host },
    env: o.env ?? {},
    home,
    paths: homePaths(home),
    userHome: o.userHome ?? '/home/tester',
    profile: 'devcluster',
    profilePaths: profilePaths(home, 'devcluster'),
    config: { profile: 'devcluster', settings },
    driver: o.driver ?? 'qemu',
    driverSource: 'config',
    cluster: o.cluster ?? { exists: false, running: false },
    exec,
    execElevated: exec,
    ...(o.guest === undefined ? {} : { guest: o.guest }),
    ...(o.kube === undefined ? {} : { kube: o.kube }),
    thresholds: DEFAULT_THRESHOLDS,
    now: o.now ?? Date.now,
  };
}

/** An exec that answers from a table keyed by the command name, recording calls. */
export function fakeExec(answers: Record<string, (args: readonly string[]) => Partial<RunResult> | Error>): ExecFn & { calls: Array<{ command: string; args: readonly string[] }> } {
  const calls: Array<{ command: string; args: readonly string[] }> = [];
  const fn = (async (command: string, args: readonly string[]) => {
    calls.push({ command, args });
    const answer = answers[command];
    if (answer === undefined) throw new DevclusterError('HOST_COMMAND_NOT_FOUND', `${command} was not found on PATH`);
    const r = answer(args);
    if (r instanceof Error) throw r;
    return { command, args, stdout: '', stderr: '', exitCode: 0, durationMs: 1, ...r };
  }) as ExecFn & { calls: typeof calls };
  fn.calls = calls;
  return fn;
}

/** PowerShell's stdout for a doctor query: banner noise, then the JSON between the markers. */
export function powershellStdout(json: string): string {
  return `WARNING: a profile banner the doctor must ignore\n<<<DEVCLUSTER-JSON\n${json}\nDEVCLUSTER-JSON>>>\n`;
}

export function captureOutput(env: NodeJS.ProcessEnv = { NO_COLOR: '1', LANG: 'C.UTF-8' }, format: 'text' | 'json' = 'text') {
  let stdout = '';
  let stderr = '';
  const out = new Output({ env, platform: 'linux', format, stdout: { write: (s: string) => ((stdout += s), true) }, stderr: { write: (s: string) => ((stderr += s), true) } });
  return { out, stdout: () => stdout, stderr: () => stderr };
}
