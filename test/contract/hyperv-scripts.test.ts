import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { HYPERV_CHECK_SCRIPTS, HYPERV_FIX_CMDLETS } from '../../drivers/hyperv/checks.ts';
import { everyHypervScript, SAMPLE_VALUES } from '../../drivers/hyperv/script-catalog.ts';
import type { HypervScriptValues } from '../../drivers/hyperv/script-catalog.ts';
import { psString } from '../../src/host/powershell.ts';
import { REPO } from '../helpers/cli.ts';
import { commandInvocations, powershellSyntaxProblems, userValueProblems, verbatimStringProblems, verbatimStringValue } from '../helpers/powershell.ts';
import type { CommandInvocation } from '../helpers/powershell.ts';

/**
 * Every PowerShell script the Hyper-V driver and its doctor checks can
 * generate, parsed by tree-sitter-powershell: no syntax error; every command
 * module-qualified (VMware PowerCLI defines Get-VM, Start-VM, ... too) and,
 * with every parameter, found in test/fixtures/hyperv/cmdlets.json (read from
 * Microsoft's reference pages); and the user's values (VM, switch and adapter
 * names, paths) only inside single-quoted literals, for ordinary values and
 * hostile ones. A deliberately broken script shows each check can fail.
 */

interface CmdletEntry {
  module: string;
  name: string;
  parameters: Record<string, string>;
  switchParameters: string[];
  aliases?: Record<string, string[]>;
}
interface CmdletTable {
  commonParameters: string[];
  cmdlets: Record<string, CmdletEntry>;
}

const TABLE = JSON.parse(readFileSync(join(REPO, 'test', 'fixtures', 'hyperv', 'cmdlets.json'), 'utf8')) as CmdletTable;
const BY_KEY = new Map(Object.entries(TABLE.cmdlets).map(([k, v]) => [k.toLowerCase(), v]));

/** What is wrong with one invocation, against the table; [] when nothing is. */
function invocationProblems(c: CommandInvocation): string[] {
  if (c.dynamicName || c.invocationOperator !== undefined) return [`line ${c.line}: ${c.invocationOperator ?? ''} ${c.text}: a command called through an expression cannot be checked`];
  if (c.module === undefined) return [`line ${c.line}: ${c.text} is not module-qualified`];
  const entry = BY_KEY.get(`${c.module}\\${c.command}`.toLowerCase());
  if (entry === undefined) return [`line ${c.line}: ${c.text} is not in cmdlets.json`];
  const known = new Set(
    [...Object.keys(entry.parameters), ...entry.switchParameters, ...Object.values(entry.aliases ?? {}).flat(), ...TABLE.commonParameters].map((p) => p.toLowerCase()),
  );
  return c.parameters.filter((p) => !known.has(p.toLowerCase())).map((p) => `line ${c.line}: ${c.text} has no parameter -${p}`);
}

async function scriptProblems(script: string, userValues: readonly string[]): Promise<string[]> {
  // tree-sitter's grammar knows only ' as a string quote; PowerShell also ends a string at U+2018..U+201B.
  const syntax = [...(await powershellSyntaxProblems(script)), ...(await verbatimStringProblems(script))].map((p) => `syntax ${p.kind} at ${p.line}:${p.column}: ${p.text}`);
  const commands = (await commandInvocations(script)).flatMap(invocationProblems);
  const literals = (await userValueProblems(script, userValues)).map((p) => `user value ${JSON.stringify(p.value.slice(0, 40))} ${p.problem}`);
  return [...syntax, ...commands, ...literals];
}

/** Ordinary values, chosen not to be part of the scripts' own words so "only in literals" is a real test. */
const ORDINARY: HypervScriptValues = {
  ...SAMPLE_VALUES,
  vmName: 'dcx-alpha',
  vmDir: 'C:\\Users\\Dev User\\.dcx\\profiles\\alpha',
  vhdPath: 'C:\\Users\\Dev User\\.dcx\\profiles\\alpha\\disks\\disk.vhdx',
  baseVhdPath: 'C:\\Users\\Dev User\\.dcx\\cache\\images\\0a1b\\photon.vhdx',
  seedIso: 'C:\\Users\\Dev User\\.dcx\\profiles\\alpha\\seed.iso',
  dataIsos: ['C:\\Users\\Dev User\\.dcx\\cache\\kubernetes\\v1.34.1\\bundle.iso'],
  pipe: '\\\\.\\pipe\\dcx-alpha-com1',
  switchName: 'dcx-switch',
  adapterName: 'Wi-Fi 2',
  adapterDescription: 'Intel(R) Wi-Fi 6 AX201 160MHz',
  natName: 'dcx-nat',
};

/** Each hostile value mixes quote styles, subexpressions, backticks, statement separators, newlines and non-ASCII text. */
function hostile(tag: string, long = false): string {
  const core = `${tag}'; Remove-Item -Recurse C:\\ ; '"$(Stop-Computer)"\`$env:USERNAME ; ’) ; Restart-Computer ; (‘‚‛ $x \n ; exit 1 # 集群 Ώ ü 😀 '' ’’`;
  return long ? `${core}${'Z'.repeat(260)}` : core;
}

const HOSTILE_SETS: Array<{ label: string; values: HypervScriptValues }> = [
  {
    label: 'quotes, $(), backticks, semicolons, newlines, Unicode',
    values: {
      ...SAMPLE_VALUES,
      vmName: hostile('vm'),
      vmDir: `C:\\dc\\${hostile('dir')}`,
      vhdPath: `C:\\dc\\${hostile('vhd')}.vhdx`,
      baseVhdPath: `C:\\dc\\${hostile('base')}.vhdx`,
      seedIso: `C:\\dc\\${hostile('seed')}.iso`,
      dataIsos: [`C:\\dc\\${hostile('data')}.iso`],
      pipe: `\\\\.\\pipe\\${hostile('pipe')}`,
      switchName: hostile('switch'),
      adapterName: hostile('adapter'),
      adapterDescription: hostile('description'),
      natName: hostile('nat'),
    },
  },
  {
    label: 'values longer than 250 characters',
    values: {
      ...SAMPLE_VALUES,
      vmName: hostile('vm', true),
      vmDir: `C:\\dc\\${hostile('dir', true)}`,
      vhdPath: `C:\\dc\\${hostile('vhd', true)}.vhdx`,
      baseVhdPath: `C:\\dc\\${hostile('base', true)}.vhdx`,
      seedIso: `C:\\dc\\${hostile('seed', true)}.iso`,
      dataIsos: [`C:\\dc\\${hostile('data', true)}.iso`, `C:\\dc\\${hostile('data2', true)}.iso`],
      pipe: `\\\\.\\pipe\\${hostile('pipe', true)}`,
      switchName: hostile('switch', true),
      adapterName: hostile('adapter', true),
      adapterDescription: hostile('description', true),
      natName: hostile('nat', true),
    },
  },
  {
    label: 'only Unicode single quotes (the ones an escaper that doubles only U+0027 misses)',
    values: {
      ...SAMPLE_VALUES,
      vmName: 'vm’ ; Remove-Item C:\\ ; ’',
      vmDir: 'C:\\dc\\dir‘ ; Stop-Computer ; ‘',
      vhdPath: 'C:\\dc\\vhd‚ ; Stop-Computer ; ‚.vhdx',
      baseVhdPath: 'C:\\dc\\base‛ ; Stop-Computer ; ‛.vhdx',
      seedIso: 'C:\\dc\\seed’’’.iso',
      dataIsos: ['C:\\dc\\data‘’.iso'],
      pipe: '\\\\.\\pipe\\pipe’',
      switchName: 'switch’ ; Stop-Computer ; ’',
      adapterName: 'adapter‘',
      adapterDescription: 'description‛‚',
      natName: 'nat’',
    },
  },
];

describe('the cmdlet table', () => {
  test('keys are Module\\Cmdlet and agree with their entries; Microsoft modules only', () => {
    assert.ok(Object.keys(TABLE.cmdlets).length >= 40);
    for (const [key, entry] of Object.entries(TABLE.cmdlets)) {
      assert.equal(key, `${entry.module}\\${entry.name}`);
      assert.match(entry.module, /^(Hyper-V|NetNat|NetTCPIP|NetAdapter|NetConnection|Dism|CimCmdlets|Microsoft\.PowerShell\.(Core|Utility|Management|LocalAccounts))$/);
    }
    assert.ok(TABLE.commonParameters.includes('ErrorAction'));
    assert.ok(TABLE.cmdlets['Hyper-V\\Stop-VM']?.switchParameters.includes('TurnOff'));
  });
});

describe('every Hyper-V script', () => {
  const catalog = everyHypervScript(ORDINARY);

  test('the catalog covers the driver: unique names, every operation', () => {
    const names = catalog.map((s) => s.name);
    assert.equal(new Set(names).size, names.length, 'script names are unique');
    const operations = ['query-rights', 'hyperv-presence', 'host-network', 'create-disk', 'create-vm', 'vm-state', 'start-vm', 'resume-vm', 'shutdown-vm', 'turn-off-vm', 'remove-vm', 'vm-address', 'find-switch', 'new-internal-switch', 'new-external-switch', 'set-host-address', 'remove-host-address', 'new-netnat', 'remove-netnat', 'remove-switch', 'ics-enable', 'ics-disable', 'find-own-vm'];
    // Every operation the driver's sources name in script('<op>', ...), so a new script cannot escape the checks below.
    const dir = join(REPO, 'drivers', 'hyperv');
    const inSources = readdirSync(dir).filter((f) => f.endsWith('.ts')).flatMap((f) => [...readFileSync(join(dir, f), 'utf8').matchAll(/\bscript\('([\w-]+)'/g)].map((m) => m[1] as string));
    assert.ok(inSources.length >= operations.length, 'the sources were read');
    for (const op of new Set([...operations, ...inSources])) assert.ok(names.some((n) => n === op || n.startsWith(`${op} `)), `no ${op} script in the catalog`);
  });

  test('with ordinary values: parses, every command and parameter is in the table, user values only in literals', async () => {
    const problems: string[] = [];
    for (const s of catalog) for (const p of await scriptProblems(s.script, s.userValues)) problems.push(`${s.name}: ${p}`);
    assert.deepEqual(problems, []);
  });

  for (const { label, values } of HOSTILE_SETS) {
    test(`with hostile values (${label}): the same`, async () => {
      const problems: string[] = [];
      const scripts = everyHypervScript(values);
      assert.equal(scripts.length, catalog.length);
      for (const s of scripts) for (const p of await scriptProblems(s.script, s.userValues)) problems.push(`${s.name}: ${p}`);
      assert.deepEqual(problems, []);
    });
  }

  test('the user values the catalog declares are the ones it was given', () => {
    const given = new Set(Object.values(ORDINARY).flat().map(String));
    for (const s of catalog) for (const v of s.userValues) assert.ok(given.has(v), `${s.name}: ${v} is not one of the values`);
    assert.ok(catalog.some((s) => s.userValues.includes(ORDINARY.vmName)));
    assert.ok(catalog.some((s) => s.userValues.includes(ORDINARY.switchName)));
  });
});

describe("the doctor checks' scripts", () => {
  test('parse, and every command and parameter is in the table', async () => {
    const problems: string[] = [];
    for (const [name, script] of Object.entries(HYPERV_CHECK_SCRIPTS)) for (const p of await scriptProblems(script, [])) problems.push(`${name}: ${p}`);
    assert.ok(Object.keys(HYPERV_CHECK_SCRIPTS).length >= 5);
    assert.deepEqual(problems, []);
  });
});

describe("the doctor's fix commands", () => {
  test('each cmdlet a fix tells the user to type exists, with those parameters (bare names resolved in the table)', async () => {
    const problems: string[] = [];
    for (const line of HYPERV_FIX_CMDLETS) {
      problems.push(...(await powershellSyntaxProblems(line)).map((p) => `${line}: syntax ${p.text}`));
      for (const c of await commandInvocations(line)) {
        const matches = Object.values(TABLE.cmdlets).filter((e) => e.name.toLowerCase() === c.command.toLowerCase() && (c.module === undefined || e.module.toLowerCase() === c.module.toLowerCase()));
        if (matches.length !== 1) {
          problems.push(`${line}: ${c.text} matches ${matches.length} cmdlets in the table`);
          continue;
        }
        const entry = matches[0] as CmdletEntry;
        problems.push(...invocationProblems({ ...c, module: entry.module }).map((p) => `${line}: ${p}`));
      }
    }
    assert.ok(HYPERV_FIX_CMDLETS.length >= 4);
    assert.deepEqual(problems, []);
  });
});

describe('the checks can fail', () => {
  const evil = "x'; Remove-Item -Recurse C:\\ ; '";

  test('a value pasted into a script instead of escaped is caught', async () => {
    const bad = `Hyper-V\\Get-VM -Name '${evil}'`;
    const problems = await userValueProblems(bad, [evil]);
    assert.ok(problems.length > 0);
    assert.deepEqual(await userValueProblems(`Hyper-V\\Get-VM -Name ${psString(evil)}`, [evil]), []);
  });

  test('a value in a double-quoted string (where $() runs) is caught', async () => {
    const value = 'a$(Stop-Computer)b';
    assert.ok((await userValueProblems(`Hyper-V\\Get-VM -Name "${value}"`, [value])).length > 0);
  });

  test('an escaper that doubles only the ASCII quote is caught', async () => {
    const value = 'x’; Stop-Computer; ’';
    const asciiOnly = `'${value.replace(/'/g, "''")}'`;
    assert.ok((await scriptProblems(`Hyper-V\\Get-VM -Name ${asciiOnly}`, [value])).length > 0);
    assert.equal(verbatimStringValue(psString(value)), value);
  });

  test('a bare cmdlet, an unknown cmdlet, a misspelt parameter, an abbreviation and & are caught', async () => {
    const problems = (await commandInvocations("Get-VM; Hyper-V\\Get-VMachine; Hyper-V\\Stop-VM -VM $vm -TurnOf; Hyper-V\\Stop-VM -VM $vm -Turn; & 'Get-VM'")).flatMap(invocationProblems);
    assert.equal(problems.length, 5, problems.join('\n'));
    assert.match(problems[0] ?? '', /not module-qualified/);
    assert.match(problems[1] ?? '', /not in cmdlets\.json/);
    assert.match(problems[2] ?? '', /no parameter -TurnOf/);
    assert.match(problems[3] ?? '', /no parameter -Turn/);
    assert.match(problems[4] ?? '', /expression/);
    assert.deepEqual((await commandInvocations('Hyper-V\\Stop-VM -VM $vm -TurnOff -Force -ErrorAction Stop -Confirm:$false')).flatMap(invocationProblems), []);
  });

  test('a syntax error is caught', async () => {
    assert.ok((await scriptProblems("Hyper-V\\Get-VM -Name 'open", [])).some((p) => p.startsWith('syntax')));
  });

  test('nested invocations are found: in @(), $(), script blocks and try bodies', async () => {
    const found = (await commandInvocations("try { $a = @(Hyper-V\\Get-VM | Microsoft.PowerShell.Core\\Where-Object { $(NetNat\\Get-NetNat) }) } catch { Microsoft.PowerShell.Utility\\Write-Output 'x' }")).map((c) => c.text);
    assert.deepEqual(found.sort(), ['Hyper-V\\Get-VM', 'Microsoft.PowerShell.Core\\Where-Object', 'Microsoft.PowerShell.Utility\\Write-Output', 'NetNat\\Get-NetNat']);
  });
});
