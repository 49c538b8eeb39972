import { createRequire } from 'node:module';
import { Language, Parser } from 'web-tree-sitter';
import type { Node } from 'web-tree-sitter';

const require = createRequire(import.meta.url);
let parser: Parser | undefined;

async function powershellParser(): Promise<Parser> {
  if (parser === undefined) {
    await Parser.init();
    const language = await Language.load(require.resolve('tree-sitter-powershell/tree-sitter-powershell.wasm'));
    parser = new Parser();
    parser.setLanguage(language);
  }
  return parser;
}

export interface SyntaxProblem {
  kind: 'ERROR' | 'MISSING';
  line: number;
  column: number;
  text: string;
}

/** Parses a PowerShell script with tree-sitter-powershell; returns every syntax error. */
export async function powershellSyntaxProblems(script: string): Promise<SyntaxProblem[]> {
  const tree = (await powershellParser()).parse(script);
  if (tree === null) throw new Error('tree-sitter returned no tree');
  const problems: SyntaxProblem[] = [];
  const visit = (node: Node) => {
    if (node.isError || node.isMissing) {
      problems.push({ kind: node.isError ? 'ERROR' : 'MISSING', line: node.startPosition.row + 1, column: node.startPosition.column + 1, text: node.text.slice(0, 80) });
    }
    if (node.hasError) for (const child of node.children) if (child !== null) visit(child);
  };
  visit(tree.rootNode);
  return problems;
}

async function parseTree(script: string): Promise<Node> {
  const tree = (await powershellParser()).parse(script);
  if (tree === null) throw new Error('tree-sitter returned no tree');
  return tree.rootNode;
}

function* descendants(node: Node): Generator<Node> {
  yield node;
  for (const child of node.children) if (child !== null) yield* descendants(child);
}

/** One element after the command name: a parameter (-Name, without the dash) or an argument (its tree node). */
export type CommandElement = { kind: 'parameter'; name: string; line: number } | { kind: 'argument'; node: Node; text: string; line: number };

export interface CommandInvocation {
  /** As written: "Hyper-V\\Get-VM", "Write-Output", or the expression after & / . */
  text: string;
  /** The module part of a module-qualified name ("Hyper-V"); undefined for a bare name. */
  module?: string;
  /** The command part ("Get-VM"). */
  command: string;
  /** Invoked through & or . (a script block, a string or a variable: not a cmdlet name the table can check). */
  invocationOperator?: '&' | '.';
  /** Named with a string, variable or script block instead of a plain name. */
  dynamicName: boolean;
  parameters: string[];
  elements: CommandElement[];
  line: number;
}

/**
 * Every command invocation in a script, nested ones included (inside
 * @(...), $(...), script blocks, if/try bodies), from the parse tree: the
 * name, its module when module-qualified, and its parameters and argument
 * nodes in order.
 */
export async function commandInvocations(script: string): Promise<CommandInvocation[]> {
  const out: CommandInvocation[] = [];
  for (const node of descendants(await parseTree(script))) {
    if (node.type !== 'command') continue;
    const named = node.children.find((c) => c?.type === 'command_name');
    const expr = node.children.find((c) => c?.type === 'command_name_expr');
    const operator = node.children.find((c) => c?.type === 'command_invokation_operator')?.text.trim();
    const text = (named ?? expr)?.text ?? '';
    const slash = named === undefined ? -1 : text.lastIndexOf('\\');
    const elements: CommandElement[] = [];
    const list = node.children.find((c) => c?.type === 'command_elements');
    for (const e of list?.children ?? []) {
      if (e === null || e.type === 'command_argument_sep' || e.type === 'comment') continue;
      const line = e.startPosition.row + 1;
      if (e.type === 'command_parameter') elements.push({ kind: 'parameter', name: e.text.replace(/^[-\u2013\u2014\u2015]/, '').replace(/:$/, ''), line });
      else elements.push({ kind: 'argument', node: e, text: e.text, line });
    }
    out.push({
      text,
      ...(slash > 0 ? { module: text.slice(0, slash) } : {}),
      command: slash > 0 ? text.slice(slash + 1) : text,
      ...(operator === '&' || operator === '.' ? { invocationOperator: operator } : {}),
      dynamicName: named === undefined,
      parameters: elements.flatMap((e) => (e.kind === 'parameter' ? [e.name] : [])),
      elements,
      line: node.startPosition.row + 1,
    });
  }
  return out;
}

/** PowerShell's single quotes: ' and the Unicode quotes U+2018..U+201B, all of which open, close and escape a verbatim string. */
const SINGLE_QUOTE = /['\u2018\u2019\u201A\u201B]/;

/** The value of a verbatim ('...') string token: outer quotes removed, each doubled quote read as one. */
export function verbatimStringValue(token: string): string {
  const inner = token.slice(1, -1);
  let out = '';
  for (let i = 0; i < inner.length; i++) {
    const c = inner[i] ?? '';
    out += c;
    if (SINGLE_QUOTE.test(c) && SINGLE_QUOTE.test(inner[i + 1] ?? '')) i++;
  }
  return out;
}

/**
 * Where PowerShell itself ends a verbatim string token that tree-sitter read
 * as one: PowerShell's tokenizer takes ' and U+2018..U+201B alike as the
 * closing quote (and a pair of them as one escaped quote), while the
 * tree-sitter grammar knows only '. Returns the index of PowerShell's
 * closing quote, or -1 when PowerShell would not close it.
 */
export function powershellVerbatimEnd(token: string): number {
  for (let i = 1; i < token.length; i++) {
    if (!SINGLE_QUOTE.test(token[i] ?? '')) continue;
    if (SINGLE_QUOTE.test(token[i + 1] ?? '')) {
      i++;
      continue;
    }
    return i;
  }
  return -1;
}

/** Verbatim string tokens that PowerShell would end somewhere else than tree-sitter does (a Unicode quote not doubled). */
export async function verbatimStringProblems(script: string): Promise<SyntaxProblem[]> {
  const problems: SyntaxProblem[] = [];
  for (const node of descendants(await parseTree(script))) {
    if (node.type !== 'verbatim_string_characters') continue;
    const end = powershellVerbatimEnd(node.text);
    if (end !== node.text.length - 1) {
      problems.push({ kind: 'ERROR', line: node.startPosition.row + 1, column: node.startPosition.column + 1 + Math.max(end, 0), text: `PowerShell ends this string at a Unicode quote: ${node.text.slice(0, 80)}` });
    }
  }
  return problems;
}

export interface LiteralProblem {
  value: string;
  problem: string;
}

/** The value as it is written inside a single-quoted literal: each quote character doubled. */
function quotedForm(value: string): string {
  return value.replace(/['\u2018\u2019\u201A\u201B]/g, (q) => q + q);
}

function occurrences(text: string, needle: string): number[] {
  const at: number[] = [];
  for (let i = text.indexOf(needle); i >= 0; i = text.indexOf(needle, i + 1)) at.push(i);
  return at;
}

/**
 * Checks that each user value reaches the script only as data:
 * - some single-quoted literal, read back with PowerShell's quoting rules,
 *   contains the value (so it was escaped right: a quote not doubled would
 *   end the literal early and the value would not read back);
 * - every place the value's text occurs (as typed, or with its quotes
 *   doubled) lies inside one single-quoted literal token, never in a
 *   command, parameter, variable, comment or double-quoted string (where
 *   $(...) runs).
 * The second rule is textual, so tests use values that are not part of the
 * script's own vocabulary ("devcluster" is in $devclusterResult).
 */
export async function userValueProblems(script: string, values: readonly string[]): Promise<LiteralProblem[]> {
  const root = await parseTree(script);
  const spans: Array<{ start: number; end: number; value: string }> = [];
  for (const node of descendants(root)) {
    if (node.type === 'verbatim_string_characters') spans.push({ start: node.startIndex, end: node.endIndex, value: verbatimStringValue(node.text) });
    if (node.type === 'verbatim_here_string_characters') {
      spans.push({ start: node.startIndex, end: node.endIndex, value: node.text.replace(/^@['\u2018\u2019\u201A\u201B]\r?\n/, '').replace(/\r?\n['\u2018\u2019\u201A\u201B]@$/, '') });
    }
  }
  const problems: LiteralProblem[] = [];
  for (const value of values) {
    if (value === '') continue;
    if (!spans.some((s) => s.value.includes(value))) problems.push({ value, problem: 'no single-quoted string literal holds it (escaped wrongly, or missing from the script)' });
    for (const form of new Set([value, quotedForm(value)])) {
      const stray = occurrences(script, form).find((i) => !spans.some((s) => s.start <= i && i + form.length <= s.end));
      if (stray !== undefined) {
        const line = script.slice(0, stray).split('\n').length;
        problems.push({ value, problem: `occurs outside a single-quoted literal at line ${line}: ${JSON.stringify(script.slice(Math.max(0, stray - 20), stray + form.length + 20))}` });
        break;
      }
    }
  }
  return problems;
}
