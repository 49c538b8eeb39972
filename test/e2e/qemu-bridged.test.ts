import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { CLI, childResult } from '../helpers/cli.ts';
import type { CliResult } from '../helpers/cli.ts';
import { E2E_HOME, VM_FLAGS, ensureDebianImage, requireRootAndQemu } from './guest.ts';

// Bridged mode creates a bridge, a tap, an nftables table, a sysctl change and
// dnsmasq: the whole run happens inside a network namespace this test makes,
// never on the machine's own interfaces.
const run = promisify(execFile);
const RUN = randomBytes(3).toString('hex');
const NS = `dce2e-${RUN}`;
const BRIDGE = `dce2e${RUN}`;
const PROFILE = `e2e-br-${RUN}`;
const skip = requireRootAndQemu();

function inNs(args: string[]): Promise<CliResult> {
  return childResult(spawn('ip', ['netns', 'exec', NS, process.execPath, CLI, ...args], {
    env: { ...process.env, DEVCLUSTER_HOME: E2E_HOME, CI: 'true', NO_COLOR: '1' },
    stdio: ['ignore', 'pipe', 'pipe'],
  }));
}

async function nsOutput(cmd: string, args: string[]): Promise<string> {
  return (await run('ip', ['netns', 'exec', NS, cmd, ...args])).stdout;
}

function dnsmasqFor(bridge: string): number[] {
  return readdirSync('/proc')
    .filter((e) => /^\d+$/.test(e))
    .filter((e) => {
      try {
        const cmd = readFileSync(`/proc/${e}/cmdline`, 'utf8');
        return cmd.includes('dnsmasq') && cmd.includes(bridge);
      } catch {
        return false;
      }
    })
    .map(Number);
}

before(async () => {
  if (skip !== false) return;
  await ensureDebianImage();
  await run('ip', ['netns', 'add', NS]);
  await run('ip', ['netns', 'exec', NS, 'ip', 'link', 'set', 'lo', 'up']);
});

after(async () => {
  if (skip !== false) return;
  await inNs(['delete', '-p', PROFILE]);
  await run('ip', ['netns', 'delete', NS]).catch(() => undefined);
});

test('bridged: start in a namespace, reach the guest on its own address, delete leaves no bridge, tap, nft table or dnsmasq', { skip, timeout: 30 * 60_000 }, async () => {
  const started = await inNs(['start', '-p', PROFILE, ...VM_FLAGS, '--qemu-network=bridged', `--qemu-bridge=${BRIDGE}`]);
  assert.equal(started.code, 0, `${started.stdout}\n${started.stderr}`);

  const ip = (await inNs(['ip', '-p', PROFILE])).stdout.trim();
  assert.match(ip, /^(192\.168|10\.213)\.\d+\.\d+$/);
  const hostname = await inNs(['ssh', '-p', PROFILE, '--', 'hostname']);
  assert.equal(hostname.stdout.trim(), PROFILE);
  // The guest got the static address from the seed and routes through the bridge's gateway.
  const route = await inNs(['ssh', '-p', PROFILE, '--', 'ip', '-4', 'route', 'show', 'default']);
  assert.match(route.stdout, /default via \d+\.\d+\.\d+\.1/);

  const links = JSON.parse(await nsOutput('ip', ['-j', 'link', 'show'])) as Array<{ ifname: string; master?: string }>;
  assert.ok(links.some((l) => l.ifname === BRIDGE), 'the bridge exists');
  assert.ok(links.some((l) => l.master === BRIDGE && l.ifname.startsWith('dc-')), 'a tap is in the bridge');
  assert.match(await nsOutput('nft', ['list', 'table', 'ip', 'devcluster']), /masquerade/);
  assert.ok(dnsmasqFor(BRIDGE).length > 0, 'dnsmasq serves the bridge');

  const deleted = await inNs(['delete', '-p', PROFILE]);
  assert.equal(deleted.code, 0, deleted.stderr);
  const after = JSON.parse(await nsOutput('ip', ['-j', 'link', 'show'])) as Array<{ ifname: string }>;
  assert.deepEqual(after.map((l) => l.ifname), ['lo'], 'no bridge or tap is left');
  const tables = await nsOutput('nft', ['list', 'tables']);
  assert.doesNotMatch(tables, /devcluster/, 'no nftables table is left');
  assert.deepEqual(dnsmasqFor(BRIDGE), [], 'no dnsmasq is left');
  assert.equal((await nsOutput('sysctl', ['-n', 'net.ipv4.ip_forward'])).trim(), '0', 'ip_forward is restored');
  assert.equal(existsSync(join(E2E_HOME, 'profiles', PROFILE)), false);
});
