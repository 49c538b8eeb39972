import { findOnPath } from './path-search.ts';
import type { PathSearchOptions } from './path-search.ts';

/**
 * Where QEMU's installers put its programs without adding them to PATH:
 * Homebrew (Apple silicon, then Intel) and the Windows installer's default.
 * The QEMU driver, its doctor checks and the image cache's qemu-img check
 * all search here, so they agree on whether QEMU is installed.
 */
export const QEMU_EXTRA_DIRS: Readonly<Partial<Record<NodeJS.Platform, readonly string[]>>> = {
  darwin: ['/opt/homebrew/bin', '/usr/local/bin'],
  win32: ['C:\\Program Files\\qemu'],
};

/** A QEMU program (qemu-img, qemu-system-x86_64): PATH first, then QEMU_EXTRA_DIRS of the platform. */
export async function findQemuProgram(name: string, options: Omit<PathSearchOptions, 'extraDirs'> = {}): Promise<string | undefined> {
  const platform = options.platform ?? process.platform;
  return findOnPath(name, { ...options, platform, extraDirs: QEMU_EXTRA_DIRS[platform] ?? [] });
}
