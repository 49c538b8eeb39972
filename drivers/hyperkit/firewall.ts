/**
 * The macOS application firewall's answers about bootpd, the DHCP server
 * that gives a vmnet VM its address. socketfilterfw's wording is not
 * documented and has changed between releases, so each reader matches the
 * phrases seen in the field and returns undefined for anything else; the
 * verdict then says it could not tell rather than guessing.
 */

export const SOCKETFILTERFW = '/usr/libexec/ApplicationFirewall/socketfilterfw';
export const BOOTPD = '/usr/libexec/bootpd';

/** --getglobalstate: 0 off, 1 on, 2 on for essential services only ("blocking all non-essential incoming connections"). */
export function parseGlobalState(text: string): 0 | 1 | 2 | undefined {
  const m = /\(State = (\d)\)/.exec(text);
  if (m !== null) {
    const n = Number(m[1]);
    return n === 0 || n === 1 || n === 2 ? n : undefined;
  }
  if (/Firewall is disabled/i.test(text)) return 0;
  if (/Firewall is enabled/i.test(text)) return 1;
  return undefined;
}

/** --getblockall: "Firewall has block all state set to enabled." */
export function parseBlockAll(text: string): boolean | undefined {
  const m = /block all state set to (enabled|disabled)/i.exec(text);
  return m === null ? undefined : m[1]?.toLowerCase() === 'enabled';
}

/** --getallowsigned: "Automatically allow built-in signed software ENABLED." (bootpd is built-in signed software). */
export function parseAllowBuiltIn(text: string): boolean | undefined {
  const m = /allow built-in signed software (ENABLED|DISABLED)/i.exec(text);
  return m === null ? undefined : m[1]?.toUpperCase() === 'ENABLED';
}

export type AppRule = 'blocked' | 'permitted' | 'unlisted';

/** --getappblocked <path>: whether the firewall has a rule for the program, and which. */
export function parseAppBlocked(text: string): AppRule | undefined {
  const t = text.toLowerCase();
  if (/not part of the firewall|not found in the firewall|is not in the firewall/.test(t)) return 'unlisted';
  if (/not blocked|\bpermitted\b|\ballowed\b|allow incoming/.test(t)) return 'permitted';
  if (/\bblock(ed|ing)?\b/.test(t)) return 'blocked';
  return undefined;
}

export interface FirewallAnswers {
  state: 0 | 1 | 2 | undefined;
  blockAll?: boolean | undefined;
  allowBuiltIn?: boolean | undefined;
  app?: AppRule | undefined;
}

export type FirewallVerdict =
  | { kind: 'off' }
  | { kind: 'allowed'; why: string }
  | { kind: 'blocked'; why: string }
  | { kind: 'block-all'; why: string }
  | { kind: 'unsure'; why: string };

/**
 * What the answers mean for bootpd. A rule that blocks it is certain; "block
 * all incoming connections" and essential-services-only mode still let some
 * system services in, and Apple does not say whether bootpd is one of them,
 * so those are reported as likely rather than certain.
 */
export function firewallVerdict(a: FirewallAnswers): FirewallVerdict {
  if (a.state === 0) return { kind: 'off' };
  if (a.state === undefined) return { kind: 'unsure', why: 'socketfilterfw --getglobalstate gave an answer devcluster does not know' };
  if (a.app === 'blocked') return { kind: 'blocked', why: `the firewall has a rule that blocks incoming connections to ${BOOTPD}` };
  if (a.state === 2 || a.blockAll === true) {
    return { kind: 'block-all', why: 'the firewall blocks all incoming connections except those of essential services' };
  }
  if (a.app === 'permitted') return { kind: 'allowed', why: `the firewall has a rule that allows ${BOOTPD}` };
  if (a.allowBuiltIn === true) return { kind: 'allowed', why: 'the firewall automatically allows built-in signed software such as bootpd' };
  if (a.app === 'unlisted' && a.allowBuiltIn === false) {
    return { kind: 'blocked', why: `${BOOTPD} has no firewall rule and built-in signed software is not allowed automatically` };
  }
  return { kind: 'unsure', why: `the firewall is on and its answers about ${BOOTPD} are not conclusive` };
}
