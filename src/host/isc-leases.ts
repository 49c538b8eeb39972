/**
 * ISC dhcpd's lease file (dhcpd.leases(5)), which VMware's vmnet-dhcpd
 * writes for its NAT and host-only networks: /etc/vmware/vmnet8/dhcpd/dhcpd.leases
 * on Linux, %ProgramData%\VMware\vmnetdhcp.leases on Windows (CRLF),
 * /var/db/vmware/vmnet-dhcpd-vmnet8.leases on macOS.
 *
 *     lease 192.168.79.130 {
 *       starts 4 2026/11/26 10:15:02;
 *       ends 4 2026/11/26 10:45:02;
 *       hardware ethernet 00:50:56:3a:4b:5c;
 *       client-hostname "node";
 *     }
 *
 * The file is appended to by the server and holds every lease it ever gave
 * until it is rewritten, so one address or MAC appears many times. Like the
 * bootpd reader beside it, this reader is lenient: a statement it does not
 * know is skipped, a malformed lease is dropped, and nothing throws.
 */

import { parseMac, sameMac } from './dhcpd-leases.ts';
import { isIpv4 } from './ipv4.ts';
import { readTextIfExists } from './read-if-exists.ts';

export interface IscLease {
  readonly ipAddress: string;
  readonly mac: Uint8Array;
  /** Epoch milliseconds, when the file gave a time. */
  readonly starts: number | undefined;
  /** Epoch milliseconds; `ends never;` is Infinity; undefined when absent. */
  readonly ends: number | undefined;
  readonly hostname: string | undefined;
  /** `binding state free` / `abandoned` leases are not held by anyone. */
  readonly released: boolean;
}

type Token = { kind: 'word'; text: string } | { kind: 'string'; text: string } | { kind: '{' | '}' | ';' };

/** Words, quoted strings and the three punctuation marks; "#" starts a comment outside a string. */
function tokenize(text: string): Token[] {
  const tokens: Token[] = [];
  let i = 0;
  while (i < text.length) {
    const c = text[i] as string;
    if (c === '#') {
      while (i < text.length && text[i] !== '\n') i++;
    } else if (/\s/.test(c)) {
      i++;
    } else if (c === '{' || c === '}' || c === ';') {
      tokens.push({ kind: c });
      i++;
    } else if (c === '"') {
      let s = '';
      i++;
      while (i < text.length && text[i] !== '"') {
        if (text[i] === '\\' && i + 1 < text.length) i++;
        s += text[i];
        i++;
      }
      i++;
      tokens.push({ kind: 'string', text: s });
    } else {
      let w = '';
      while (i < text.length && !/[\s{};"#]/.test(text[i] as string)) w += text[i++];
      tokens.push({ kind: 'word', text: w });
    }
  }
  return tokens;
}

/** "2026/11/26 10:15:02" in UTC, as dhcpd writes it; undefined when it is not one. */
function parseLeaseTime(date: string | undefined, time: string | undefined): number | undefined {
  const d = /^(\d{4})\/(\d{1,2})\/(\d{1,2})$/.exec(date ?? '');
  const t = /^(\d{1,2}):(\d{2}):(\d{2})$/.exec(time ?? '');
  if (d === null || t === null) return undefined;
  const ms = Date.UTC(Number(d[1]), Number(d[2]) - 1, Number(d[3]), Number(t[1]), Number(t[2]), Number(t[3]));
  return Number.isNaN(ms) ? undefined : ms;
}

interface Draft {
  ip: string;
  mac?: Uint8Array;
  starts?: number;
  ends?: number;
  hostname?: string;
  released: boolean;
}

function applyStatement(draft: Draft, words: Token[]): void {
  const text = words.map((w) => (w.kind === 'word' || w.kind === 'string' ? w.text : '')).filter((w) => w !== '');
  const [key, second] = text;
  if (key === 'hardware' && second === 'ethernet') {
    const mac = parseMac(text[2] ?? '');
    if (mac !== undefined) draft.mac = mac;
  } else if (key === 'starts' || key === 'ends') {
    // "<weekday> <date> <time>", or "never"; some writers leave the weekday out.
    const rest = text.slice(1);
    const value = rest[0] === 'never' ? Infinity : rest.length >= 3 ? parseLeaseTime(rest[1], rest[2]) : parseLeaseTime(rest[0], rest[1]);
    if (value !== undefined) draft[key] = value;
  } else if (key === 'client-hostname') {
    if (second !== undefined) draft.hostname = second;
  } else if (key === 'binding' && second === 'state') {
    draft.released = text[2] === 'free' || text[2] === 'abandoned' || text[2] === 'released' || text[2] === 'expired';
  } else if (key === 'abandoned') {
    draft.released = true;
  }
}

/**
 * Every lease with an IPv4 address and an Ethernet MAC, in file order.
 * Accepts LF and CRLF, tabs, comments, "{" glued to the address, statements
 * on one line, unknown statements and nested blocks (skipped whole).
 */
export function parseIscLeases(text: string): IscLease[] {
  const tokens = tokenize(text);
  const leases: IscLease[] = [];
  let i = 0;
  while (i < tokens.length) {
    const t = tokens[i] as Token;
    const next = tokens[i + 1];
    if (!(t.kind === 'word' && t.text === 'lease' && next?.kind === 'word' && tokens[i + 2]?.kind === '{')) {
      i++;
      continue;
    }
    const draft: Draft = { ip: next.text, released: false };
    i += 3;
    let statement: Token[] = [];
    let depth = 1;
    while (i < tokens.length && depth > 0) {
      const s = tokens[i] as Token;
      i++;
      if (s.kind === '{') {
        depth++;
        statement = [];
      } else if (s.kind === '}') {
        depth--;
        statement = [];
      } else if (s.kind === ';') {
        if (depth === 1) applyStatement(draft, statement);
        statement = [];
      } else {
        statement.push(s);
      }
    }
    // A lease the file cut short (depth > 0) may be half-written: it is not trusted.
    if (depth === 0 && draft.mac !== undefined && isIpv4(draft.ip)) {
      leases.push({ ipAddress: draft.ip, mac: draft.mac, starts: draft.starts, ends: draft.ends, hostname: draft.hostname, released: draft.released });
    }
  }
  return leases;
}

/**
 * The lease a MAC holds at `now` (epoch ms): not released, started (when the
 * file says when) and not yet ended. When several qualify (a VM that asked
 * again) the one that ends last wins, whatever order dhcpd wrote them in.
 * Throws a RangeError for a `mac` that is not one: it is the caller's own VM's.
 */
export function findIscLease(leases: readonly IscLease[], mac: string, now: number): IscLease | undefined {
  const wanted = parseMac(mac);
  if (wanted === undefined) throw new RangeError(`not a MAC address: ${JSON.stringify(mac)}`);
  let best: IscLease | undefined;
  for (const lease of leases) {
    if (!sameMac(lease.mac, wanted) || lease.released) continue;
    // An expired lease's address may since belong to another machine.
    if (lease.ends !== undefined && lease.ends <= now) continue;
    if (lease.starts !== undefined && lease.starts > now + 60_000) continue;
    if (best === undefined || (lease.ends ?? 0) > (best.ends ?? 0)) best = lease;
  }
  return best;
}

/** The current lease for a MAC in an ISC lease file; a missing file means no lease yet. */
export async function readIscLease(path: string, mac: string, now: number): Promise<IscLease | undefined> {
  if (parseMac(mac) === undefined) throw new RangeError(`not a MAC address: ${JSON.stringify(mac)}`);
  const text = await readTextIfExists(path);
  return text === undefined ? undefined : findIscLease(parseIscLeases(text), mac, now);
}
