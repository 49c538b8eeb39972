import { readdir, readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { ZipFile } from 'yazl';
import { packageVersion } from '../cli/version-info.ts';
import { KUBEADM_INIT_LOG } from '../kube/node-bootstrap.ts';
import { GUEST_BIN_DIR } from '../kube/node-files.ts';
import { writeFileAtomic } from '../profile/atomic.ts';
import { redact } from '../ui/redact.ts';
import { createDoctorContext } from './context.ts';
import { loadDriverChecks } from './driver-checks.ts';
import { maskProxyPassword, PROXY_VARIABLES } from './net.ts';
import { buildReport, reportToJson } from './report.ts';
import { runChecks } from './runner.ts';
import type { DoctorContext, DoctorReport, GuestAccessor } from './types.ts';

export interface SupportBundleOptions {
  /** $DEVCLUSTER_HOME; taken from the context when one is given. */
  home?: string;
  profile?: string;
  signal?: AbortSignal;
  guest?: GuestAccessor;
  /** A doctor report already made in this run, to avoid running the checks twice. */
  report?: DoctorReport;
  /** Where to write the zip; default $DEVCLUSTER_HOME/bundles/devcluster-<profile>-<time>.zip. */
  outputPath?: string;
  /** How many of the newest command logs to include. */
  maxLogs?: number;
}

/** Per-file size cap: the end of a long log is the part that explains a failure. */
const MAX_FILE_BYTES = 4 * 1024 * 1024;
const DEFAULT_MAX_LOGS = 10;

/** redact() plus proxy passwords written without a URL scheme (HTTPS_PROXY=user:pass@host). */
export function maskSecrets(text: string): string {
  return redact(text).replace(/\b([A-Za-z_]*proxy[A-Za-z_]*\s*[=:]\s*["']?)([^\s:/@"']+):([^\s@/"']+)@/gi, '$1$2:********@');
}

async function readTail(path: string): Promise<string | undefined> {
  try {
    const info = await stat(path);
    const buf = await readFile(path);
    const text = buf.subarray(Math.max(0, info.size - MAX_FILE_BYTES)).toString('utf8');
    return info.size > MAX_FILE_BYTES ? `... (first ${info.size - MAX_FILE_BYTES} bytes omitted)\n${text}` : text;
  } catch {
    return undefined;
  }
}

function environmentText(env: NodeJS.ProcessEnv): string {
  const keys = Object.keys(env)
    .filter((k) => k.startsWith('DEVCLUSTER_') || k === 'KUBECONFIG' || (PROXY_VARIABLES as readonly string[]).includes(k) || /^no_proxy$/i.test(k) || k === 'SHELL')
    .sort();
  return keys.map((k) => `${k}=${maskProxyPassword(env[k] ?? '')}`).join('\n');
}

/** Lines kept from each journal: enough for a failed boot or a crash loop, small enough to attach. */
const JOURNAL_LINES = '3000';
/** Lines kept from each control-plane container log and from kubeadm's log. */
const POD_LOG_LINES = '2000';

/**
 * The guest journals the bundle collects: the whole boot, containerd, and
 * the kubelet unless the profile has no Kubernetes. The journal of system
 * units is readable only by root and the adm/systemd-journal groups, so each
 * runs through `sudo -n` (the guest user's sudo needs no password; -n makes
 * a password prompt an error instead of a hang).
 */
export function guestJournals(kubernetes: boolean | undefined): Array<{ name: string; argv: string[] }> {
  const units = kubernetes === false ? ['containerd'] : ['kubelet', 'containerd'];
  const journal = (...args: string[]) => ['sudo', '-n', 'journalctl', ...args, '-n', JOURNAL_LINES, '--no-pager'];
  return [{ name: 'boot', argv: journal('-b') }, ...units.map((unit) => ({ name: unit, argv: journal('-u', unit) }))];
}

/** The control-plane static pods whose container logs (/var/log/pods/kube-system_<name>-<node>_<uid>/<container>/N.log) the bundle keeps. */
export const CONTROL_PLANE_PODS = ['kube-apiserver', 'etcd', 'kube-controller-manager', 'kube-scheduler'] as const;

/** Prints the last lines of every log file of one kube-system pod, each under a header naming the file; nothing when there is none. */
const POD_LOGS_SCRIPT = 'for f in /var/log/pods/kube-system_"$1"-*/*/*.log; do [ -e "$f" ] || continue; printf "==> %s <==\\n" "$f"; tail -n "$2" "$f"; done';

/**
 * What the bundle reads in the guest of a Kubernetes profile besides the
 * journals: the containers as the CRI sees them, the control plane's static
 * pod logs and kubeadm's init log, all as root (through `sudo -n`, as the
 * journals).
 */
export function guestKubernetesFiles(): Array<{ name: string; argv: string[] }> {
  return [
    { name: 'guest/crictl-ps.txt', argv: ['sudo', '-n', `${GUEST_BIN_DIR}/crictl`, 'ps', '-a'] },
    ...CONTROL_PLANE_PODS.map((pod) => ({ name: `guest/pods/${pod}.log`, argv: ['sudo', '-n', 'sh', '-c', POD_LOGS_SCRIPT, 'pod-logs', pod, POD_LOG_LINES] })),
    { name: 'guest/kubeadm-init.log', argv: ['sudo', '-n', 'tail', '-n', POD_LOG_LINES, KUBEADM_INIT_LOG] },
  ];
}

/**
 * Runs a `sudo -n ...` command in the guest; when sudo itself fails (not
 * installed, or it wants a password), runs the command without it so the
 * bundle still holds what the user may read, and says so.
 */
export async function readGuestJournal(guest: GuestAccessor, argv: readonly string[], signal?: AbortSignal): Promise<{ stdout: string; stderr: string; exitCode: number; withoutSudo: boolean; sudoProblem?: string }> {
  const opts = { timeoutMs: 30_000, ...(signal === undefined ? {} : { signal }) };
  const r = await guest.exec(argv, opts);
  const sudoFailed = argv[0] === 'sudo' && r.exitCode !== 0 && (r.exitCode === 127 || /^sudo: /m.test(r.stderr));
  if (!sudoFailed) return { ...r, withoutSudo: false };
  const plain = await guest.exec(argv.slice(argv[1] === '-n' ? 2 : 1), opts);
  const problem = r.stderr.trim().split('\n').filter((l) => l.trim() !== '').slice(-1)[0] ?? `exit ${r.exitCode}`;
  return { ...plain, withoutSudo: true, sudoProblem: problem };
}

/** A guest command's output as a bundle file: a note when sudo was not used, stderr and the exit code when there is either. */
function guestFileText(r: Awaited<ReturnType<typeof readGuestJournal>>): string {
  const note = r.withoutSudo ? `(sudo -n failed in the guest: ${r.sudoProblem}; read without it, so entries of other users and the system may be missing)\n` : '';
  const failed = r.stderr.trim() !== '' || r.exitCode !== 0;
  return note + r.stdout + (failed ? `\n--- stderr (exit ${r.exitCode}) ---\n${r.stderr}` : '');
}

function isContext(x: unknown): x is DoctorContext {
  return typeof x === 'object' && x !== null && 'exec' in x && 'profilePaths' in x;
}

/**
 * `devcluster logs --bundle`: a zip for a bug report with the doctor's JSON
 * report, the newest command logs, the VM's serial log, the profile's state
 * and, when the guest answers, its boot, containerd and (with Kubernetes)
 * kubelet journals, the CRI's containers, the control plane's pod logs and
 * kubeadm's log, read as root. Every
 * file passes through the redaction of secrets and proxy passwords.
 */
export async function createSupportBundle(contextOrOptions: DoctorContext | SupportBundleOptions, maybeOptions: SupportBundleOptions = {}): Promise<string> {
  const options = isContext(contextOrOptions) ? maybeOptions : contextOrOptions;
  await loadDriverChecks();
  const ctx = isContext(contextOrOptions)
    ? contextOrOptions
    : await createDoctorContext({
        home: options.home ?? (await import('../profile/paths.ts')).devclusterHome(),
        profileFlag: options.profile,
        ...(options.guest === undefined ? {} : { guest: options.guest }),
      });
  const guest = options.guest ?? ctx.guest;
  const files: Array<{ name: string; text: string }> = [];
  const notes: string[] = [];

  const report = options.report ?? buildReport(ctx, await runChecks(ctx, { muted: [] }));
  files.push({ name: 'doctor.json', text: `${JSON.stringify(reportToJson(report), null, 2)}\n` });

  const logNames = (await readdir(ctx.paths.logs).catch(() => [] as string[])).filter((f) => f.endsWith('.log')).sort();
  for (const name of logNames.slice(-(options.maxLogs ?? DEFAULT_MAX_LOGS))) {
    const text = await readTail(join(ctx.paths.logs, name));
    if (text !== undefined) files.push({ name: `logs/${name}`, text });
  }
  if (logNames.length === 0) notes.push('No command logs were found.');

  const profileLogs = (await readdir(ctx.profilePaths.logs).catch(() => [] as string[])).sort();
  for (const name of profileLogs) {
    const text = await readTail(join(ctx.profilePaths.logs, name));
    if (text !== undefined) files.push({ name: `profile/logs/${name}`, text });
  }
  if (!profileLogs.includes('serial.log')) notes.push('No serial log: the VM has not been started.');

  for (const [label, path] of [
    ['profile/state.json', ctx.profilePaths.state],
    ['profile/config.json', ctx.profilePaths.config],
    ['config.json', ctx.paths.globalConfig],
  ] as const) {
    const text = await readTail(path);
    if (text !== undefined) files.push({ name: label, text });
  }

  if (guest !== undefined) {
    for (const j of guestJournals(ctx.cluster.kubernetes)) {
      try {
        const r = await readGuestJournal(guest, j.argv, options.signal);
        files.push({ name: `guest/${j.name}.journal.txt`, text: guestFileText(r) });
        if (r.withoutSudo) notes.push(`The guest's ${j.name} journal was read without sudo: ${r.sudoProblem}.`);
      } catch (e) {
        notes.push(`The ${j.name} journal could not be read: ${(e as Error).message}`);
      }
    }
    if (ctx.cluster.kubernetes === false) notes.push('No kubelet journal: the profile was created without Kubernetes.');
    else {
      for (const f of guestKubernetesFiles()) {
        try {
          const r = await readGuestJournal(guest, f.argv, options.signal);
          // A pod that never ran has no log files: say so rather than ship an empty file.
          files.push({ name: f.name, text: r.stdout === '' && r.stderr === '' && r.exitCode === 0 ? '(no log files)\n' : guestFileText(r) });
          if (r.withoutSudo) notes.push(`The guest's ${f.name.slice('guest/'.length)} was read without sudo: ${r.sudoProblem}.`);
        } catch (e) {
          notes.push(`${f.name} could not be read: ${(e as Error).message}`);
        }
      }
    }
  } else {
    notes.push('No guest journals: no SSH access to a running VM.');
  }

  files.push({ name: 'environment.txt', text: `${environmentText(ctx.env)}\n` });
  const stamp = new Date(ctx.now()).toISOString();
  const readme = [
    `devcluster ${packageVersion()} support bundle for profile ${ctx.profile}, made ${stamp}.`,
    `Host: ${ctx.host.platform}/${ctx.host.arch} ${ctx.host.release}; driver ${ctx.driver}.`,
    'Private keys, tokens, kubeconfig credentials and proxy passwords are replaced by ********.',
    '',
    'Files:',
    ...files.map((f) => `  ${f.name}`),
    ...(notes.length === 0 ? [] : ['', 'Notes:', ...notes.map((n) => `  ${n}`)]),
  ].join('\n');
  files.unshift({ name: 'README.txt', text: `${readme}\n` });

  const zip = new ZipFile();
  const mtime = new Date(ctx.now());
  for (const f of files) zip.addBuffer(Buffer.from(maskSecrets(f.text), 'utf8'), f.name, { mtime, mode: 0o600 });
  const chunks: Buffer[] = [];
  const done = new Promise<Buffer>((resolve, reject) => {
    zip.outputStream.on('data', (c: Buffer) => chunks.push(c));
    zip.outputStream.on('end', () => resolve(Buffer.concat(chunks)));
    zip.outputStream.on('error', reject);
  });
  zip.end();
  const data = await done;
  const path = options.outputPath ?? join(ctx.home, 'bundles', `devcluster-${ctx.profile}-${stamp.replace(/[-:]/g, '').replace(/\..*$/, '')}.zip`);
  await writeFileAtomic(path, data, { mode: 0o600 });
  return path;
}
