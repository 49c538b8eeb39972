import { CATEGORY_BASE, errorDefinition, errorDef, registerErrors } from '../ui/errors.ts';
import type { ErrorCategory } from '../ui/errors.ts';
import { HOST_CHECKS } from './checks/host.ts';
import { NETWORK_CHECKS } from './checks/network.ts';
import { GUEST_CHECKS } from './checks/guest.ts';
import { TOOLS_CHECKS } from './checks/tools.ts';
import { DRIVER_CHECKS } from './checks/driver.ts';
import { CLUSTER_CHECKS, PROFILE_STATE_CHECKS, VM_CHECKS } from './checks/profile.ts';
import { IMAGE_BUILD_CHECKS } from './checks/image-build.ts';
import { CATEGORIES } from './types.ts';
import type { Check, DoctorContext } from './types.ts';

/**
 * Every doctor check: the core ones here, and those drivers contribute with
 * registerDriverChecks. A check's ID is also an error ID with the check's
 * exit code, so `doctor` and `start`'s preflight exit the same way.
 */
const CORE_CHECKS: readonly Check[] = [
  ...HOST_CHECKS,
  ...PROFILE_STATE_CHECKS,
  ...IMAGE_BUILD_CHECKS,
  ...DRIVER_CHECKS,
  ...VM_CHECKS,
  ...NETWORK_CHECKS,
  ...CLUSTER_CHECKS,
  ...GUEST_CHECKS,
  ...TOOLS_CHECKS,
];

const driverChecks = new Map<string, readonly Check[]>();

const CHECK_ID = /^[A-Z][A-Z0-9_]{1,63}$/;

/** The error category of an exit code in the decade scheme. */
export function categoryOfExitCode(code: number): ErrorCategory {
  let best: ErrorCategory = 'general';
  for (const [cat, base] of Object.entries(CATEGORY_BASE) as Array<[ErrorCategory, number]>) {
    if (base >= 10 && code >= base && code < base + 10) return cat;
    if (base === code) best = cat;
  }
  return best;
}

function registerCheckErrors(checks: readonly Check[]): void {
  const defs: Record<string, ReturnType<typeof errorDef>> = {};
  for (const c of checks) {
    if (!CHECK_ID.test(c.id)) throw new Error(`check ID ${c.id} must be upper-case letters, digits and underscores`);
    const existing = errorDefinition(c.id);
    if (existing !== undefined) {
      if (existing.exitCode !== c.exitCode) throw new Error(`check ID ${c.id} is already an error ID with exit code ${existing.exitCode}`);
      continue;
    }
    defs[c.id] = errorDef(categoryOfExitCode(c.exitCode), c.exitCode, `doctor: ${c.title} — ${c.looksAt}`);
  }
  registerErrors(defs);
}

registerCheckErrors(CORE_CHECKS);

/**
 * Lets a driver add its checks (binary present, acceleration, privileges).
 * Calling again for the same driver replaces its set.
 */
export function registerDriverChecks(driverName: string, checks: readonly Check[]): void {
  const taken = new Set([...CORE_CHECKS, ...[...driverChecks.entries()].filter(([d]) => d !== driverName).flatMap(([, cs]) => cs)].map((c) => c.id));
  for (const c of checks) {
    if (taken.has(c.id)) throw new Error(`doctor check ${c.id} from driver ${driverName} is already registered`);
  }
  registerCheckErrors(checks);
  // A driver's checks concern that driver unless they say otherwise.
  driverChecks.set(
    driverName,
    checks.map((c) => (c.drivers === undefined ? { ...c, drivers: [driverName] } : c)),
  );
}

/** Every known check, in display order: by category, then core before driver checks, then as declared. */
export function allChecks(): Check[] {
  const list = [...CORE_CHECKS, ...[...driverChecks.values()].flat()];
  return CATEGORIES.flatMap((cat) => list.filter((c) => c.category === cat));
}

export function findCheck(id: string): Check | undefined {
  return allChecks().find((c) => c.id === id);
}

/** Why a check does not apply to this host, driver and situation; undefined when it applies. */
export function whyNotApplicable(check: Check, ctx: DoctorContext): string | undefined {
  const platformOk = check.platforms === undefined || check.platforms.length === 0 || check.platforms.includes(ctx.host.platform);
  const driverOk = check.drivers === undefined || check.drivers.length === 0 || check.drivers.includes(ctx.driver);
  if (!platformOk || !driverOk) return `does not apply to ${ctx.host.platform} with the ${ctx.driver} driver`;
  return check.inapplicable?.(ctx);
}

export function isApplicable(check: Check, ctx: DoctorContext): boolean {
  return whyNotApplicable(check, ctx) === undefined;
}
