import { availableParallelism } from 'node:os';
import { compiledWorker, WorkerPool } from '../core/workerPool.js';
import { UsageError } from '../errors.js';
import type { Bounds } from '../explore/composed.js';
import type { InvariantKind } from '../explore/invariantCatalog.js';
import { allMutants, productionMachines, spread } from './catalog.js';
import type { Baseline, Caps, ScenarioOutcome } from './explore.js';
import { computeBaseline, exploreMutant, machineIdsOf, promptKill, mutationScenarios, scenarioSetup } from './explore.js';
import { mutationTargets } from './footings.js';
import type { Mutant } from './operators.js';
import { SURVIVOR_REASONS } from './survivors.js';

/**
 * The mutation run: baselines of the composed scenarios, then every mutant explored in each scenario that
 * runs its machine (smallest first, stopping at the first kill), spread over worker threads.
 */

export type Verdict = 'killed' | 'killed (crash)' | 'equivalent' | 'survived';

export interface MutantResult {
  mutant: string;
  machine: string;
  operator: Mutant['operator'];
  verdict: Verdict;
  /** For a kill: the invariant and scenario; for a survivor: why it survived; for an equivalent: why. */
  why: string;
  /** For a kill by a violation: what kind of claim caught it. */
  kind?: InvariantKind;
  /** Equivalent only modulo these write-only context fields (machine.field) in the shipped scenarios. */
  writeOnly?: string[];
  /** True when `why` was computed by the tool, false when it came from survivors.ts or is missing. */
  computed: boolean;
  scenarios: ScenarioOutcome[];
  ms: number;
}

export interface MutateOptions {
  machine?: string;
  limit?: number;
  /** Stop starting new mutants after this long; the rest are reported as not run. */
  budgetMs?: number;
  /** Worker threads; 0 runs in this thread. Default: one per core when running compiled, else 0. */
  workers?: number;
  /** Random walks past the state budget in the (truncated) shipped scenarios (default 0: breadth-first only). */
  walks?: number;
  /**
   * The shipped scenarios' state budget for the kill search (default: their shipped budget, 6,000; a
   * smaller one is refused). Footings are complete and unaffected; see scenarioSetup for why a deeper
   * search can make a mutant killed but never equivalent.
   */
  shippedStates?: number;
  /** Also search for kills each shipped scenario at its `--deep` bounds, and the two-fault places (src/mutate/footings.ts). */
  deepBounds?: boolean;
  /** Per scenario: a mutant is abandoned (undecided) after this long (default 10 minutes: a backstop, the state cap bounds a footing). */
  maxMsPerScenario?: number;
  allTargets?: boolean;
  /**
   * Explore a mutant on every footing and shipped scenario until a kill, even once it is known to
   * survive (default true). False (`--quick`): stop at the first complete footing where it is clean and
   * observably different, and search the places left only through their prompt runs and the shipped
   * scenarios (its verdict is then survived unless those kill it: a lower bound of the score). Only
   * survivors cost more when thorough: a kill stops the search either way, and an equivalent mutant
   * is explored everywhere either way.
   */
  thorough?: boolean;
  /** Only these mutants (by exact name); used by tests and to re-run one survivor. */
  only?: string[];
  onResult?(r: MutantResult, done: number, total: number): void;
}

export interface MutateReport {
  scenarios: Array<Pick<Baseline, 'scenario' | 'machines' | 'states' | 'edges' | 'ms' | 'violations' | 'truncated' | 'walks' | 'maxStates' | 'decides'> & { bounds: Bounds; backend: string; complete: boolean }>;
  mutants: number;
  killed: number;
  killedCrash: number;
  equivalent: number;
  survivedCount: number;
  /** Mutants left out by the budget. */
  notRun: number;
  /** Production machines that no explored scenario runs: their mutants are not run and not scored. */
  unexplored: Array<{ machine: string; mutants: number }>;
  total: number;
  score: number;
  survived: Array<{ mutant: string; why: string }>;
  results: MutantResult[];
  ms: number;
  workers: number;
}

export const SCORE_THRESHOLD = 0.9;

/** The mutant task a worker runs: explore `name` in each of its scenarios. */
export interface MutantTask {
  name: string;
  allTargets: boolean;
  baselines: Array<Pick<Baseline, 'scenario' | 'violations' | 'waitsWithoutDeadline' | 'digest' | 'walks' | 'maxStates' | 'steps' | 'shallowSteps' | 'states' | 'edges' | 'truncated' | 'decides'>>;
  caps: Caps;
  /** Explore every footing and scenario even after the mutant is known to survive (looking for a kill). */
  thorough: boolean;
}

const mutantCache = new Map<string, Map<string, Mutant>>();

function mutantByName(name: string, allTargets: boolean): Mutant {
  const key = String(allTargets);
  let byName = mutantCache.get(key);
  if (!byName) mutantCache.set(key, (byName = new Map(allMutants({ allTargets }).map((m) => [m.name, m]))));
  const m = byName.get(name);
  if (!m) throw new Error(`no mutant named '${name}'`);
  return m;
}

/** Run one mutant task (in a worker or in this thread). */
export function runMutantTask(task: MutantTask): ScenarioOutcome[] {
  const m = mutantByName(task.name, task.allTargets);
  const mutant = m.build();
  const out: ScenarioOutcome[] = [];
  for (const b of task.baselines) {
    const r = exploreMutant(mutant, b, task.caps);
    out.push(r);
    if (r.kind === 'killed' || r.kind === 'crash') break;
    // Not thorough: a complete footing where the mutant is clean and observably different already makes
    // it a survivor; the other footings could only turn that into a kill, and are explored only through
    // their prompt runs (seconds each). The shipped scenarios are still searched in full: at their budget
    // they cost seconds, and they reach what no footing does (two requests, block reuse, two handles),
    // where such a mutant is often killed (sixth session: 3 of 12 survivors read). The score stays a
    // lower bound.
    if (!task.thorough && b.decides && r.kind === 'clean' && !r.truncated && !r.same && !r.bisimilar) {
      const rest = task.baselines.slice(task.baselines.indexOf(b) + 1);
      for (const later of rest.filter((x) => x.decides)) {
        const k = promptKill(mutant, later);
        if (k) return [...out, k];
      }
      for (const later of rest.filter((x) => !x.decides)) {
        const k = exploreMutant(mutant, later, task.caps);
        out.push(k);
        if (k.kind === 'killed' || k.kind === 'crash') break;
      }
      break;
    }
  }
  return out;
}

/** Heap of one worker thread: a mutant whose worlds grow without bound is stopped here, not the machine. */
const WORKER_HEAP_MB = 1536;

type Job = { kind: 'baseline'; scenario: string; walks?: number; shippedStates?: number } | { kind: 'mutant'; task: MutantTask };
type JobResult = Baseline | ScenarioOutcome[];

export function runJob(job: Job): JobResult {
  return job.kind === 'baseline' ? computeBaseline(job.scenario, { walks: job.walks, shippedStates: job.shippedStates }) : runMutantTask(job.task);
}

/** The compiled worker next to this file; absent when running from TypeScript sources (tests). */
function workerFile(): URL | null {
  return compiledWorker(new URL('./worker.js', import.meta.url), import.meta.url);
}

export async function runMutate(opts: MutateOptions = {}): Promise<MutateReport> {
  const t0 = performance.now();
  const ids = productionMachines().map((m) => m.id);
  if (opts.machine && !ids.includes(opts.machine)) throw new UsageError(`unknown machine '${opts.machine}'; known: ${ids.join(', ')}`);
  if (opts.limit !== undefined && (!Number.isInteger(opts.limit) || opts.limit < 1)) throw new UsageError('--limit must be a positive integer');
  if (opts.budgetMs !== undefined && (!Number.isFinite(opts.budgetMs) || opts.budgetMs <= 0)) throw new UsageError('--budget-ms must be a positive number');

  // Only machines that an explored scenario runs can be mutated meaningfully; the others are reported.
  if (opts.walks !== undefined && (!Number.isInteger(opts.walks) || opts.walks < 0)) throw new UsageError('--walks must be a non-negative integer');
  const shippedBudget = Math.max(...mutationTargets().filter((t) => !t.decides).map((t) => t.maxStates));
  if (opts.shippedStates !== undefined && (!Number.isInteger(opts.shippedStates) || opts.shippedStates < shippedBudget)) throw new UsageError(`--shipped-states must be an integer of at least ${shippedBudget} (the shipped budget): a smaller search could miss where a mutant differs`);
  const explored = new Set(mutationScenarios({ deepBounds: opts.deepBounds }).flatMap((s) => machineIdsOf(scenarioSetup(s).cfg)));
  if (opts.machine && !explored.has(opts.machine)) throw new UsageError(`no explored scenario runs machine '${opts.machine}'; explored: ${[...explored].sort().join(', ')}`);
  const everything = allMutants({ machine: opts.machine, allTargets: opts.allTargets });
  const unexplored = [...new Set(everything.filter((m) => !explored.has(m.machineId)).map((m) => m.machineId))].map((machine) => ({
    machine,
    mutants: everything.filter((m) => m.machineId === machine).length,
  }));
  let mutants = everything.filter((m) => explored.has(m.machineId));
  if (opts.only) {
    const names = new Set(opts.only);
    mutants = mutants.filter((m) => names.has(m.name));
    const missing = opts.only.filter((n) => !mutants.some((m) => m.name === n));
    if (missing.length > 0) throw new UsageError(`unknown mutant '${missing[0]}'`);
  }
  if (opts.limit !== undefined) mutants = spread(mutants, opts.limit);

  const file = workerFile();
  const size = opts.workers ?? (file ? availableParallelism() : 0);
  const pool = new WorkerPool<Job, JobResult>(file ? size : 0, file, runJob, WORKER_HEAP_MB);
  try {
    // Only scenarios that run a mutated machine need a baseline.
    const wanted = new Set(mutants.map((m) => m.machineId));
    const scenarioNames = mutationScenarios({ deepBounds: opts.deepBounds }).filter((s) => machineIdsOf(scenarioSetup(s).cfg).some((id) => wanted.has(id)));
    const baselines = (await Promise.all(scenarioNames.map((s) => pool.run({ kind: 'baseline', scenario: s, walks: opts.walks, shippedStates: opts.shippedStates })))) as Baseline[];
    // Footings first (they decide), smallest first: most kills show up in the cheapest one.
    baselines.sort((a, b) => Number(b.decides) - Number(a.decides) || a.states - b.states || a.scenario.localeCompare(b.scenario));

    const caps: Caps = { maxMs: opts.maxMsPerScenario ?? 600_000 };
    const results: MutantResult[] = new Array(mutants.length);
    let done = 0;
    let next = 0;
    const overBudget = () => opts.budgetMs !== undefined && performance.now() - t0 > opts.budgetMs;
    const order = sampleOrder(mutants.length);
    // One lane per worker, each taking the next mutant of `order`: the budget, checked before a mutant
    // starts, cuts the run after a prefix of that order, which is spread over the whole list.
    const lane = async (): Promise<void> => {
      while (next < mutants.length && !overBudget()) {
        const i = order[next++]!;
        const m = mutants[i]!;
        const mine = baselines.filter((b) => b.machines.includes(m.machineId));
        const task: MutantTask = {
          name: m.name,
          allTargets: opts.allTargets ?? false,
          baselines: mine.map(({ scenario, violations, waitsWithoutDeadline, digest, walks, maxStates, steps, shallowSteps, states, edges, truncated, decides }) => ({ scenario, violations, waitsWithoutDeadline, digest, walks, maxStates, steps, shallowSteps, states, edges, truncated, decides })),
          caps,
          thorough: opts.thorough ?? true,
        };
        const t1 = performance.now();
        let outcomes: ScenarioOutcome[];
        try {
          outcomes = mine.length === 0 ? [] : ((await pool.run({ kind: 'mutant', task })) as ScenarioOutcome[]);
        } catch (err) {
          // The worker died under this mutant (its heap limit): no verdict, and the run goes on.
          const message = err instanceof Error ? err.message.split('\n')[0]! : String(err);
          outcomes = [{ scenario: mine[0]!.scenario, kind: 'cap', message: `the worker died (${message})`, states: 0, ms: Math.round(performance.now() - t1) }];
        }
        results[i] = classify(m, outcomes, mine, Math.round(performance.now() - t1));
        opts.onResult?.(results[i]!, ++done, mutants.length);
      }
    };
    await Promise.all(Array.from({ length: Math.max(1, pool.size) }, lane));

    const ran = results.filter((r): r is MutantResult => r !== undefined);
    const count = (v: Verdict) => ran.filter((r) => r.verdict === v).length;
    const killed = count('killed') + count('killed (crash)');
    const equivalent = count('equivalent');
    const denominator = ran.length - equivalent;
    return {
      scenarios: baselines.map(({ scenario, machines, states, edges, ms, violations, truncated, walks, maxStates, decides }) => {
        const cfg = scenarioSetup(scenario).cfg;
        return { scenario, machines, states, edges, ms, violations, truncated, complete: !truncated, decides, walks, maxStates, bounds: cfg.bounds, backend: cfg.backend };
      }),
      mutants: ran.length,
      killed,
      killedCrash: count('killed (crash)'),
      equivalent,
      survivedCount: count('survived'),
      notRun: mutants.length - ran.length,
      unexplored,
      total: mutants.length,
      score: denominator === 0 ? 1 : killed / denominator,
      survived: ran.filter((r) => r.verdict === 'survived').map((r) => ({ mutant: r.mutant, why: r.why })),
      results: ran,
      ms: Math.round(performance.now() - t0),
      workers: pool.size,
    };
  } finally {
    await pool.close();
  }
}

/**
 * A deterministic order of 0..n-1 whose every prefix is spread evenly over the list (golden-ratio
 * sequence), so a run cut short by the budget samples every machine and every part of each machine,
 * rather than only the first states of each.
 */
export function sampleOrder(n: number): number[] {
  const phi = (Math.sqrt(5) - 1) / 2;
  return Array.from({ length: n }, (_, i) => i).sort((a, b) => ((a * phi) % 1) - ((b * phi) % 1) || a - b);
}

/** Verdict and reason for one mutant from its per-scenario outcomes. */
export function classify(m: Mutant, outcomes: ScenarioOutcome[], baselines: Array<Pick<Baseline, 'scenario' | 'truncated'> & { walks?: number; decides?: boolean }>, ms: number): MutantResult {
  const base = { mutant: m.name, machine: m.machineId, operator: m.operator, scenarios: outcomes, ms };
  const kill = outcomes.find((o) => o.kind === 'killed');
  if (kill && kill.kind === 'killed') return { ...base, verdict: 'killed', kind: kill.invariantKind, why: `${kill.invariant} (${kill.invariantKind}) in ${kill.scenario}: ${kill.message}`, computed: true };
  const crash = outcomes.find((o) => o.kind === 'crash');
  if (crash) return { ...base, verdict: 'killed (crash)', why: `exception in ${crash.scenario}: ${crash.message}`, computed: true };
  if (outcomes.length === 0) return { ...base, verdict: 'survived', why: `no explored scenario runs ${m.machineId}`, computed: true };
  const note = SURVIVOR_REASONS[m.name];
  const withNote = (why: string) => (note ? `${why}; reviewed: ${note}` : why);
  const cap = outcomes.find((o) => o.kind === 'cap');
  if (cap) return { ...base, verdict: 'survived', why: withNote(`undecided: exploration abandoned in ${cap.scenario} after ${cap.message} without a violation`), computed: true };
  const clean = outcomes.filter((o): o is Extract<ScenarioOutcome, { kind: 'clean' }> => o.kind === 'clean');
  const decides = (o: { scenario: string }) => baselines.find((b) => b.scenario === o.scenario)?.decides ?? true;
  const footings = clean.filter(decides);
  const shipped = clean.filter((o) => !decides(o));
  // Only a complete exploration decides: a graph cut at the state budget may differ past the cut.
  const cutFooting = footings.filter((o) => o.truncated || baselines.find((b) => b.scenario === o.scenario)?.truncated);
  if (cutFooting.length > 0) {
    const where = cutFooting.map((o) => `${o.scenario} at ${o.states} worlds`).join(', ');
    return { ...base, verdict: 'survived', why: withNote(`undecided: truncated (${where}) with no violation in the explored part`), computed: true };
  }
  const differs = footings.filter((o) => !o.same && !o.bisimilar);
  if (differs.length > 0) {
    const where = differs.map((o) => `${o.scenario} (first different step: ${o.differsAt ?? '?'})`).join(', ');
    const left = baselines.filter((b) => !outcomes.some((o) => o.scenario === b.scenario)).map((b) => b.scenario);
    const stopped = left.length > 0 ? `; not explored in ${left.join(', ')} (stopped at the first observable difference)` : '';
    return { ...base, verdict: 'survived', why: withNote(`complete exploration differs observably from the original's without a violation in ${where}${stopped}`), computed: true };
  }
  const missing = baselines.filter((b) => (b.decides ?? true) && !footings.some((o) => o.scenario === b.scenario));
  if (missing.length > 0) return { ...base, verdict: 'survived', why: withNote(`undecided: not explored in ${missing.map((b) => b.scenario).join(', ')}`), computed: true };
  // Alike modulo write-only context (src/mutate/steps.ts alikeModuloWriteOnly) counts as alike.
  const shippedDiff = shipped.filter((o) => !o.same && !o.writeOnly);
  if (shippedDiff.length > 0) {
    const where = shippedDiff.map((o) => `${o.scenario}${o.truncated ? ` at ${o.states} worlds` : ''}${o.notWriteOnly ? ` (${o.notWriteOnly})` : ''}`).join(', ');
    return { ...base, verdict: 'survived', why: withNote(`undecided: identical to the original on every footing; differs only in ${where} (truncated), with no violation in the explored part`), computed: true };
  }
  if (footings.length === 0) return { ...base, verdict: 'survived', why: withNote('undecided: no complete footing runs it'), computed: true };
  const unexplored = clean.filter((o) => o.unexplored).length;
  const bisim = footings.filter((o) => !o.same).map((o) => o.scenario);
  const writeOnly = [...new Set(shipped.flatMap((o) => (o.same ? [] : (o.writeOnly ?? []))))].sort();
  const modulo = writeOnly.length > 0 ? ` (alike modulo write-only context: ${writeOnly.join(', ')})` : '';
  return {
    ...base,
    verdict: 'equivalent',
    why:
      `${bisim.length > 0 ? `bisimilar to the original's graph (observations of the consequence invariants) on ${bisim.join(', ')}, identical on the other footings` : 'identical graphs on every complete footing'}` +
      ` and in the explored part of ${shipped.map((o) => o.scenario).join(', ') || 'no shipped scenario'}${modulo}; ${unexplored} of ${clean.length} shown by the step check without exploring`,
    computed: true,
    ...(writeOnly.length > 0 ? { writeOnly } : {}),
  };
}
