import { X509Certificate } from 'node:crypto';
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fail, pass, skip, warn, errorText } from '../outcome.ts';
import { noClusterReason, noGuestReason, withoutKubernetes } from './host.ts';
import type { Check, CheckContext, CheckOutcome, GuestAccessor } from '../types.ts';

async function guestRun(ctx: CheckContext, guest: GuestAccessor, argv: string[]): Promise<{ stdout: string; stderr: string; exitCode: number }> {
  const r = await guest.exec(argv, { timeoutMs: 10_000, signal: ctx.signal });
  ctx.evidence({ command: `ssh ${guest.target} ${argv.join(' ')}`, exitCode: r.exitCode, stdout: r.stdout, stderr: r.stderr });
  return r;
}

const sshCheck: Check = {
  id: 'GUEST_SSH_DOWN',
  title: 'SSH',
  category: 'guest',
  looksAt: "an SSH command in the VM with the profile's key and pinned host key, when the cluster runs",
  exitCode: 89,
  timeoutMs: 20_000,
  async run(ctx) {
    const reason = noGuestReason(ctx);
    if (reason !== undefined || ctx.guest === undefined) return skip(reason ?? 'no guest');
    try {
      const r = await guestRun(ctx, ctx.guest, ['true']);
      if (r.exitCode !== 0) return fail(`SSH to ${ctx.guest.target} connects but a command exits with ${r.exitCode}`);
    } catch (e) {
      return fail(`SSH to ${ctx.guest.target} fails: ${errorText(e)}`, {
        details: ['A VPN or firewall can capture the route to the VM; a changed host key means the VM was replaced outside devcluster.'],
        fix: { description: 'Check that the VM runs and that no VPN or firewall captures its network, then try again.', commands: [] },
        related: ['kubernetes/minikube#3388', 'kubernetes/minikube#4617'],
      });
    }
    return pass(`${ctx.guest.target} answers with the pinned host key`);
  },
};

/** `systemctl is-active <unit>` in the guest, with the unit's last log lines as evidence when it is not active. */
async function serviceOutcome(ctx: CheckContext, unit: string, related: string[]): Promise<CheckOutcome> {
  const reason = noGuestReason(ctx);
  if (reason !== undefined || ctx.guest === undefined) return skip(reason ?? 'no guest');
  const guest = ctx.guest;
  const r = await guestRun(ctx, guest, ['systemctl', 'is-active', unit]);
  const state = r.stdout.trim() || 'unknown';
  if (state === 'active') return pass(`${unit} is active`);
  const journal = await guestRun(ctx, guest, ['sudo', '-n', 'journalctl', '-u', unit, '-n', '20', '--no-pager', '-o', 'cat']).catch(() => undefined);
  const last = journal?.stdout.trim().split('\n').filter((l) => l.trim() !== '').slice(-3) ?? [];
  return fail(`${unit} is ${state} in the VM`, {
    details: last.map((l) => `journal: ${l}`),
    fix: {
      description: `Restart ${unit} in the VM; if it stops again, its journal in the support bundle tells why.`,
      commands: [{ shell: 'sh', run: `sudo systemctl restart ${unit}`, elevated: true, target: 'guest' }],
      apply: async (c) => {
        const out = await guest.exec(['sudo', '-n', 'systemctl', 'restart', unit], { timeoutMs: 60_000, signal: c.signal });
        if (out.exitCode !== 0) throw new Error(`restarting ${unit} failed: ${out.stderr.trim()}`);
      },
      disruptive: true,
    },
    related,
  });
}

const containerdCheck: Check = {
  id: 'GUEST_CONTAINERD_INACTIVE',
  title: 'containerd',
  category: 'guest',
  looksAt: 'systemctl is-active containerd in the VM, for a profile with Kubernetes',
  requires: ['GUEST_SSH_DOWN'],
  inapplicable: withoutKubernetes,
  exitCode: 93,
  timeoutMs: 30_000,
  run: (ctx) => serviceOutcome(ctx, 'containerd', []),
};

const kubeletCheck: Check = {
  id: 'GUEST_KUBELET_INACTIVE',
  title: 'kubelet',
  category: 'kubernetes',
  looksAt: 'systemctl is-active kubelet in the VM, for a profile with Kubernetes',
  requires: ['GUEST_SSH_DOWN'],
  inapplicable: withoutKubernetes,
  exitCode: 103,
  timeoutMs: 30_000,
  run: (ctx) => serviceOutcome(ctx, 'kubelet', ['kubernetes/minikube#4172']),
};

/** The failing lines of a verbose /readyz answer ("[-]etcd failed: reason withheld"). */
export function readyzFailures(body: string): string[] {
  return body.split('\n').filter((l) => l.startsWith('[-]')).map((l) => l.slice(3).trim());
}

const readyzCheck: Check = {
  id: 'K8S_APISERVER_NOT_READY',
  title: 'API server',
  category: 'kubernetes',
  looksAt: 'GET /readyz on the API server, when the cluster runs',
  requires: ['NETWORK_APISERVER_UNREACHABLE'],
  inapplicable: withoutKubernetes,
  exitCode: 109,
  async run(ctx) {
    const reason = noClusterReason(ctx);
    if (reason !== undefined) return skip(reason);
    if (ctx.kube === undefined) return skip('the profile records no API server address');
    let answer;
    try {
      answer = await ctx.kube.readyz({ signal: ctx.signal, timeoutMs: 5000 });
    } catch (e) {
      return fail(`GET /readyz failed: ${errorText(e)}`, { related: ['kubernetes/minikube#4302'] });
    }
    ctx.evidence({ command: 'GET /readyz', exitCode: answer.status, stdout: answer.body });
    if (answer.status === 200) return pass('ready (/readyz answered ok)');
    const failing = readyzFailures(answer.body);
    return fail(`not ready: /readyz answered HTTP ${answer.status}${failing.length > 0 ? ` (${failing.join('; ')})` : ''}`, {
      details: ['The control plane may still be starting; a node that stays unready for minutes has a failing component.'],
      fix: { description: 'Wait a minute and run the doctor again; if it stays unready, the support bundle (devcluster logs --bundle) holds the kubelet journal and the API server\'s, etcd\'s, controller manager\'s and scheduler\'s logs, which name the failing component.', commands: [] },
    });
  },
};

export interface CertificateInfo {
  name: string;
  notAfter: Date;
  notBefore: Date;
}

export function certificateInfo(name: string, pem: string): CertificateInfo {
  const cert = new X509Certificate(pem);
  return { name, notAfter: new Date(cert.validTo), notBefore: new Date(cert.validFrom) };
}

/** Expired or not yet valid -> fail; expiring within `warnDays` -> warn. */
export function evaluateCertificates(certs: readonly CertificateInfo[], nowMs: number, warnDays: number): CheckOutcome {
  const day = 24 * 3600 * 1000;
  const bad = certs.filter((c) => c.notAfter.getTime() <= nowMs || c.notBefore.getTime() > nowMs);
  const soon = certs.filter((c) => !bad.includes(c) && c.notAfter.getTime() - nowMs < warnDays * day);
  const fix = {
    description:
      "`devcluster start` issues the profile's API server and admin certificates (pki/) again when they expire within 30 days and rewrites the kubeconfig entry; in the VM, `kubeadm certs renew all` renews the certificates the control plane serves with, which its components load when they restart. An expired CA cannot be renewed: `devcluster delete` and `devcluster start` make a new cluster.",
    commands: [
      { shell: 'sh' as const, run: 'devcluster start', elevated: false },
      { shell: 'sh' as const, run: 'sudo kubeadm certs renew all', elevated: true, target: 'guest' as const },
    ],
  };
  if (bad.length > 0) {
    return fail(
      bad.map((c) => (c.notBefore.getTime() > nowMs ? `${c.name} is not valid before ${c.notBefore.toISOString()}` : `${c.name} expired on ${c.notAfter.toISOString()}`)).join('; '),
      { details: bad.some((c) => c.notBefore.getTime() > nowMs) ? ['A certificate from the future usually means a wrong clock.'] : [], fix, related: ['kubernetes/minikube#6596'] },
    );
  }
  if (soon.length > 0) {
    return warn(soon.map((c) => `${c.name} expires in ${Math.max(0, Math.floor((c.notAfter.getTime() - nowMs) / day))} days (${c.notAfter.toISOString().slice(0, 10)})`).join('; '), { fix });
  }
  const next = [...certs].sort((a, b) => a.notAfter.getTime() - b.notAfter.getTime())[0];
  return pass(next === undefined ? 'no certificates' : `${certs.length} valid; the first expires on ${next.notAfter.toISOString().slice(0, 10)} (${next.name})`);
}

const certsCheck: Check = {
  id: 'K8S_CERTS_EXPIRING',
  title: 'Certificates',
  category: 'kubernetes',
  looksAt: "the profile's certificates (pki/*.crt) and the API server's serving certificate: expired, not yet valid, or expiring within 30 days",
  exitCode: 108,
  inapplicable: withoutKubernetes,
  async run(ctx) {
    const certs: CertificateInfo[] = [];
    let names: string[] = [];
    try {
      names = (await readdir(ctx.profilePaths.pki)).filter((n) => n.endsWith('.crt')).sort();
    } catch {
      // no PKI yet
    }
    for (const n of names) {
      const path = join(ctx.profilePaths.pki, n);
      try {
        const info = certificateInfo(n, await readFile(path, 'utf8'));
        certs.push(info);
        ctx.evidence({ command: `read ${path}`, stdout: `notBefore ${info.notBefore.toISOString()}, notAfter ${info.notAfter.toISOString()}` });
      } catch (e) {
        ctx.evidence({ command: `read ${path}`, error: errorText(e) });
      }
    }
    if (noClusterReason(ctx) === undefined && ctx.kube?.servingCertificate !== undefined) {
      try {
        certs.push(certificateInfo('API server serving certificate', await ctx.kube.servingCertificate({ signal: ctx.signal, timeoutMs: 5000 })));
      } catch (e) {
        ctx.evidence({ command: 'TLS handshake with the API server', error: errorText(e) });
      }
    }
    if (certs.length === 0) return skip(`no certificates yet for profile ${ctx.profile}`);
    return evaluateCertificates(certs, ctx.now(), ctx.thresholds.certificateWarnDays);
  },
};

export const GUEST_CHECKS: readonly Check[] = [sshCheck, containerdCheck, kubeletCheck, readyzCheck, certsCheck];
