/**
 * The drivers that contribute doctor checks. Each module calls
 * registerDriverChecks when loaded; loading them here lets `doctor`, the
 * support bundle and start's preflight see every check without loading the
 * drivers themselves.
 */
const DRIVER_CHECK_MODULES: Readonly<Record<string, () => Promise<unknown>>> = {
  qemu: () => import('../../drivers/qemu/checks.ts'),
};

export async function loadDriverChecks(): Promise<void> {
  await Promise.all(Object.values(DRIVER_CHECK_MODULES).map((load) => load()));
}
