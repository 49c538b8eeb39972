import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  findRouteConflicts, maskProxyPassword, missingNoProxy, noProxyCovers, parseLinuxRoutes, parseMacRoutes, parseWindowsRoutes,
} from '../../src/doctor/net.ts';
import { formatCidr, netContains as cidrContains, netsOverlap as cidrsOverlap, parseCidr } from '../../src/host/ipv4.ts';
import { kubeconfigPaths, mergeKubeconfig, parseKubeconfig, sameServer } from '../../src/doctor/kubeconfig.ts';
import {
  clockSkewSeconds, evaluateLinuxVirtualization, evaluateMacOs, evaluateMacVirtualization, evaluateWindowsOs, evaluateWindowsVirtualization, parseSwVers,
} from '../../src/doctor/checks/host.ts';
import { parseOsRelease } from '../../src/host/os-release.ts';
import { minorOf, parseKubectlClientVersion } from '../../src/doctor/checks/tools.ts';
import { evaluateCertificates, readyzFailures } from '../../src/doctor/checks/guest.ts';
import { envLines, pathLines } from '../../src/doctor/shell.ts';
import { extractJson, jsonScript } from '../../src/host/powershell.ts';
import { parseQemuVersion } from '../../drivers/qemu/checks.ts';
import { REPO } from '../helpers/cli.ts';

const fixture = (name: string) => readFileSync(join(REPO, 'test', 'fixtures', 'doctor', name), 'utf8');
const cidr = (s: string) => {
  const c = parseCidr(s);
  assert.ok(c !== undefined, s);
  return c;
};

describe('CIDR arithmetic', () => {
  test('parses, normalises host bits, and compares', () => {
    assert.equal(formatCidr(cidr('192.168.211.7/24')), '192.168.211.0/24');
    assert.equal(formatCidr(cidr('10.1.2.3')), '10.1.2.3/32');
    assert.equal(parseCidr('10.0.0.0/33'), undefined);
    assert.equal(parseCidr('fe80::/10'), undefined);
    assert.ok(cidrContains(cidr('10.0.0.0/8'), cidr('10.96.0.0/12')));
    assert.ok(!cidrContains(cidr('10.96.0.0/12'), cidr('10.0.0.0/8')));
    assert.ok(cidrsOverlap(cidr('10.96.0.0/12'), cidr('10.0.0.0/8')));
    assert.ok(!cidrsOverlap(cidr('192.168.211.0/24'), cidr('192.168.212.0/24')));
  });
});

describe('route tables', () => {
  test('ip -j route: default, link routes, and non-unicast routes skipped', () => {
    const routes = parseLinuxRoutes(fixture('linux-ip-route-vpn.json'));
    assert.equal(routes.length, 6);
    assert.deepEqual(routes.map((r) => `${formatCidr(r.destination)} ${r.iface}`), [
      '0.0.0.0/0 wlp0s20f3', '10.0.0.0/8 wg0', '172.17.0.0/16 docker0', '192.168.1.0/24 wlp0s20f3', '192.168.211.0/24 wg0', '192.168.212.0/24 devcluster0',
    ]);
  });

  test('a VPN route over the VM subnet is a conflict; the default route and our own bridge are not', () => {
    const routes = parseLinuxRoutes(fixture('linux-ip-route-vpn.json'));
    const conflicts = findRouteConflicts(routes, cidr('192.168.211.0/24'), ['devcluster0']);
    assert.deepEqual(conflicts.map((c) => formatCidr(c.route.destination)), ['192.168.211.0/24']);
    assert.deepEqual(findRouteConflicts(routes, cidr('192.168.212.0/24'), ['devcluster0']), []);
    // The VPN's 10/8 swallows any 10.x subnet.
    assert.deepEqual(findRouteConflicts(routes, cidr('10.77.0.0/24'), ['devcluster0']).map((c) => c.route.iface), ['wg0']);
  });

  test('Get-NetRoute JSON: arrays, single objects, and the vEthernet switch excluded by name', () => {
    const routes = parseWindowsRoutes(fixture('windows-get-netroute.json'));
    assert.equal(routes.length, 10);
    const conflicts = findRouteConflicts(routes, cidr('192.168.211.0/24'), ['vEthernet (devcluster)']);
    assert.deepEqual(conflicts.map((c) => `${formatCidr(c.route.destination)} ${c.route.iface} ${c.route.gateway}`), ['192.168.211.0/24 Ethernet 3 10.64.0.1']);
    const single = parseWindowsRoutes(fixture('windows-get-netroute-single.json'));
    assert.deepEqual(single.map((r) => formatCidr(r.destination)), ['0.0.0.0/0']);
    assert.deepEqual(parseWindowsRoutes(''), []);
  });

  test('netstat -rn: abbreviated destinations are expanded', () => {
    const routes = parseMacRoutes(fixture('macos-netstat-rn.txt'));
    const byDest = new Map(routes.map((r) => [formatCidr(r.destination), r.iface]));
    assert.equal(byDest.get('10.8.0.0/16'), 'utun4');
    assert.equal(byDest.get('127.0.0.0/8'), 'lo0');
    assert.equal(byDest.get('192.168.64.0/24'), 'bridge100');
    assert.equal(byDest.get('169.254.0.0/16'), 'en0');
    assert.equal(byDest.get('0.0.0.0/0'), 'en0');
    assert.ok(!routes.some((r) => r.iface === 'utun0'), 'IPv6 table is not read');
    const conflicts = findRouteConflicts(routes, cidr('192.168.211.0/24'), ['bridge100']);
    assert.deepEqual(conflicts.map((c) => c.route.iface), ['utun4']);
    assert.deepEqual(findRouteConflicts(routes, cidr('192.168.64.0/24'), ['bridge100']), []);
  });
});

describe('NO_PROXY coverage', () => {
  test('CIDRs, exact entries, "*", and both spellings count', () => {
    assert.ok(noProxyCovers(['10.0.0.0/8'], '10.96.0.0/12'));
    assert.ok(noProxyCovers(['192.168.211.10'], '192.168.211.10'));
    assert.ok(noProxyCovers(['*'], '10.244.0.0/16'));
    assert.ok(!noProxyCovers(['10.96.0.0/16'], '10.96.0.0/12'));
    assert.ok(!noProxyCovers(['.svc', 'localhost'], '10.96.0.0/12'));
    assert.deepEqual(missingNoProxy({ NO_PROXY: 'localhost,10.96.0.0/12', no_proxy: '10.244.0.0/16' }, ['10.96.0.0/12', '10.244.0.0/16', '192.168.211.0/24']), ['192.168.211.0/24']);
  });

  test('proxy passwords are masked, with or without a scheme', () => {
    assert.equal(maskProxyPassword('http://alice:pa55@proxy.corp:3128'), 'http://alice:********@proxy.corp:3128');
    assert.equal(maskProxyPassword('alice:pa55@proxy.corp:3128'), 'alice:********@proxy.corp:3128');
    assert.equal(maskProxyPassword('http://proxy.corp:3128'), 'http://proxy.corp:3128');
  });
});

describe('shell lines', () => {
  test('PATH lines per shell, each with its startup file; PowerShell on Windows', () => {
    const unix = pathLines('/home/me/.devcluster/bin', '/home/me', 'linux');
    assert.deepEqual(unix.map((c) => [c.shell, c.run, c.file]), [
      ['bash', 'export PATH="/home/me/.devcluster/bin":"$PATH"', '/home/me/.bashrc'],
      ['zsh', 'export PATH="/home/me/.devcluster/bin":"$PATH"', '/home/me/.zshrc'],
      ['fish', 'fish_add_path --global --prepend /home/me/.devcluster/bin', '/home/me/.config/fish/conf.d/devcluster.fish'],
    ]);
    const win = pathLines('C:\\Users\\O\'Neil\\.devcluster\\bin', 'C:\\Users\\O\'Neil', 'win32');
    assert.equal(win.length, 1);
    assert.equal(win[0]?.run, "[Environment]::SetEnvironmentVariable('Path', 'C:\\Users\\O''Neil\\.devcluster\\bin;' + [Environment]::GetEnvironmentVariable('Path', 'User'), 'User')");
  });

  test('NO_PROXY lines set both spellings', () => {
    const lines = envLines(['NO_PROXY', 'no_proxy'], 'localhost,10.96.0.0/12', '/home/me', 'darwin');
    assert.equal(lines[0]?.run, 'export NO_PROXY="localhost,10.96.0.0/12" no_proxy="localhost,10.96.0.0/12"');
    assert.equal(lines[2]?.run, 'set -gx NO_PROXY localhost,10.96.0.0/12; set -gx no_proxy localhost,10.96.0.0/12');
    assert.equal(envLines(['NO_PROXY', 'no_proxy'], 'a,b', 'C:\\Users\\me', 'win32')[0]?.run, "[Environment]::SetEnvironmentVariable('NO_PROXY', 'a,b', 'User')");
  });
});

describe('kubeconfig', () => {
  const good = `apiVersion: v1
kind: Config
current-context: devcluster
clusters:
- name: devcluster
  cluster: {server: https://192.168.211.10:6443}
contexts:
- name: devcluster
  context: {cluster: devcluster, user: devcluster}
users:
- name: devcluster
  user: {}
`;

  test('parses contexts, clusters and current-context', () => {
    const f = parseKubeconfig('/k', good);
    assert.equal(f.problem, undefined);
    assert.equal(f.currentContext, 'devcluster');
    assert.deepEqual(f.clusters, [{ name: 'devcluster', server: 'https://192.168.211.10:6443' }]);
  });

  test('syntax errors name the line; wrong shapes are refused; an empty file is fine', () => {
    assert.match(parseKubeconfig('/k', 'clusters:\n  - name: a\n   bad: [\n').problem ?? '', /^not valid YAML: .+ at line \d+, column \d+$/);
    assert.match(parseKubeconfig('/k', '- just\n- a list\n').problem ?? '', /top level is not a mapping/);
    assert.match(parseKubeconfig('/k', 'contexts: nope\n').problem ?? '', /"contexts" is not a list/);
    assert.equal(parseKubeconfig('/k', '').problem, undefined);
  });

  test('merging follows kubectl: the first file that defines a name or current-context wins', () => {
    const a = parseKubeconfig('/a', 'contexts:\n- name: x\n  context: {cluster: from-a}\n');
    const b = parseKubeconfig('/b', 'current-context: x\ncontexts:\n- name: x\n  context: {cluster: from-b}\n- name: y\n  context: {cluster: c}\n');
    const kc = mergeKubeconfig('KUBECONFIG', [a, b]);
    assert.equal(kc.currentContext, 'x');
    assert.equal(kc.currentContextFile, '/b');
    assert.equal(kc.context('x')?.cluster, 'from-a');
    assert.equal(kc.context('y')?.file, '/b');
  });

  test('KUBECONFIG is split with the platform\'s separator', () => {
    assert.deepEqual(kubeconfigPaths({ KUBECONFIG: '/a:/b::/a' }, '/home/me', 'linux').paths, ['/a', '/b']);
    assert.deepEqual(kubeconfigPaths({ KUBECONFIG: 'C:\\a;C:\\b' }, 'C:\\Users\\me', 'win32').paths, ['C:\\a', 'C:\\b']);
    assert.deepEqual(kubeconfigPaths({}, '/home/me', 'linux'), { source: 'default', paths: ['/home/me/.kube/config'] });
  });

  test('server URLs compare by scheme, host and port', () => {
    assert.ok(sameServer('https://10.0.0.1:6443/', 'https://10.0.0.1:6443'));
    assert.ok(sameServer('https://example.test', 'https://EXAMPLE.test:443'));
    assert.ok(!sameServer('https://10.0.0.1:6443', 'https://10.0.0.2:6443'));
  });
});

describe('host facts', () => {
  test('os-release and sw_vers', () => {
    assert.equal(parseOsRelease('NAME="Debian GNU/Linux"\nPRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\nID=debian\n')['PRETTY_NAME'], 'Debian GNU/Linux 12 (bookworm)');
    const v = parseSwVers(fixture('macos-sw-vers.txt'));
    assert.deepEqual(v, { name: 'macOS', version: '14.5', build: '23F79' });
    assert.equal(evaluateMacOs(v, 'arm64').status, 'pass');
    assert.equal(evaluateMacOs({ name: 'Mac OS X', version: '10.15.7', build: '19H15' }, 'x64').status, 'fail');
  });

  test('Windows version from Win32_OperatingSystem', () => {
    const os = JSON.parse(fixture('windows-os.json')) as Record<string, string>;
    const r = evaluateWindowsOs(os);
    assert.equal(r.status, 'pass');
    assert.equal(r.summary, 'Microsoft Windows 11 Pro (version 10.0.22631, build 22631), 64-bit');
    assert.equal(evaluateWindowsOs({ Caption: 'Microsoft Windows 10 Pro', Version: '10.0.17134', BuildNumber: '17134' }).status, 'fail');
  });

  test('virtualization on each platform', () => {
    const intel = 'processor\t: 0\nflags\t\t: fpu vme de pse vmx ssse3\n';
    assert.equal(evaluateLinuxVirtualization(true, intel, 'qemu', 'auto').status, 'pass');
    const noModule = evaluateLinuxVirtualization(false, intel, 'virtualbox', 'auto');
    assert.equal(noModule.status, 'fail');
    assert.equal(noModule.fix?.commands[0]?.run, 'sudo modprobe kvm_intel');
    assert.equal(evaluateLinuxVirtualization(false, 'flags\t: fpu svm\n', 'qemu', 'kvm').fix?.commands[0]?.run, 'sudo modprobe kvm_amd');
    // QEMU falls back to software emulation: a warning, unless KVM was demanded.
    assert.equal(evaluateLinuxVirtualization(false, 'flags\t: fpu\n', 'qemu', 'auto').status, 'warn');
    assert.equal(evaluateLinuxVirtualization(false, 'flags\t: fpu\n', 'qemu', 'kvm').status, 'fail');

    assert.equal(evaluateMacVirtualization('1\n', '0\n').status, 'pass');
    assert.match(evaluateMacVirtualization('0\n', '1\n').summary, /itself a virtual machine/);

    const cpus = JSON.parse(fixture('windows-processor.json')) as Array<Record<string, boolean>>;
    assert.equal(evaluateWindowsVirtualization(false, cpus, 'hyperv').status, 'fail');
    assert.deepEqual(evaluateWindowsVirtualization(false, cpus, 'hyperv').fix?.requires, ['reboot']);
    // With a hypervisor running, the processor fields read false and mean nothing.
    assert.equal(evaluateWindowsVirtualization(true, cpus, 'hyperv').status, 'pass');
  });

  test('clock skew against the middle of the SSH round trip', () => {
    assert.equal(clockSkewSeconds('1700000010.500000000\n', 1700000000000, 1700000001000), 10);
    assert.throws(() => clockSkewSeconds('date: invalid', 0, 0), /unexpected output/);
  });
});

describe('tools, certificates, readiness', () => {
  test('kubectl versions', () => {
    assert.equal(parseKubectlClientVersion('{"clientVersion":{"major":"1","minor":"32+","gitVersion":"v1.32.4-dispatcher"}}'), 'v1.32.4-dispatcher');
    assert.equal(parseKubectlClientVersion('not json'), undefined);
    assert.equal(minorOf('v1.32.4-dispatcher'), 32);
    assert.equal(minorOf('1.28.0'), 28);
  });

  test('certificates: expired and not-yet-valid fail, soon warns', () => {
    const now = Date.parse('2026-06-01T00:00:00Z');
    const day = 86_400_000;
    const cert = (name: string, from: number, to: number) => ({ name, notBefore: new Date(now + from * day), notAfter: new Date(now + to * day) });
    assert.equal(evaluateCertificates([cert('ca.crt', -10, 3000)], now, 30).status, 'pass');
    assert.match(evaluateCertificates([cert('apiserver.crt', -400, 10)], now, 30).summary, /apiserver\.crt expires in 10 days/);
    assert.equal(evaluateCertificates([cert('apiserver.crt', -400, -1)], now, 30).status, 'fail');
    const future = evaluateCertificates([cert('client.crt', 2, 300)], now, 30);
    assert.equal(future.status, 'fail');
    assert.match(future.details?.[0] ?? '', /wrong clock/);
  });

  test('failing /readyz components', () => {
    assert.deepEqual(readyzFailures('[+]ping ok\n[-]etcd failed: reason withheld\n[+]log ok\nreadyz check failed\n'), ['etcd failed: reason withheld']);
  });
});

describe('PowerShell results', () => {
  test('JSON between markers survives banners and warnings', () => {
    assert.equal(extractJson('noise\n<<<DEVCLUSTER-JSON\n{"a":1}\nDEVCLUSTER-JSON>>>\ntrailing'), '{"a":1}');
    assert.equal(extractJson('no markers'), undefined);
    assert.match(jsonScript('Get-Date'), /^\$ErrorActionPreference = 'Stop'/);
  });
});

describe('QEMU probe', () => {
  // The accelerator probe's own tests: test/unit/qmp-accel.test.ts.
  test('versions and install commands per system', () => {
    assert.deepEqual(parseQemuVersion('QEMU emulator version 7.2.22 (Debian 1:7.2+dfsg-7+deb12u18+b3)\nCopyright'), [7, 2, 22]);
    assert.deepEqual(parseQemuVersion('QEMU emulator version 9.1'), [9, 1, 0]);
  });
});
