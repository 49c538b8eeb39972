import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir, userInfo } from 'node:os';
import { dirname, join } from 'node:path';
import { settingOf } from '../../src/doctor/context.ts';
import { describeRoute, hostRoutes } from '../../src/doctor/routes.ts';
import { findRouteConflicts } from '../../src/doctor/net.ts';
import { errorText, fail, pass, skip, warn } from '../../src/doctor/outcome.ts';
import { shQuote } from '../../src/doctor/shell.ts';
import type { Check, CheckContext, Fix, FixCommand } from '../../src/doctor/types.ts';
import { ANY_EXIT_CODE } from '../../src/host/exec.ts';
import { formatCidr, isIpv4, parseCidr } from '../../src/host/ipv4.ts';
import type { Ipv4Net } from '../../src/host/ipv4.ts';
import { writeFileAtomic } from '../../src/profile/atomic.ts';
import { BOOTPD, firewallVerdict, parseAllowBuiltIn, parseAppBlocked, parseBlockAll, parseGlobalState, SOCKETFILTERFW } from './firewall.ts';
import type { FirewallAnswers } from './firewall.ts';
import { findHyperkit, MACOS_HOST, MIN_HYPERKIT_VERSION, parseHyperkitVersion, parseTranslated, ROOT_OWNED_HYPERKIT, rootOwnershipProblems, sudoersLine } from './host.ts';
import { parseSudoList, sudoVerdict } from './sudo-rules.ts';
import type { SudoVerdict } from './sudo-rules.ts';

/**
 * The HyperKit driver's doctor checks: an Intel Mac, the hyperkit program,
 * password-less sudo for it (vmnet needs root), and what stops bootpd from
 * giving the VM an address (the application firewall, a VPN that routes
 * vmnet's subnet). Each runs only on macOS with the hyperkit driver.
 */

const MAC = ['darwin'] as const;
const QEMU_INSTEAD: FixCommand = { shell: 'sh', run: 'devcluster config set driver qemu', elevated: false };

/** "Intel(R) Core(TM) i7-9750H CPU @ 2.60GHz", "Apple M1 Pro", and Rosetta's "VirtualApple @ 2.50GHz". */
export function cpuMaker(brand: string): 'intel' | 'apple' | undefined {
  if (/^\s*(Apple\b|VirtualApple)/.test(brand)) return 'apple';
  if (/\bIntel\b/.test(brand)) return 'intel';
  return undefined;
}


const cpuCheck: Check = {
  id: 'HYPERKIT_CPU_UNSUPPORTED',
  title: 'HyperKit CPU',
  category: 'host',
  looksAt: 'that this Mac has an Intel CPU (process architecture, sysctl machdep.cpu.brand_string, and sysctl.proc_translated for Node running under Rosetta 2): HyperKit does not run on Apple silicon',
  platforms: MAC,
  drivers: ['hyperkit'],
  fatal: true,
  exitCode: 36,
  async run(ctx) {
    const appleSilicon = (why: string) =>
      fail(`HyperKit runs only on Intel Macs; ${why}`, {
        fix: { description: 'Use the QEMU driver, which runs on Apple silicon with Hypervisor.framework (HVF).', commands: [QEMU_INSTEAD] },
      });
    if (ctx.host.arch === 'arm64') return appleSilicon('this Mac has Apple silicon (arm64)');
    if (ctx.host.arch !== 'x64') return fail(`HyperKit runs only on Intel Macs (x64); this process runs as ${ctx.host.arch}`);
    const brand = await ctx.exec('sysctl', ['-n', 'machdep.cpu.brand_string'], { timeoutMs: 5000, parse: true, okExitCodes: ANY_EXIT_CODE }).then(
      (r) => (r.exitCode === 0 ? r.stdout.trim() : undefined),
      () => undefined,
    );
    const translated = await ctx.exec('sysctl', ['sysctl.proc_translated'], { timeoutMs: 5000, parse: true, okExitCodes: ANY_EXIT_CODE }).then(
      (r) => parseTranslated(r.stdout),
      () => undefined,
    );
    // An x64 Node on Apple silicon runs under Rosetta 2 and reports x64; Rosetta does not translate a hypervisor.
    if (translated === true) return appleSilicon(`this Mac has Apple silicon${brand === undefined ? '' : ` (${brand})`}; devcluster runs under Rosetta 2, which reports x64`);
    if (brand !== undefined && cpuMaker(brand) === 'apple') return appleSilicon(`this Mac has Apple silicon (${brand})`);
    return pass(brand === undefined ? 'x64 (the CPU brand could not be read)' : `${brand} (x64)`);
  },
};

interface HyperkitFound {
  path?: string;
  setting: string;
  version?: number;
  versionText?: string;
  problem?: string;
}

async function hyperkitFound(ctx: CheckContext): Promise<HyperkitFound> {
  return ctx.memo('hyperkit', async (c) => {
    const setting = String(settingOf(c, 'hyperkit-path', 'auto'));
    const path = await findHyperkit(setting, c.env, MACOS_HOST);
    c.evidence({ command: `find hyperkit (hyperkit-path=${setting}): PATH, ${MACOS_HOST.installDirs.join(', ')}`, ...(path === undefined ? { error: 'not found' } : { stdout: path }) });
    if (path === undefined) return { setting };
    try {
      // hyperkit prints its version on stderr.
      const r = await c.exec(path, ['-v'], { timeoutMs: 10_000, parse: true, okExitCodes: ANY_EXIT_CODE });
      const text = `${r.stdout}\n${r.stderr}`;
      const version = parseHyperkitVersion(text);
      const versionText = /v?0\.\d{8}\S*/.exec(text)?.[0];
      if (r.exitCode !== 0 && version === undefined) return { path, setting, problem: `\`${path} -v\` exited with code ${r.exitCode}` };
      return { path, setting, ...(version === undefined ? {} : { version }), ...(versionText === undefined ? {} : { versionText }) };
    } catch (e) {
      return { path, setting, problem: errorText(e) };
    }
  });
}

function formatVersion(n: number): string {
  return `v0.${n}`;
}

const installedCheck: Check = {
  id: 'HYPERKIT_NOT_INSTALLED',
  title: 'HyperKit',
  category: 'hypervisor',
  looksAt: `the hyperkit program (the hyperkit-path setting, else PATH, /usr/local/bin and Docker Desktop's com.docker.hyperkit) and its version from \`hyperkit -v\` (${formatVersion(MIN_HYPERKIT_VERSION)} or later)`,
  platforms: MAC,
  drivers: ['hyperkit'],
  fatal: true,
  exitCode: 65,
  async run(ctx) {
    const h = await hyperkitFound(ctx);
    if (h.path === undefined) {
      return fail(h.setting === 'auto' ? 'hyperkit was not found on PATH, in /usr/local/bin or in Docker Desktop' : `hyperkit-path ${h.setting} is not an executable file`, {
        details: ['Homebrew disabled its hyperkit formula in 2025 and HyperKit is no longer maintained, so there is no supported way to install it.'],
        fix: {
          description: 'Use the QEMU driver, which is recommended on macOS; or, if you have a hyperkit binary (an older Docker Desktop ships com.docker.hyperkit), point the hyperkit-path setting at it.',
          commands: [QEMU_INSTEAD, { shell: 'sh', run: 'devcluster config set hyperkit-path /path/to/hyperkit', elevated: false }],
        },
        related: ['kubernetes/minikube#23005'],
      });
    }
    if (h.problem !== undefined) {
      return fail(`${h.path} does not run: ${h.problem}`, {
        fix: { description: 'Point the hyperkit-path setting at a working hyperkit, or use the QEMU driver.', commands: [QEMU_INSTEAD] },
      });
    }
    if (h.version === undefined) {
      return warn(`${h.path} printed no version devcluster can read`, {
        details: [`\`hyperkit -v\` should print "hyperkit: v0.YYYYMMDD…"; devcluster needs ${formatVersion(MIN_HYPERKIT_VERSION)} or later.`],
      });
    }
    const text = `hyperkit ${h.versionText ?? formatVersion(h.version)} (${h.path})`;
    if (h.version < MIN_HYPERKIT_VERSION) {
      return warn(`${text} is older than ${formatVersion(MIN_HYPERKIT_VERSION)}`, {
        details: ['Old hyperkit builds crash on newer macOS releases ("hyperkit crashed!" in minikube).'],
        fix: { description: `Use a hyperkit of ${formatVersion(MIN_HYPERKIT_VERSION)} or later (set hyperkit-path to it), or the QEMU driver.`, commands: [QEMU_INSTEAD] },
        related: ['kubernetes/minikube#5780'],
      });
    }
    return pass(text);
  },
};

export const SUDOERS_FILE = '/etc/sudoers.d/devcluster-hyperkit';

function whoami(ctx: CheckContext): string {
  return ctx.env['USER'] ?? userInfo().username;
}

/**
 * Installs the sudoers line the way visudo would accept it: checked by
 * visudo in a private temporary file, copied next to its final place under
 * a name sudo ignores (a name with a dot), checked again there, then renamed
 * over the old one. A line sudo rejects never reaches a file sudo reads.
 */
async function installSudoers(ctx: CheckContext, line: string): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'devcluster-sudoers-'));
  const staged = `${SUDOERS_FILE}.new`;
  try {
    const tmp = join(dir, 'devcluster-hyperkit');
    await writeFileAtomic(tmp, `${line}\n`, { mode: 0o600 });
    const opts = { timeoutMs: 30_000 };
    await ctx.execElevated('/usr/sbin/visudo', ['-c', '-f', tmp], opts);
    await ctx.execElevated('/usr/bin/install', ['-d', '-m', '0755', '-o', 'root', '-g', 'wheel', '/etc/sudoers.d'], opts);
    await ctx.execElevated('/usr/bin/install', ['-m', '0440', '-o', 'root', '-g', 'wheel', tmp, staged], opts);
    await ctx.execElevated('/usr/sbin/visudo', ['-c', '-f', staged], opts);
    await ctx.execElevated('/bin/mv', ['-f', staged, SUDOERS_FILE], opts);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

function sudoersFix(ctx: CheckContext, hyperkit: string): Fix {
  const line = sudoersLine(whoami(ctx), hyperkit, MACOS_HOST);
  return {
    description: `Allow hyperkit and stopping it as root without a password: a sudoers file, checked by visudo before it is installed as ${SUDOERS_FILE}.`,
    commands: [
      {
        shell: 'sh',
        run: `f=$(mktemp) && printf '%s\\n' ${shQuote(line)} > "$f" && sudo visudo -c -f "$f" && sudo install -m 0440 -o root -g wheel "$f" ${SUDOERS_FILE}; rm -f "$f"`,
        elevated: true,
      },
    ],
    apply: (c) => installSudoers(c, line),
    applyDescription: `writes ${SUDOERS_FILE} with the line "${line}" after visudo -c accepts it`,
    elevated: true,
  };
}

type SudoAnswer = { kind: 'listing'; text: string } | { kind: 'password' } | { kind: 'refused'; text: string };

async function sudoListing(ctx: CheckContext): Promise<SudoAnswer> {
  // -k: ignore a cached sudo timestamp, which would make a rule that asks for a password look password-less.
  const r = await ctx.exec(MACOS_HOST.sudo, ['-n', '-k', '-l'], { timeoutMs: 10_000, parse: true, okExitCodes: ANY_EXIT_CODE });
  if (r.exitCode === 0) return { kind: 'listing', text: r.stdout };
  if (/password is required|a terminal is required/i.test(r.stderr)) return { kind: 'password' };
  return { kind: 'refused', text: (r.stderr.trim() || r.stdout.trim()).split('\n').pop() ?? `exit code ${r.exitCode}` };
}

/** sudo's own answer to "may I run this as root", which follows aliases and wildcards exactly. */
async function sudoPermits(ctx: CheckContext, argv: readonly string[]): Promise<boolean> {
  const r = await ctx.exec(MACOS_HOST.sudo, ['-n', '-k', '-l', ...argv], { timeoutMs: 10_000, parse: true, okExitCodes: ANY_EXIT_CODE });
  return r.exitCode === 0;
}

const sudoCheck: Check = {
  id: 'HYPERKIT_SUDO_NOT_CONFIGURED',
  title: 'sudo for HyperKit',
  category: 'hypervisor',
  looksAt: `that sudo runs hyperkit, \`${MACOS_HOST.kill} -TERM\` and \`${MACOS_HOST.kill} -KILL\` as root without a password (\`sudo -n -k -l\`, the rule that matches last): vmnet needs root and the driver uses \`sudo -n\`; --fix installs ${SUDOERS_FILE} after visudo -c accepts it`,
  platforms: MAC,
  drivers: ['hyperkit'],
  requires: ['HYPERKIT_NOT_INSTALLED'],
  fatal: true,
  exitCode: 67,
  async run(ctx) {
    const h = await hyperkitFound(ctx);
    if (h.path === undefined) return skip('hyperkit is not installed');
    const fix = sudoersFix(ctx, h.path);
    const listing = await sudoListing(ctx);
    if (listing.kind === 'password') {
      return fail('sudo asks for a password: no sudo rule lets this user run hyperkit without one', { fix });
    }
    if (listing.kind === 'refused') return fail(`sudo -l refused: ${listing.text}`, { fix });
    const rules = parseSudoList(listing.text);
    const wanted: Array<{ name: string; argv: string[] }> = [
      { name: h.path, argv: [h.path] },
      { name: `${MACOS_HOST.kill} -TERM`, argv: [MACOS_HOST.kill, '-TERM', '1'] },
      // kill and delete escalate to SIGKILL when the guest does not power off.
      { name: `${MACOS_HOST.kill} -KILL`, argv: [MACOS_HOST.kill, '-KILL', '1'] },
    ];
    const verdicts: Array<{ name: string; verdict: SudoVerdict }> = [];
    for (const w of wanted) {
      const verdict = sudoVerdict(rules, w.argv);
      // sudo's own matcher has the last word on whether a command is allowed at all (aliases, digests).
      verdicts.push({ name: w.name, verdict: verdict === 'denied' || !(await sudoPermits(ctx, w.argv)) ? 'denied' : verdict });
    }
    const bad = verdicts.filter((v) => v.verdict === 'password' || v.verdict === 'denied');
    if (bad.length > 0) {
      const words = (v: SudoVerdict) => (v === 'password' ? 'asks for a password' : 'is not allowed');
      return fail(`sudo ${andList(bad.map((b) => `${words(b.verdict)} for ${b.name}`))}`, {
        details: ['sudo uses the last rule that matches a command: a later rule that asks for a password (such as %admin ALL = (ALL) ALL) overrides an earlier NOPASSWD one.'],
        fix,
      });
    }
    const unknown = verdicts.filter((v) => v.verdict === 'unknown');
    if (unknown.length > 0) {
      return warn(`sudo allows ${andList(unknown.map((u) => u.name))}, but its rules as listed do not show whether it asks for a password`, {
        details: ['Rules that use aliases or digests are not read by devcluster; `sudo -n` may still work.'],
        fix,
      });
    }
    return pass(`sudo runs ${andList(verdicts.map((v) => v.name))} as root without a password`);
  },
};

/** "a", "a and b", "a, b and c". */
function andList(items: readonly string[]): string {
  return items.length <= 1 ? (items[0] ?? '') : `${items.slice(0, -1).join(', ')} and ${items.at(-1) ?? ''}`;
}

const binaryOwnershipCheck: Check = {
  id: 'HYPERKIT_BINARY_UNSAFE',
  title: 'HyperKit binary ownership',
  category: 'hypervisor',
  looksAt: 'that the hyperkit sudo runs as root, and every directory above it (through symlinks), belongs to root and is writable only by root: otherwise any program running as you could replace it and become root',
  platforms: MAC,
  drivers: ['hyperkit'],
  requires: ['HYPERKIT_NOT_INSTALLED'],
  fatal: true,
  exitCode: 67,
  async run(ctx) {
    const h = await hyperkitFound(ctx);
    if (h.path === undefined) return skip('hyperkit is not installed');
    const problems = await rootOwnershipProblems(h.path);
    ctx.evidence({ command: `stat ${h.path} and each directory above it`, ...(problems.length === 0 ? {} : { problem: problems.join('; ') }) });
    if (problems.length === 0) return pass(`${h.path} and the directories above it belong to root`);
    const user = whoami(ctx);
    return fail(`${h.path} may be replaced without root, so a password-less sudo rule for it would give root to any program you run`, {
      details: problems,
      fix: {
        description: `Install a copy owned by root where only root can write, point devcluster at it, and give the sudo rule that path (${ROOT_OWNED_HYPERKIT}).`,
        commands: [
          { shell: 'sh', run: `sudo install -d -o root -g wheel -m 755 ${dirname(ROOT_OWNED_HYPERKIT)} && sudo install -o root -g wheel -m 755 ${h.path} ${ROOT_OWNED_HYPERKIT}`, elevated: true },
          { shell: 'sh', run: `devcluster config set hyperkit-path ${ROOT_OWNED_HYPERKIT}`, elevated: false },
          { shell: 'sh', run: sudoersLine(user, ROOT_OWNED_HYPERKIT, MACOS_HOST), elevated: true, file: SUDOERS_FILE },
        ],
      },
    });
  },
};

export const DEFAULT_VMNET_SUBNET = '192.168.64.0/24';
const VMNET_DOMAIN = '/Library/Preferences/SystemConfiguration/com.apple.vmnet';

export interface VmnetNetwork {
  subnet: Ipv4Net;
  /** The host's address on the network, which is also the guests' gateway and DNS server. */
  hostAddress: string;
  source: 'setting' | 'default';
  problem?: string;
}

/**
 * `defaults read … Shared_Net_Address`: the host's address on vmnet's shared
 * network ("192.168.64.1"); the key or the whole domain is absent until
 * something changes it, which means the default. vmnet uses a /24.
 */
export function parseSharedNetAddress(exitCode: number, stdout: string, stderr: string): VmnetNetwork {
  const value = stdout.trim();
  if (exitCode === 0 && isIpv4(value)) return { subnet: parseCidr(`${value}/24`) as Ipv4Net, hostAddress: value, source: 'setting' };
  const fallback = { subnet: parseCidr(DEFAULT_VMNET_SUBNET) as Ipv4Net, hostAddress: '192.168.64.1', source: 'default' as const };
  if (exitCode !== 0 && /does not exist/.test(stderr)) return fallback;
  const said = (stderr.trim() || value).split('\n').pop() ?? '';
  return { ...fallback, problem: exitCode === 0 ? `Shared_Net_Address is ${JSON.stringify(value)}, not an IPv4 address` : `defaults read exited with code ${exitCode}${said === '' ? '' : `: ${said}`}` };
}

async function vmnetNetwork(ctx: CheckContext): Promise<VmnetNetwork> {
  return ctx.memo('hyperkit-vmnet', async (c) => {
    try {
      const r = await c.exec('defaults', ['read', VMNET_DOMAIN, 'Shared_Net_Address'], { timeoutMs: 5000, parse: true, okExitCodes: ANY_EXIT_CODE });
      return parseSharedNetAddress(r.exitCode, r.stdout, r.stderr);
    } catch (e) {
      return { ...parseSharedNetAddress(1, '', ''), problem: errorText(e) };
    }
  });
}

const vmnetCheck: Check = {
  id: 'HYPERKIT_VMNET_SUBNET',
  title: 'vmnet shared network',
  category: 'network',
  looksAt: `the subnet of vmnet's shared network, from \`defaults read ${VMNET_DOMAIN} Shared_Net_Address\` (absent: ${DEFAULT_VMNET_SUBNET}), which the VM gets its address from`,
  platforms: MAC,
  drivers: ['hyperkit'],
  exitCode: 70,
  async run(ctx) {
    const n = await vmnetNetwork(ctx);
    const text = `${formatCidr(n.subnet)} (host ${n.hostAddress}${n.source === 'default' ? ", macOS's default" : ', set in com.apple.vmnet'})`;
    if (n.problem !== undefined) {
      return warn(`cannot read vmnet's shared network address: ${n.problem}; assuming ${text}`, {
        details: ['The VPN route check below uses the assumed subnet.'],
      });
    }
    return pass(text, ['macOS may move the shared network to the next free /24 when the address is taken; the leases in /var/db/dhcpd_leases then use the new one.']);
  },
};

const firewallCheck: Check = {
  id: 'HYPERKIT_BOOTPD_BLOCKED',
  title: 'Firewall and bootpd',
  category: 'network',
  looksAt: `whether the application firewall keeps ${BOOTPD} (macOS's DHCP server for vmnet) from answering the VM: \`socketfilterfw --getglobalstate\`, \`--getblockall\`, \`--getallowsigned\` and \`--getappblocked ${BOOTPD}\``,
  platforms: MAC,
  drivers: ['hyperkit'],
  exitCode: 75,
  async run(ctx) {
    const ask = async (args: string[]) => {
      const r = await ctx.exec(SOCKETFILTERFW, args, { timeoutMs: 10_000, parse: true, okExitCodes: ANY_EXIT_CODE });
      return `${r.stdout}\n${r.stderr}`;
    };
    const answers: FirewallAnswers = { state: parseGlobalState(await ask(['--getglobalstate'])) };
    if (answers.state !== 0 && answers.state !== undefined) {
      answers.blockAll = parseBlockAll(await ask(['--getblockall']));
      answers.allowBuiltIn = parseAllowBuiltIn(await ask(['--getallowsigned']));
      answers.app = parseAppBlocked(await ask(['--getappblocked', BOOTPD]));
    }
    const v = firewallVerdict(answers);
    const unblock: Fix = {
      description: `Add ${BOOTPD} to the application firewall and allow its incoming connections (System Settings, Network, Firewall, Options does the same). On a Mac managed by your organisation, the firewall is set by its profile: ask its administrators.`,
      commands: [
        { shell: 'sh', run: `sudo ${SOCKETFILTERFW} --add ${BOOTPD}`, elevated: true },
        { shell: 'sh', run: `sudo ${SOCKETFILTERFW} --unblockapp ${BOOTPD}`, elevated: true },
      ],
      apply: async (c) => {
        // --add answers "already a part of the firewall" with its own exit code on a second run; --unblockapp decides.
        await c.execElevated(SOCKETFILTERFW, ['--add', BOOTPD], { timeoutMs: 30_000, okExitCodes: ANY_EXIT_CODE });
        await c.execElevated(SOCKETFILTERFW, ['--unblockapp', BOOTPD], { timeoutMs: 30_000 });
      },
      applyDescription: `runs socketfilterfw --add and --unblockapp for ${BOOTPD}`,
      elevated: true,
    };
    const related = ['kubernetes/minikube#16643', 'lima-vm/socket_vmnet#51'];
    switch (v.kind) {
      case 'off':
        return pass('the application firewall is off');
      case 'allowed':
        return pass(`bootpd may answer: ${v.why}`);
      case 'blocked':
        return fail(`bootpd cannot give the VM an address: ${v.why}`, { fix: unblock, related });
      case 'block-all':
        return warn(`bootpd may not be able to give the VM an address: ${v.why}`, {
          details: ['Apple lets DHCP and a few other system services through in this mode but does not document whether bootpd is one of them; if the VM gets no address (HYPERKIT_NO_LEASE), turn it off.'],
          fix: {
            description: 'Turn off "Block all incoming connections" (System Settings, Network, Firewall, Options), and allow bootpd.',
            commands: [{ shell: 'sh', run: `sudo ${SOCKETFILTERFW} --setblockall off`, elevated: true }, ...unblock.commands],
          },
          related,
        });
      case 'unsure':
        return warn(`cannot tell whether the firewall lets bootpd answer: ${v.why}`, {
          details: ['minikube saw bootpd missing from the firewall list on macOS 15.2 and later while it worked (kubernetes/minikube#20399).'],
          fix: unblock,
          related: [...related, 'kubernetes/minikube#20399'],
        });
    }
  },
};

/** Interfaces VPN clients route through: utun (WireGuard, IKEv2, most clients), ppp (L2TP, PPTP), ipsec (Cisco). */
const TUNNEL = /^(utun|ppp|ipsec)\d*$/;

const vpnCheck: Check = {
  id: 'HYPERKIT_VPN_ROUTE',
  title: 'VPN routes',
  category: 'network',
  looksAt: "routes in `netstat -rn -f inet` that send vmnet's shared subnet, or a network covering it, through a tunnel interface (utun*, ppp*, ipsec*): a VPN that captures the VM's traffic",
  platforms: MAC,
  drivers: ['hyperkit'],
  requires: ['HYPERKIT_VMNET_SUBNET'],
  exitCode: 71,
  async run(ctx) {
    const n = await vmnetNetwork(ctx);
    const routes = await hostRoutes(ctx);
    const tunnels = findRouteConflicts(routes, n.subnet, []).filter((c) => TUNNEL.test(c.route.iface));
    if (tunnels.length > 0) {
      const ifaces = [...new Set(tunnels.map((t) => t.route.iface))];
      return warn(`${formatCidr(n.subnet)} is routed through ${ifaces.join(', ')}: ${tunnels.map((t) => describeRoute(t.route)).join('; ')}`, {
        details: [
          'A VPN that routes the vmnet subnet takes the VM\'s traffic, so bootpd\'s lease, SSH and the API server are not reached.',
          'Some VPN clients (Cisco AnyConnect among them) keep enforcing their routes while connected.',
        ],
        fix: {
          description: `Allow local network access in the VPN client, exclude ${formatCidr(n.subnet)} from its routes, or disconnect it while using the cluster; the QEMU driver does not use vmnet (its guest is reached through ports on 127.0.0.1).`,
          commands: [],
        },
        related: ['kubernetes/minikube#7072', 'kubernetes/minikube#9504'],
      });
    }
    return pass(`no tunnel interface routes ${formatCidr(n.subnet)} (${routes.length} routes)`);
  },
};

export const HYPERKIT_CHECKS: readonly Check[] = [cpuCheck, installedCheck, binaryOwnershipCheck, sudoCheck, vmnetCheck, firewallCheck, vpnCheck];
