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
