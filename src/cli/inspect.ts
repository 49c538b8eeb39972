import type { Command } from 'commander';
import { action } from './run-command.ts';
import { withExamples } from './examples.ts';
import { GROUP_BASIC, GROUP_TROUBLESHOOTING } from './groups.ts';
import { lifecycle } from './lifecycle.ts';


export function registerInspect(program: Command): void {
  const status = program
    .command('status')
    .description('Show the state of the VM, the guest and Kubernetes, asked now (exit code bits: 1 VM not running, 2 guest, kubelet or API server not running or not reachable, 4 kubeconfig not configured; 7 no cluster or a damaged profile)')
    .helpGroup(GROUP_BASIC)
    .option('-o, --output <format>', 'text or json', 'text')
    .action(
      action(
        async (ctx) => {
          const { clusterStatus } = await import('../cluster/status.ts');
          const r = await clusterStatus(lifecycle(ctx));
          if (ctx.out.format === 'json') ctx.out.json(r);
          else {
            ctx.out.line(r.name);
            ctx.out.line(`driver: ${r.driver ?? '-'}`);
            ctx.out.line(`host: ${r.host}`);
            ctx.out.line(`guest: ${r.guest}`);
            ctx.out.line(`kubelet: ${r.kubelet}`);
            ctx.out.line(`apiserver: ${r.apiServer}${r.apiServerUrl === null ? '' : ` (${r.apiServerUrl})`}`);
            ctx.out.line(`node: ${r.node}`);
            ctx.out.line(`kubeconfig: ${r.kubeconfig}`);
            if (r.kubernetesVersion !== null) ctx.out.line(`kubernetes: ${r.kubernetesVersion}`);
            if (r.ssh !== null) ctx.out.line(`ssh: ${r.ssh.host}:${r.ssh.port}`);
            if (r.ip !== null) ctx.out.line(`ip: ${r.ip}`);
            if (r.acceleration !== null) ctx.out.line(`accelerator: ${r.acceleration.accelerator}${r.acceleration.hardware ? '' : ' (software emulation)'}`);
            if (r.problem !== null) ctx.out.line(`problem: ${r.problem}`);
            for (const f of r.findings) ctx.out.line(`${f.component}: ${f.message}${f.fix === undefined ? '' : `\n  fix: ${f.fix}`}`);
          }
          return r.exitCode;
        },
        { formats: ['text', 'json'] },
      ),
    );
  withExamples(status, [['devcluster status', 'the default cluster'], ['devcluster status -p dev -o json', 'as JSON; the exit code is the bitmask']]);

  const ip = program
    .command('ip')
    .description('Print the address the host reaches the VM at (behind NAT port forwards: 127.0.0.1, with the ports on stderr and in -o json)')
    .helpGroup(GROUP_TROUBLESHOOTING)
    .option('-o, --output <format>', 'text or json', 'text')
    .action(
      action(
        async (ctx) => {
          const { sshTarget } = await import('../cluster/ssh-access.ts');
          const t = await sshTarget(lifecycle(ctx));
          const forwards = Object.entries(t.forwards).map(([guestPort, e]) => ({ guestPort: Number(guestPort), host: e.host, port: e.port }));
          if (ctx.out.format === 'json') {
            ctx.out.json({ profile: t.profile, ip: t.guestIp ?? null, host: t.guestIp ?? t.host, ssh: { host: t.host, port: t.port }, forwards });
            return;
          }
          ctx.out.data(t.guestIp ?? t.host);
          for (const f of forwards) ctx.out.error(`guest port ${f.guestPort} is reached at ${f.host}:${f.port}`);
        },
        { formats: ['text', 'json'] },
      ),
    );
  withExamples(ip, [['devcluster ip', 'e.g. 192.168.211.10'], ['devcluster ip -o json', 'with the SSH endpoint']]);

  const ssh = program
    .command('ssh [command...]')
    .description('Open a shell in the VM, or run a command there (exit code: the remote command\'s)')
    .helpGroup(GROUP_TROUBLESHOOTING)
    .action(
      action(async (ctx, command) => {
        const { sshTarget } = await import('../cluster/ssh-access.ts');
        const { sshCommandLine } = await import('../ssh/interactive.ts');
        const t = await sshTarget(lifecycle(ctx));
        const interactive = process.stdin.isTTY === true && process.stdout.isTTY === true;
        const line = sshCommandLine({ host: t.host, port: t.port, user: t.user, privateKeyPath: t.privateKeyPath, knownHostsPath: t.knownHostsPath, command, interactive });
        const { logLine } = await import('../ui/context.ts');
        logLine('exec', `$ ssh ${line.args.join(' ')}`);
        const { runForeground } = await import('../host/foreground-child.ts');
        return await runForeground(line.command, line.args, ctx.signal);
      }),
    );
  withExamples(ssh, [['devcluster ssh', 'a shell in the VM'], ['devcluster ssh -- cloud-init status --wait', 'run a command'], ['devcluster -p dev ssh -- sudo journalctl -b', 'in another profile']]);

  const logs = program
    .command('logs')
    .description('Show the VM\'s serial console and the last devcluster command log, or make a support bundle')
    .helpGroup(GROUP_TROUBLESHOOTING)
    .option('-n, --length <lines>', 'lines from the end of each log', '60')
    .option('--bundle', 'write a zip with doctor output, logs and guest journals (secrets masked)')
    .action(
      action(async (ctx, _args, opts) => {
        const { showLogs } = await import('../cluster/logs.ts');
        await showLogs(lifecycle(ctx), { lines: String(opts['length']), bundle: opts['bundle'] === true });
      }),
    );
  withExamples(logs, [['devcluster logs', 'serial console and last command log'], ['devcluster logs --bundle', 'a zip to attach to a bug report']]);
}
