import { dirname } from 'node:path';

/**
 * Reads `sudo -l` (the short listing) to tell whether a command runs as root
 * without a password. `sudo -n -l <command>` alone cannot say so: it answers
 * "permitted" for an admin whose rule asks for a password as soon as any
 * other rule of the user is NOPASSWD (sudo's default listpw=any), and sudo
 * uses the last rule that matches, not the most specific one.
 */

export interface SudoRule {
  /** The run-as list allows root. */
  asRoot: boolean;
  /** As listed, unescaped: "ALL", "/bin/kill -TERM *", "!/usr/bin/su". */
  command: string;
  nopasswd: boolean;
}

const HEADER = /may run the following commands on/;

/**
 * The rules of every "User … may run the following commands on …" section,
 * in order. sudo wraps long rules, indenting the continuation deeper than
 * the rule (4 spaces, then 8); a PASSWD:/NOPASSWD: tag holds for the
 * commands after it in the same rule until another tag changes it.
 */
export function parseSudoList(text: string): SudoRule[] {
  const entries: string[] = [];
  let inSection = false;
  for (const line of text.split(/\r?\n/)) {
    if (HEADER.test(line)) {
      inSection = true;
      continue;
    }
    if (!inSection) continue;
    if (line.trim() === '') {
      inSection = false;
      continue;
    }
    const indent = /^ */.exec(line)?.[0].length ?? 0;
    if (indent > 4 && entries.length > 0) entries[entries.length - 1] += ` ${line.trim()}`;
    else entries.push(line.trim());
  }
  return entries.flatMap(parseEntry);
}

function parseEntry(entry: string): SudoRule[] {
  const m = /^\(([^)]*)\)\s*(.*)$/.exec(entry);
  const runas = m === null ? 'root' : (m[1] ?? '');
  const rest = m === null ? entry : (m[2] ?? '');
  const users = (runas.split(':')[0] ?? '').split(',').map((s) => s.trim());
  const asRoot = users.includes('root') || (users.includes('ALL') && !users.includes('!root'));
  let nopasswd = false;
  const out: SudoRule[] = [];
  for (const raw of rest.split(/(?<!\\),\s*/)) {
    let spec = raw.trim();
    for (;;) {
      const tag = /^([A-Z_]+):\s*/.exec(spec);
      const option = /^[A-Z_]+=\S+\s+/.exec(spec);
      if (tag !== null) {
        if (tag[1] === 'NOPASSWD') nopasswd = true;
        if (tag[1] === 'PASSWD') nopasswd = false;
        spec = spec.slice(tag[0].length);
      } else if (option !== null) {
        spec = spec.slice(option[0].length);
      } else {
        break;
      }
    }
    if (spec !== '') out.push({ asRoot, command: spec.replace(/\\(.)/g, '$1'), nopasswd });
  }
  return out;
}

function globToRegExp(glob: string): RegExp {
  let re = '';
  for (const ch of glob) re += ch === '*' ? '.*' : ch === '?' ? '.' : ch.replace(/[.+^${}()|[\]\\/]/g, '\\$&');
  return new RegExp(`^${re}$`);
}

/**
 * Whether one listed command covers argv, by sudoers' rules: ALL; a path
 * (with wildcards) and no arguments for any arguments; "" for none; a
 * directory ending in "/" for the programs in it; else the arguments as one
 * string matched with wildcards that cross spaces.
 */
export function commandMatches(spec: string, argv: readonly string[]): boolean {
  const s = spec.startsWith('!') ? spec.slice(1) : spec;
  if (s === 'ALL') return true;
  const space = s.indexOf(' ');
  const path = space < 0 ? s : s.slice(0, space);
  const args = space < 0 ? undefined : s.slice(space + 1).trim();
  const program = argv[0] ?? '';
  if (path.endsWith('/')) return `${dirname(program)}/` === path;
  if (!globToRegExp(path).test(program)) return false;
  if (args === undefined) return true;
  if (args === '""') return argv.length === 1;
  return globToRegExp(args).test(argv.slice(1).join(' '));
}

export type SudoVerdict = 'nopasswd' | 'password' | 'denied' | 'unknown';

/** What sudo does with argv run as root: the last matching rule decides, a negated one denies. */
export function sudoVerdict(rules: readonly SudoRule[], argv: readonly string[]): SudoVerdict {
  let last: SudoRule | undefined;
  for (const r of rules) if (r.asRoot && commandMatches(r.command, argv)) last = r;
  if (last === undefined) return 'unknown';
  if (last.command.startsWith('!')) return 'denied';
  return last.nopasswd ? 'nopasswd' : 'password';
}
