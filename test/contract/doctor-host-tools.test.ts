import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseLinuxRoutes } from '../../src/doctor/net.ts';
import { formatCidr } from '../../src/host/ipv4.ts';
import { minorOf, parseKubectlClientVersion } from '../../src/doctor/checks/tools.ts';
import { certificateInfo } from '../../src/doctor/checks/guest.ts';
import { jsonScript } from '../../src/host/powershell.ts';
import { WINDOWS_QUERIES } from '../../src/doctor/windows-queries.ts';
import { envLines, pathLines } from '../../src/doctor/shell.ts';
import { parseQemuVersion } from '../../drivers/qemu/checks.ts';
import { findOnPath } from '../../src/host/path-search.ts';
import { powershellSyntaxProblems } from '../helpers/powershell.ts';
import { skipUnlessPresent } from '../helpers/prerequisite.ts';

/** The doctor's parsers against the real tools of this machine. */

/** A tool's test is skipped with the reason when the tool is missing; under CI that fails instead. */
const needs = async (cmd: string) => skipUnlessPresent((await findOnPath(cmd)) === undefined ? `${cmd} is not installed` : false);

test('ip -j route: the JSON parser sees every route the text output lists', { skip: await needs('ip') }, () => {
  const json = execFileSync('ip', ['-j', '-4', 'route', 'show', 'table', 'main'], { encoding: 'utf8', env: { ...process.env, LANG: 'C' } });
  const text = execFileSync('ip', ['-4', 'route', 'show', 'table', 'main'], { encoding: 'utf8', env: { ...process.env, LANG: 'C' } });
  const routes = parseLinuxRoutes(json);
  const unicast = text.trim().split('\n').filter((l) => l !== '' && !/^(unreachable|blackhole|prohibit|throw|local|broadcast)\b/.test(l));
  assert.equal(routes.length, unicast.length);
  for (const line of unicast) {
    const dst = line.split(' ')[0] ?? '';
    const want = dst === 'default' ? '0.0.0.0/0' : dst.includes('/') ? dst : `${dst}/32`;
    assert.ok(routes.some((r) => formatCidr(r.destination) === want), `${want} (from "${line}") not parsed`);
  }
});

test('kubectl version --client -o json gives a version with a minor number', { skip: await needs('kubectl') }, () => {
  const v = parseKubectlClientVersion(execFileSync('kubectl', ['version', '--client', '-o', 'json'], { encoding: 'utf8' }));
  assert.ok(v !== undefined && minorOf(v) !== undefined, String(v));
});

test('qemu-system-x86_64 --version parses', { skip: await needs('qemu-system-x86_64') }, () => {
  const v = parseQemuVersion(execFileSync('qemu-system-x86_64', ['--version'], { encoding: 'utf8' }));
  assert.ok(v !== undefined && v[0] >= 2);
});

test('certificate dates agree with openssl', { skip: await needs('openssl') }, () => {
  const dir = mkdtempSync(join(tmpdir(), 'devcluster-cert-'));
  execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'k.pem', '-out', 'c.pem', '-days', '42', '-subj', '/CN=t'], { cwd: dir, stdio: 'pipe' });
  const end = execFileSync('openssl', ['x509', '-in', 'c.pem', '-noout', '-enddate'], { cwd: dir, encoding: 'utf8' }).trim().replace(/^notAfter=/, '');
  const info = certificateInfo('c.pem', readFileSync(join(dir, 'c.pem'), 'utf8'));
  assert.equal(info.notAfter.getTime(), Date.parse(end));
});

test('every PowerShell script and line the doctor generates parses without syntax errors, even for hostile paths', async () => {
  const scripts = Object.values(WINDOWS_QUERIES).map((q) => jsonScript(q));
  const hostile = "C:\\Users\\O'Brien $(Remove-Item x) `\"; & calc\\.devcluster\\bin";
  scripts.push(...pathLines(hostile, 'C:\\Users\\x', 'win32').map((c) => c.run));
  scripts.push(...envLines(['NO_PROXY', 'no_proxy'], "localhost,10.96.0.0/12,'quoted'", 'C:\\Users\\x', 'win32').map((c) => c.run));
  for (const script of scripts) {
    assert.deepEqual(await powershellSyntaxProblems(script), [], script);
  }
});
