import type { Command } from 'commander';
import { EXIT, UsageError } from '../errors.js';
import type { MutateReport } from '../mutate/run.js';
import { SCORE_THRESHOLD, runMutate } from '../mutate/run.js';

/** Exit code when the mutation score is below the threshold: the run worked and found the checks too weak. */
export const EXIT_SCORE_LOW = EXIT.checkFailed;

interface MutateCliOptions {
  machine?: string;
  json?: boolean;
  limit?: string;
  budgetMs?: string;
  workers?: string;
  allTargets?: boolean;
  progress?: boolean;
  walks?: string;
  shippedStates?: string;
  deepBounds?: boolean;
  quick?: boolean;
  only: string[];
}

function positiveInt(name: string, v: string | undefined, allowZero = false): number | undefined {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!/^\d+$/.test(v) || (!allowZero && n < 1)) throw new UsageError(`${name} must be a ${allowZero ? 'non-negative' : 'positive'} integer, got '${v}'`);
  return n;
}

/** Default budget: a prefix of the interleaved mutant list, about a third of it on a shared 2-core machine. */
export const DEFAULT_BUDGET_MS = 240_000;

function budgetOf(v: string | undefined): number | undefined {
  const n = positiveInt('--budget-ms', v ?? String(DEFAULT_BUDGET_MS), true);
  return n === 0 ? undefined : n;
}

/** The documented JSON: `{mutants, killed, equivalent, survived: [{mutant, why}]}` plus the score and details. */
export function jsonReport(r: MutateReport): Record<string, unknown> {
  return {
    mutants: r.mutants,
    killed: r.killed,
    equivalent: r.equivalent,
    survived: r.survived,
    score: r.score,
    killedCrash: r.killedCrash,
    notRun: r.notRun,
    total: r.total,
    unexplored: r.unexplored,
    scenarios: r.scenarios,
    ms: r.ms,
    workers: r.workers,
    results: r.results.map(({ mutant, machine, operator, verdict, kind, why, computed, ms, scenarios, writeOnly }) => ({ mutant, machine, operator, verdict, ...(kind ? { kind } : {}), why, ...(writeOnly ? { writeOnly } : {}), computed, ms, scenarios })),
  };
}

export function printReport(r: MutateReport, print: (line: string) => void = console.log): void {
  print(`where mutants run (original machines; footings decide equivalence, shipped scenarios only search for kills):`);
  for (const s of r.scenarios) {
    const b = s.bounds;
    print(`  ${s.scenario.padEnd(22)} ${s.decides ? 'footing ' : 'shipped '} ${String(s.states).padStart(7)} worlds${s.truncated ? ' (budget reached)' : ' (complete)'}${s.walks ? ` + ${s.walks} random walks` : ''} ${String(s.ms).padStart(6)} ms${s.violations.length ? `  (already violates ${s.violations.join(',')})` : ''}`);
    print(`    ${s.backend}; bounds: requests ${b.requests}, handles/request ${b.handlesPerRequest}, cancels ${b.cancels}, duplicates ${b.duplicates}, reorder ${b.reorder}, losses ${b.losses}, peer deaths ${b.peerDeath}`);
  }
  const byMachine = new Map<string, { n: number; k: number; e: number; s: number }>();
  for (const x of r.results) {
    const m = byMachine.get(x.machine) ?? { n: 0, k: 0, e: 0, s: 0 };
    m.n++;
    if (x.verdict.startsWith('killed')) m.k++;
    else if (x.verdict === 'equivalent') m.e++;
    else m.s++;
    byMachine.set(x.machine, m);
  }
  print(`\n${'machine'.padEnd(20)}${'mutants'.padStart(8)}${'killed'.padStart(8)}${'equiv'.padStart(7)}${'survived'.padStart(10)}`);
  for (const [id, m] of [...byMachine].sort()) print(`${id.padEnd(20)}${String(m.n).padStart(8)}${String(m.k).padStart(8)}${String(m.e).padStart(7)}${String(m.s).padStart(10)}`);
  const eq = r.results.filter((x) => x.verdict === 'equivalent');
  if (eq.length > 0) {
    print(`\nequivalent (${eq.length}):`);
    for (const x of eq) print(`  ${x.mutant}\n    ${x.why}`);
  }
  if (r.survived.length > 0) {
    print(`\nsurvived (${r.survived.length}):`);
    for (const x of r.survived) print(`  ${x.mutant}\n    ${x.why}`);
  }
  const byKind = (k: string) => r.results.filter((x) => x.verdict === 'killed' && x.kind === k).length;
  print(`\nkilled by a consequence invariant: ${byKind('consequence')}; by a design rule: ${byKind('design-rule')}; by a crash in routing: ${r.killedCrash}`);
  const pct = (r.score * 100).toFixed(1);
  print(
    `\n${r.mutants} mutants: ${r.killed} killed (${r.killedCrash} by a crash in routing), ${r.equivalent} equivalent, ${r.survivedCount} survived` +
      `${r.notRun > 0 ? `; ${r.notRun} of ${r.total} not run (budget)` : ''}`,
  );
  if (r.unexplored.length > 0) print(`not mutated (no explored scenario runs them): ${r.unexplored.map((u) => `${u.machine} (${u.mutants} mutants)`).join(', ')}`);
  print(`score ${r.killed}/${r.mutants - r.equivalent} = ${pct}% (threshold ${SCORE_THRESHOLD * 100}%), ${r.ms} ms on ${r.workers || 1} thread(s)`);
}

export function register(program: Command): void {
  program
    .command('mutate')
    .description('mutate the production machines (drop/swap actions, retarget, drop guards and deadlines), explore each, report killed / equivalent / survived')
    .option('--machine <id>', 'only mutants of this machine (e.g. blockLease)')
    .option('--only <name>', 'only this mutant, by its exact name as the report prints it (repeat for several)', (v: string, acc: string[]) => [...acc, v], [] as string[])
    .option('--json', 'print JSON')
    .option('--limit <n>', 'only n mutants, spread evenly over the list')
    .option('--budget-ms <ms>', `start no new mutant after this many milliseconds (0 = no budget: every mutant); the rest are reported as not run`, String(DEFAULT_BUDGET_MS))
    .option('--workers <n>', 'worker threads (default: one per core)')
    .option('--all-targets', 'retarget each transition to every sibling state, not only the next one')
    .option('--progress', 'print one line per mutant to stderr as it finishes')
    .option('--quick', 'stop exploring a mutant at the first complete footing where it differs observably (then only the prompt runs of the footings left and the shipped scenarios are searched for a kill); default: every place, so the score is not a lower bound')
    .option('--walks <n>', 'random walks past the state budget in the shipped scenarios (default 0: breadth-first only; footings are complete)')
    .option('--shipped-states <n>', 'state budget of the kill search in the shipped scenarios (default and least: their shipped budget, 6000); can kill an undecided mutant, never make one equivalent')
    .option('--deep-bounds', 'also search for kills (never deciding equivalence) each shipped scenario at its explore --deep bounds (duplicates, losses, a peer death), and one request with a cancel and a duplicate, at the shipped budget')
    .action(async (opts: MutateCliOptions) => {
      const report = await runMutate({
        machine: opts.machine,
        only: opts.only.length > 0 ? opts.only : undefined,
        limit: positiveInt('--limit', opts.limit),
        // 0 = no budget (the full run); the default keeps an interactive run to a few minutes on 2 cores.
        budgetMs: budgetOf(opts.budgetMs),
        workers: positiveInt('--workers', opts.workers, true),
        allTargets: opts.allTargets,
        walks: positiveInt('--walks', opts.walks, true),
        shippedStates: positiveInt('--shipped-states', opts.shippedStates),
        deepBounds: opts.deepBounds,
        thorough: !opts.quick,
        onResult: opts.progress ? (x, done, total) => console.error(`[${done}/${total}] ${x.verdict.padEnd(14)} ${String(x.ms).padStart(6)} ms  ${x.mutant}`) : undefined,
      });
      if (opts.json) console.log(JSON.stringify(jsonReport(report)));
      else printReport(report);
      process.exitCode = report.score >= SCORE_THRESHOLD ? EXIT.ok : EXIT_SCORE_LOW;
    });
}
