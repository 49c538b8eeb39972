import type { Output } from './output.ts';
import { logLine } from './context.ts';

/**
 * Runs a pipeline's steps in order and shows them: a listr2 task list with
 * per-step timings on a TTY, one plain line per step otherwise (logs, CI,
 * --output json). Returns each step's duration for the summary.
 */
export interface Step<C> {
  title: string;
  /** Skipped steps are shown as such; the reason is the title's suffix. */
  skip?: (ctx: C) => string | false;
  run: (ctx: C, update: (detail: string) => void) => Promise<void>;
}

export interface StepTiming {
  title: string;
  ms: number;
  skipped?: string;
}

function seconds(ms: number): string {
  return `${(ms / 1000).toFixed(1)}s`;
}

async function runPlain<C>(out: Output, steps: readonly Step<C>[], ctx: C): Promise<StepTiming[]> {
  const timings: StepTiming[] = [];
  for (const step of steps) {
    const skipped = step.skip?.(ctx);
    if (skipped !== undefined && skipped !== false) {
      out.line(`${out.symbols.skip === 'SKIP' ? '-' : out.symbols.skip} ${step.title} (skipped: ${skipped})`);
      timings.push({ title: step.title, ms: 0, skipped });
      continue;
    }
    const started = performance.now();
    logLine('info', `step: ${step.title}`);
    await step.run(ctx, (detail) => {
      logLine('info', `  ${detail}`);
      out.debug(`  ${detail}`);
    });
    const ms = performance.now() - started;
    timings.push({ title: step.title, ms });
    out.line(`${out.paint('green', out.symbols.ok === 'OK' ? 'OK' : out.symbols.ok)} ${step.title} ${out.paint('gray', `(${seconds(ms)})`)}`);
  }
  return timings;
}

async function runListr<C>(steps: readonly Step<C>[], ctx: C): Promise<StepTiming[]> {
  const { Listr } = await import('listr2');
  const timings: StepTiming[] = [];
  const tasks = new Listr(
    steps.map((step) => ({
      title: step.title,
      skip: () => {
        const skipped = step.skip?.(ctx);
        if (skipped !== undefined && skipped !== false) {
          timings.push({ title: step.title, ms: 0, skipped });
          return `${step.title} (skipped: ${skipped})`;
        }
        return false;
      },
      task: async (_: unknown, task: { title: string; output: string }) => {
        const started = performance.now();
        logLine('info', `step: ${step.title}`);
        await step.run(ctx, (detail) => {
          logLine('info', `  ${detail}`);
          task.output = detail;
        });
        const ms = performance.now() - started;
        timings.push({ title: step.title, ms });
        task.title = `${step.title} (${seconds(ms)})`;
      },
    })),
    { concurrent: false, exitOnError: true, rendererOptions: { collapseSubtasks: false, showErrorMessage: false } },
  );
  await tasks.run();
  return timings;
}

export async function runSteps<C>(out: Output, steps: readonly Step<C>[], ctx: C): Promise<StepTiming[]> {
  if (out.format === 'text' && out.isTTY && process.env['CI'] !== 'true') return runListr(steps, ctx);
  return runPlain(out, steps, ctx);
}

/**
 * The same display for a pipeline written as ordinary code: each call runs
 * one named step and returns its result, so steps pass typed values to each
 * other instead of sharing a mutable bag.
 */
export class StepRunner {
  private readonly out: Output;
  readonly timings: StepTiming[] = [];

  constructor(out: Output) {
    this.out = out;
  }

  async run<T>(title: string, fn: (update: (detail: string) => void) => Promise<T>): Promise<T> {
    let result: T | undefined;
    const [timing] = await runSteps<undefined>(this.out, [{ title, run: async (_x, update) => { result = await fn(update); } }], undefined);
    if (timing !== undefined) this.timings.push(timing);
    return result as T;
  }

  async skip(title: string, reason: string): Promise<void> {
    const [timing] = await runSteps<undefined>(this.out, [{ title, skip: () => reason, run: async () => undefined }], undefined);
    if (timing !== undefined) this.timings.push(timing);
  }
}
