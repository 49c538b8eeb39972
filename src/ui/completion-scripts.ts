/**
 * Shell completion scripts generated from the command tree, so they can never
 * drift from the commands that exist.
 */
export interface CompletionNode {
  /** "" for the root, "config set" for a subcommand. */
  path: string;
  description: string;
  subcommands: string[];
  options: string[];
}

export type CompletionShell = 'bash' | 'zsh' | 'fish' | 'powershell';
export const COMPLETION_SHELLS: readonly CompletionShell[] = ['bash', 'zsh', 'fish', 'powershell'];

function sq(text: string): string {
  return `'${text.replace(/'/g, `'\\''`)}'`;
}

export function bashCompletion(nodes: readonly CompletionNode[], bin = 'devcluster'): string {
  const fn = `_${bin.replace(/[^a-zA-Z0-9_]/g, '_')}`;
  const words = nodes.map((n) => `    ${sq(n.path)}) echo ${sq([...n.subcommands, ...n.options].join(' '))} ;;`).join('\n');
  const paths = nodes.filter((n) => n.path !== '').map((n) => sq(n.path)).join('|');
  return `# ${bin} completion for bash. Load with: source <(${bin} completion bash)
${fn}_words() {
  case "$1" in
${words}
  esac
}
${fn}_is_command() {
  case "$1" in
    ${paths}) return 0 ;;
  esac
  return 1
}
${fn}() {
  local cur="\${COMP_WORDS[COMP_CWORD]}" path="" next i w
  for ((i = 1; i < COMP_CWORD; i++)); do
    w="\${COMP_WORDS[i]}"
    [[ "$w" == -* ]] && continue
    next="\${path:+$path }$w"
    if ${fn}_is_command "$next"; then path="$next"; fi
  done
  local IFS=$' \\t\\n'
  mapfile -t COMPREPLY < <(compgen -W "$(${fn}_words "$path")" -- "$cur")
}
complete -F ${fn} ${bin}
`;
}

export function zshCompletion(nodes: readonly CompletionNode[], bin = 'devcluster'): string {
  // zsh runs the bash function through bashcompinit, which every zsh ships.
  return `#compdef ${bin}
# ${bin} completion for zsh. Load with: source <(${bin} completion zsh)
autoload -U +X compinit && compinit
autoload -U +X bashcompinit && bashcompinit
${bashCompletion(nodes, bin).split('\n').slice(1).join('\n')}`;
}

export function fishCompletion(nodes: readonly CompletionNode[], bin = 'devcluster'): string {
  const lines = [`# ${bin} completion for fish. Load with: ${bin} completion fish | source`, `complete -c ${bin} -f`];
  for (const n of nodes) {
    const parts = n.path === '' ? [] : n.path.split(' ');
    const condition = parts.length === 0 ? '__fish_use_subcommand' : `__fish_seen_subcommand_from ${parts[parts.length - 1]}`;
    for (const sub of n.subcommands) {
      const child = nodes.find((c) => c.path === [...parts, sub].join(' '));
      lines.push(`complete -c ${bin} -n ${sq(condition)} -a ${sq(sub)} -d ${sq(child?.description ?? '')}`);
    }
    for (const opt of n.options.filter((o) => o.startsWith('--'))) {
      lines.push(`complete -c ${bin} -n ${sq(parts.length === 0 ? 'true' : condition)} -l ${sq(opt.slice(2))}`);
    }
  }
  return `${lines.join('\n')}\n`;
}

function psq(text: string): string {
  return `'${text.replace(/'/g, "''")}'`;
}

export function powershellCompletion(nodes: readonly CompletionNode[], bin = 'devcluster'): string {
  const table = nodes.map((n) => `    ${psq(n.path)} = @(${[...n.subcommands, ...n.options].map(psq).join(', ')})`).join('\n');
  return `# ${bin} completion for PowerShell. Load with: ${bin} completion powershell | Out-String | Invoke-Expression
Register-ArgumentCompleter -Native -CommandName ${psq(bin)} -ScriptBlock {
  param($wordToComplete, $commandAst, $cursorPosition)
  $words = @{
${table}
  }
  $path = ''
  $elements = $commandAst.CommandElements | Select-Object -Skip 1
  foreach ($element in $elements) {
    $text = $element.ToString()
    if ($element.Extent.StartOffset -ge $cursorPosition) { break }
    if ($text -eq $wordToComplete) { continue }
    if ($text.StartsWith('-')) { continue }
    $next = if ($path -eq '') { $text } else { "$path $text" }
    if ($words.ContainsKey($next)) { $path = $next }
  }
  $words[$path] | Where-Object { $_ -like "$wordToComplete*" } | ForEach-Object {
    [System.Management.Automation.CompletionResult]::new($_, $_, 'ParameterValue', $_)
  }
}
`;
}

export function completionScript(shell: CompletionShell, nodes: readonly CompletionNode[]): string {
  switch (shell) {
    case 'bash':
      return bashCompletion(nodes);
    case 'zsh':
      return zshCompletion(nodes);
    case 'fish':
      return fishCompletion(nodes);
    case 'powershell':
      return powershellCompletion(nodes);
  }
}
