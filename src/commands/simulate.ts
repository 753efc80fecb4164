import { REGRESSION_VARIANTS } from '../../machines/index.js';
import type { Command } from 'commander';
import { UsageError } from '../errors.js';
import { intOption } from './options.js';
import type { Divergence, SimResult, SimViolation } from '../sim/vopr.js';
import { divergence, sameRun, simulate } from '../sim/vopr.js';

export interface SimulateReport {
  seeds: number;
  steps: number;
  stepsPerSecond: number;
  violations: SimViolation[];
  /** Seeds run twice whose schedules or outcomes differed (must be empty). */
  nondeterministic: number[];
  /**
   * With `againstXstate`: seeds whose run with live xstate actors in the servers (ActorHost) parted from
   * the run as deployed (PureHost, compiled steps in place), and where (must be empty).
   */
  divergedFromXstate: Divergence[];
}

/** Exit status when a seed violated an invariant (usage errors exit 2). */
export const EXIT_VIOLATION = 1;

export function parseSeeds(text: string): [number, number] {
  const m = /^(\d+)\.\.(\d+)$/.exec(text);
  if (!m) throw new UsageError(`--seeds takes a range A..B of decimal integers, got '${text}'`);
  const a = intOption('seeds', m[1]!, 0, 0xffff_ffff);
  const b = intOption('seeds', m[2]!, 0, 0xffff_ffff);
  if (b < a) throw new UsageError(`--seeds ${text}: the range is empty`);
  if (b - a >= 1_000_000) throw new UsageError(`--seeds ${text}: at most 1000000 seeds per run`);
  return [a, b];
}

export interface SimulateOptions {
  from: number;
  to: number;
  steps: number;
  variants: string[];
  checkDeterminism: boolean;
  /**
   * Run every seed a second time with live xstate actors in both servers and compare: the same
   * schedule, outcomes, final virtual time and per-request transition counts. xstate is the oracle for
   * the host as deployed (compiled steps in place, deadline lists, the loop's skips, the quiet observer).
   */
  againstXstate?: boolean;
  onSeed?(r: SimResult): void;
  onDivergence?(d: Divergence): void;
}

export async function runSimulate(o: SimulateOptions): Promise<SimulateReport> {
  const violations: SimViolation[] = [];
  const nondeterministic: number[] = [];
  const divergedFromXstate: Divergence[] = [];
  let steps = 0;
  const t0 = performance.now();
  for (let seed = o.from; seed <= o.to; seed++) {
    const r = await simulate({ seed, steps: o.steps, variants: o.variants });
    steps += r.steps;
    violations.push(...r.violations);
    if (o.checkDeterminism) {
      const again = await simulate({ seed, steps: o.steps, variants: o.variants });
      steps += again.steps;
      if (again.digest !== r.digest) nondeterministic.push(seed);
    }
    if (o.againstXstate === true) {
      const live = await simulate({ seed, steps: o.steps, variants: o.variants, host: 'actors' });
      steps += live.steps;
      if (!sameRun(r, live)) {
        // Run both again keeping every step, to say where they parted (a divergence is rare: only then).
        const a = await simulate({ seed, steps: o.steps, variants: o.variants, keepSchedule: true });
        const b = await simulate({ seed, steps: o.steps, variants: o.variants, host: 'actors', keepSchedule: true });
        const d = divergence(a, b, ['compiled', 'xstate']) ?? { seed, step: null, what: 'the digests differed once and not when run again (nondeterministic)' };
        divergedFromXstate.push(d);
        o.onDivergence?.(d);
      }
    }
    o.onSeed?.(r);
    // A seed runs on virtual time, all in promise jobs: without a turn of the event loop between seeds,
    // the finalizers Node defers to it (the native agents and regions of the seed's closed servers)
    // never ran, and a long sweep's memory grew by about 31 KB per seed (545 MB after some 12,000 seeds).
    await new Promise<void>((resolve) => setImmediate(resolve));
  }
  const seconds = (performance.now() - t0) / 1000;
  return { seeds: o.to - o.from + 1, steps, stepsPerSecond: Math.round(steps / Math.max(seconds, 1e-9)), violations, nondeterministic, divergedFromXstate };
}

export function register(program: Command): void {
  program
    .command('simulate')
    .description('run the real context and generation servers under a seeded deterministic simulation, checking bytes and outcomes after every step')
    .option('--seed <n>', 'one seed (decimal integer)')
    .option('--seeds <a..b>', 'a range of seeds, e.g. 1..1000')
    .option('--steps <n>', 'steps of the fault phase per seed, before the liveness phase', '3000')
    .option('--canary <variant>', 'swap a regression variant into the servers (repeatable); the run must then fail', (v: string, acc: string[]) => [...acc, v], [] as string[])
    .option('--check-determinism', 'run every seed twice and compare schedule digests')
    .option('--against-xstate', 'run every seed again with live xstate actors in the servers and compare schedules, outcomes and transition counts')
    .option('--json', 'print one JSON object: {seeds, steps, stepsPerSecond, violations, nondeterministic, divergedFromXstate}')
    .action(async (opts: { seed?: string; seeds?: string; steps: string; canary: string[]; checkDeterminism?: boolean; againstXstate?: boolean; json?: boolean }) => {
      if (opts.seed !== undefined && opts.seeds !== undefined) throw new UsageError('give --seed or --seeds, not both');
      const [from, to] = opts.seeds !== undefined ? parseSeeds(opts.seeds) : ((n) => [n, n] as [number, number])(intOption('seed', opts.seed ?? '1', 0, 0xffff_ffff));
      const steps = intOption('steps', opts.steps, 1, 100_000_000);
      for (const c of opts.canary) if (!REGRESSION_VARIANTS.some((v) => v.name === c)) throw new UsageError(`unknown canary variant '${c}'; known: ${REGRESSION_VARIANTS.map((v) => v.name).join(', ')}`);
      const report = await runSimulate({
        from,
        to,
        steps,
        variants: opts.canary,
        checkDeterminism: opts.checkDeterminism === true,
        againstXstate: opts.againstXstate === true,
        onDivergence: (d) => {
          if (opts.json) return;
          console.log(`seed ${d.seed}: the servers on compiled steps and on live xstate actors diverged: ${d.what}`);
          console.log(`  replay: xferstate simulate --seed ${d.seed} --steps ${opts.steps} --against-xstate${opts.canary.map((c) => ` --canary ${c}`).join('')}`);
        },
        onSeed: (r) => {
          if (opts.json) return;
          for (const v of r.violations) {
            console.log(`seed ${v.seed}: ${v.invariant} at step ${v.step}: ${v.message}`);
            console.log(`  replay: xferstate simulate --seed ${v.seed} --steps ${v.step}${opts.canary.map((c) => ` --canary ${c}`).join('')}`);
            console.log(`  the failing prefix is ${v.step} steps (the first ${v.step - 1} violate nothing); its last steps:`);
            for (const l of v.prefixTail) console.log(`    ${l}`);
          }
        },
      });
      if (opts.json) console.log(JSON.stringify(report));
      else {
        const range = from === to ? `seed ${from}` : `seeds ${from}..${to}`;
        console.log(
          `${range}: ${report.steps} steps, ${report.stepsPerSecond} steps/s, ${report.violations.length} violation(s)${opts.checkDeterminism ? `, ${report.nondeterministic.length} nondeterministic` : ''}${opts.againstXstate ? `, ${report.divergedFromXstate.length} diverged from xstate` : ''}`,
        );
      }
      if (report.violations.length > 0 || report.nondeterministic.length > 0 || report.divergedFromXstate.length > 0) process.exitCode = EXIT_VIOLATION;
    });
}
