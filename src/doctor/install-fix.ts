import { linuxFamily, readOsRelease } from '../host/os-release.ts';
import type { LinuxFamily } from '../host/os-release.ts';
import { installSteps, packageManagerFor, stepCommandLine } from '../host/packages.ts';
import type { PackageManager } from '../host/packages.ts';
import type { CheckContext, Fix } from './types.ts';

/** A program a check needs, and the package that provides it per package manager (absent: none known). */
export interface NeededTool {
  /** The command, or the file, that is missing. */
  name: string;
  packages: Partial<Record<PackageManager, string>>;
}

/** Package installs download and unpack; a slow mirror takes minutes. */
const INSTALL_TIMEOUT_MS = 30 * 60_000;

/** This host's package manager, from the platform and (on Linux) /etc/os-release; memoised per doctor run. */
export async function hostPackageManager(ctx: CheckContext): Promise<PackageManager | undefined> {
  return ctx.memo('package-manager', async (c) => {
    let family: LinuxFamily | undefined;
    if (c.host.platform === 'linux') {
      const osr = await readOsRelease();
      c.evidence(osr === undefined ? { command: 'read /etc/os-release', error: 'not readable' } : { command: `read ${osr.path}`, stdout: `ID=${osr.fields['ID'] ?? ''} ID_LIKE=${osr.fields['ID_LIKE'] ?? ''}` });
      family = osr === undefined ? undefined : linuxFamily(osr.fields);
    }
    return packageManagerFor(c.host.platform, family);
  });
}

/** The packages to install for the missing tools, in order and without repeats, and the tools no known package provides. */
export function packagesFor(manager: PackageManager | undefined, missing: readonly NeededTool[]): { packages: string[]; unknown: string[] } {
  const packages: string[] = [];
  const unknown: string[] = [];
  for (const tool of missing) {
    const pkg = manager === undefined ? undefined : tool.packages[manager];
    if (pkg === undefined) unknown.push(tool.name);
    else for (const p of pkg.split(' ')) if (!packages.includes(p)) packages.push(p);
  }
  return { packages, unknown };
}

/**
 * The fix for missing host tools: the package manager's exact commands,
 * applied by `doctor --fix` after the confirmation for its elevation
 * boundary. Tools that no package is known for are named in the
 * description for the user to install.
 */
export function installFix(manager: PackageManager | undefined, missing: readonly NeededTool[], what: string): Fix {
  const { packages, unknown } = packagesFor(manager, missing);
  const steps = manager === undefined ? [] : installSteps(manager, packages);
  const known = steps.length === 0 ? '' : `Install ${what} with ${manager}`;
  const rest = unknown.length === 0 ? '' : `${known === '' ? 'Install' : ', and install'} ${unknown.join(', ')} from your system's package sources (devcluster knows no package for ${unknown.length === 1 ? 'it' : 'them'} here)`;
  const description = `${known}${rest}.`;
  if (steps.length === 0) return { description, commands: [] };
  const elevated = steps.some((s) => s.elevated);
  return {
    description,
    commands: steps.map((s) => ({ shell: 'sh' as const, run: stepCommandLine(s), elevated: s.elevated })),
    apply: async (c) => {
      for (const s of steps) {
        const [command, ...args] = s.argv as [string, ...string[]];
        await (s.elevated ? c.execElevated : c.exec)(command, args, { timeoutMs: INSTALL_TIMEOUT_MS });
      }
    },
    applyDescription: `run ${steps.map((s) => s.argv.slice(0, 2).join(' ')).join(', then ')}`,
    ...(elevated ? { elevated } : {}),
  };
}
