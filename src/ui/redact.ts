/**
 * Masks secrets before text reaches a log file, a support bundle or the screen.
 * Patterns cover what devcluster handles: private keys, bearer tokens,
 * kubeconfig credentials, and passwords inside proxy URLs.
 */

const MASK = '********';

const PATTERNS: ReadonlyArray<[RegExp, string | ((...m: string[]) => string)]> = [
  // PEM blocks: SSH and TLS private keys.
  [/-----BEGIN ([A-Z0-9 ]*PRIVATE KEY)-----[\s\S]*?-----END \1-----/g, (_m, kind) => `-----BEGIN ${kind}-----\n${MASK}\n-----END ${kind}-----`],
  // user:password@ in URLs (proxies, registries).
  [/\b([a-z][a-z0-9+.-]*:\/\/)([^\s:/@]+):([^\s@/]+)@/gi, (_m, scheme, user) => `${scheme}${user}:${MASK}@`],
  // HTTP authorization headers and bearer tokens.
  [/\b(authorization:\s*(?:bearer|basic)\s+)[^\s"']+/gi, (_m, p) => `${p}${MASK}`],
  [/\b(bearer\s+)[a-z0-9._~+/=-]{8,}/gi, (_m, p) => `${p}${MASK}`],
  // kubeconfig / kubeadm secrets in YAML or JSON form.
  [/(["']?(?:token|client-key-data|client-certificate-data|password|secret|certificate-key)["']?\s*[:=]\s*["']?)[^\s"',}]+/gi, (_m, p) => `${p}${MASK}`],
  // kubeadm bootstrap tokens: abcdef.0123456789abcdef
  [/\b[a-z0-9]{6}\.[a-z0-9]{16}\b/g, MASK],
];

export function redact(text: string): string {
  let out = text;
  for (const [re, replacement] of PATTERNS) {
    out = out.replace(re, replacement as (substring: string, ...args: string[]) => string);
  }
  return out;
}

/** Redacts each argument of a command line, and values of flags that carry secrets. */
export function redactArgs(args: readonly string[], secrets: readonly string[] = []): string[] {
  const out: string[] = [];
  let maskNext = false;
  for (const arg of args) {
    if (maskNext) {
      out.push(MASK);
      maskNext = false;
      continue;
    }
    let a = arg;
    for (const s of secrets) if (s.length > 0) a = a.split(s).join(MASK);
    if (/^--?(token|password|certificate-key|discovery-token-ca-cert-hash)$/i.test(a)) maskNext = true;
    a = a.replace(/^(--?(?:token|password|certificate-key)=).+$/i, `$1${MASK}`);
    out.push(redact(a));
  }
  return out;
}

/** Quotes an argument for display only; commands are never run through a shell. */
export function displayArg(arg: string): string {
  return /^[A-Za-z0-9_@%+=:,./-]+$/.test(arg) ? arg : `'${arg.replace(/'/g, `'\\''`)}'`;
}
