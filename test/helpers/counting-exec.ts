import { run } from '../../src/host/exec.ts';
import type { Exec } from '../../src/host/process.ts';

/** The real exec layer, counting the QEMU processes it starts (to prove a probe ran, or was answered from the cache). */
export function countingExec(): { exec: Exec; qemuRuns: string[][] } {
  const qemuRuns: string[][] = [];
  const exec: Exec = (command, args, options) => {
    if (/qemu-system/.test(command)) qemuRuns.push([...args]);
    return run(command, args, options);
  };
  return { exec, qemuRuns };
}
