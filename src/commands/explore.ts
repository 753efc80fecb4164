import type { Command } from 'commander';
import { combinations, expectedViolations } from '../explore/catalog.js';
import type { ExploreResult, ExploredGraph } from '../explore/explorer.js';
import { coverage } from '../explore/coverage.js';
import type { MachineCoverage } from '../explore/coverage.js';
import { blockLeaseMachine, contextSendMachine, generationReceiveMachine, requestLifecycleMachine, transferHandleMachine } from '../../machines/index.js';
import { exploreCombination } from '../explore/explorer.js';
import { UsageError } from '../errors.js';
import type { Bounds } from '../explore/composed.js';
import { COMPOSED_PLAN, COMPOSED_SCENARIOS, composedCombinations, exploreComposedCombination } from '../explore/composedCatalog.js';
import type { ComposedResult } from '../explore/composedExplorer.js';
import { exploreComposedInWorkers } from '../explore/composedPool.js';
import { availableParallelism } from 'node:os';
import { INVARIANTS, invariantKind } from '../explore/invariantCatalog.js';

export interface ExploreOptions {
  scenario?: string;
  variant?: string;
  json?: boolean;
  /** Wider bounds and a larger state budget for the composed scenarios. */
  deep?: boolean;
  /** Also run the one-sided scenarios (each side against a modelled peer). */
  oneSided?: boolean;
  /** Print the invariant catalogue instead of exploring. */
  invariants?: boolean;
}

/** Bounds of the one-sided scenarios, as they are written (one request unless noted, one handle, one cancel, no duplicates). */
const ONE_SIDED_BOUNDS: Record<string, Bounds> = {
  slotContention: { requests: 2, handlesPerRequest: 0, cancels: 0, duplicates: 0, reorder: 0, losses: 0, peerDeath: 0 },
};
const oneSidedBounds = (scenario: string): Bounds =>
  ONE_SIDED_BOUNDS[scenario] ?? { requests: 1, handlesPerRequest: scenario.startsWith('generation') ? 0 : 1, cancels: 1, duplicates: 0, reorder: 0, losses: 0, peerDeath: 0 };

const boundsLine = (b: Bounds) => `requests ${b.requests}, handles/request ${b.handlesPerRequest}, cancels ${b.cancels}, duplicates ${b.duplicates}, reorder ${b.reorder}, losses ${b.losses}, peer deaths ${b.peerDeath}`;

/** A composed result passes when shipped is clean, or a variant is caught by every expected consequence invariant. */
export function composedVerdict(r: ComposedResult): { ok: boolean; note: string } {
  if (r.shipped) return r.violations.length === 0 ? { ok: true, note: r.truncated ? `clean (state budget reached; exhaustive to depth ${r.exhaustiveDepth})` : 'clean (exhaustive within the bounds)' } : { ok: false, note: 'VIOLATED' };
  const expected = COMPOSED_PLAN[r.variant]?.expect ?? [];
  if (expected.length === 0) return { ok: true, note: r.violations.length > 0 ? 'found (reported)' : 'nothing found (reported)' };
  const missing = expected.filter((e) => !r.violations.some((v) => v.invariant === e));
  if (r.violations.length === 0) return { ok: false, note: r.truncated ? 'NOT CAUGHT within the state budget' : 'NOT CAUGHT' };
  return missing.length === 0 ? { ok: true, note: 'caught' } : { ok: false, note: `caught, but not ${missing.join(', ')}` };
}

/** A shipped combination passes with no violation; a regression variant passes when its bug is found. */
export function verdict(r: ExploreResult): { ok: boolean; note: string } {
  if (r.shipped) return r.violations.length === 0 ? { ok: true, note: 'clean' } : { ok: false, note: 'VIOLATED' };
  const expected = expectedViolations(r.variant, r.scenario);
  const missing = expected.filter((e) => !r.violations.some((v) => v.invariant === e));
  if (r.violations.length === 0) return { ok: false, note: 'NOT CAUGHT' };
  return missing.length === 0 ? { ok: true, note: 'caught' } : { ok: false, note: `caught, but not ${missing.join(', ')}` };
}

const PRODUCTION = [transferHandleMachine, contextSendMachine, generationReceiveMachine, requestLifecycleMachine, blockLeaseMachine];

/** The composed combinations a run explores (before any is explored). */
export function composedCombosOf(opts: ExploreOptions): Array<{ scenario: string; variant: string }> {
  if (opts.invariants) return [];
  const wantsComposed = !opts.scenario || opts.scenario.startsWith('composed');
  const composedVariantNamed = !opts.variant || opts.variant === 'shipped' || opts.variant in COMPOSED_PLAN;
  if (!wantsComposed || !composedVariantNamed) return [];
  const combos = composedCombinations({ scenario: opts.scenario, variant: opts.variant });
  if (combos.length === 0 && opts.scenario !== undefined) {
    const known = opts.scenario === 'composed' || opts.scenario in COMPOSED_SCENARIOS;
    if (!known) throw new UsageError(`unknown scenario '${opts.scenario}'; composed: ${Object.keys(COMPOSED_SCENARIOS).join(', ')}`);
    throw new UsageError(`variant '${opts.variant}' is not explored in ${opts.scenario}; it runs in ${(COMPOSED_PLAN[opts.variant!]?.scenarios ?? []).join(', ')}`);
  }
  return combos;
}

/**
 * Run the exploration and print it. `explored`: the composed results already computed (by worker
 * threads, see the command), in the order of `composedCombosOf(opts)`; `wallMs`: how long that took.
 */
export function runExplore(
  opts: ExploreOptions,
  print: (line: string) => void = console.log,
  explored?: { composed: ComposedResult[]; wallMs: number; workers: number },
): { results: ExploreResult[]; composed: ComposedResult[]; ok: boolean; coverage: MachineCoverage[] } {
  if (opts.invariants) {
    if (opts.json) print(JSON.stringify({ invariants: INVARIANTS.map(({ id, kind, scope, description }) => ({ id, kind, scope, description })) }));
    else for (const i of INVARIANTS) print(`${i.id.padEnd(4)} ${i.kind.padEnd(12)} ${i.scope.padEnd(10)} ${i.description}`);
    return { results: [], composed: [], ok: true, coverage: [] };
  }
  // The composed scenarios (both sides, production wiring) run by default; the one-sided ones on request
  // or when a one-sided scenario or variant is named.
  const composedCombos = composedCombosOf(opts);
  const composed: ComposedResult[] = [];
  let ok = true;
  if (!opts.json && composedCombos.length > 0) print(`${'scenario'.padEnd(20)}${'variant'.padEnd(27)}${'states'.padStart(8)}${'edges'.padStart(9)}${'ms'.padStart(8)}  violations`);
  for (const [i, c] of composedCombos.entries()) {
    const r = explored?.composed[i] ?? exploreComposedCombination(c.scenario, c.variant, { deep: opts.deep });
    composed.push(r);
    const v = composedVerdict(r);
    ok &&= v.ok;
    if (!opts.json) print(`${r.scenario.padEnd(20)}${r.variant.padEnd(27)}${String(r.states).padStart(8)}${String(r.edges).padStart(9)}${String(r.ms).padStart(8)}  ${(r.violations.map((x) => x.invariant).join(',') || '-').padEnd(12)} ${v.note}`);
  }
  if (!opts.json && composed.length > 0) {
    for (const name of new Set(composed.map((r) => r.scenario))) {
      const r = composed.find((x) => x.scenario === name)!;
      print(`  ${name}: ${COMPOSED_SCENARIOS[name]!.backend}; bounds: ${boundsLine(r.bounds)}; composed: both sides' production machines`);
    }
    for (const r of composed) {
      for (const v of r.violations) {
        print(`\n${r.scenario} × ${r.variant}: ${v.invariant} (${v.kind}): ${v.message}`);
        v.path.forEach((st, i) => print(`    ${String(i + 1).padStart(2)}. ${st}`));
      }
    }
  }
  const oneSided = opts.oneSided || (opts.scenario !== undefined && !opts.scenario.startsWith('composed')) || (opts.variant !== undefined && opts.variant !== 'shipped' && !(opts.variant in COMPOSED_PLAN));
  const combos = oneSided ? combinations({ scenario: opts.scenario?.startsWith('composed') ? undefined : opts.scenario, variant: opts.variant !== undefined && opts.variant in COMPOSED_PLAN ? undefined : opts.variant }) : [];
  const results: ExploreResult[] = [];
  const shippedGraphs: ExploredGraph[] = [];
  if (!opts.json && combos.length > 0) print(`${'scenario'.padEnd(24)}${'variant'.padEnd(21)}${'states'.padStart(7)}${'edges'.padStart(8)}${'ms'.padStart(7)}  violations`);
  for (const c of combos) {
    const r = exploreCombination(c, c.variant === 'shipped' ? (g) => shippedGraphs.push(g) : undefined);
    results.push(r);
    const v = verdict(r);
    ok &&= v.ok;
    if (opts.json) continue;
    const names = r.violations.map((x) => x.invariant).join(',') || '-';
    print(`${r.scenario.padEnd(24)}${r.variant.padEnd(21)}${String(r.states).padStart(7)}${String(r.edges).padStart(8)}${String(r.ms).padStart(7)}  ${names.padEnd(16)} ${v.note}`);
  }
  // Coverage of the production machines by the shipped scenarios explored in this run.
  const cov = shippedGraphs.length > 0 ? coverage(PRODUCTION, shippedGraphs) : [];
  if (opts.json) {
    const one = results.map((r) => ({ ...r, composed: false, bounds: oneSidedBounds(r.scenario), violations: r.violations.map((v) => ({ invariant: v.invariant, kind: invariantKind(v.invariant), message: v.message, path: v.path })) }));
    const both = composed.map(({ seenPairs: _s, ...r }) => ({ ...r, verdict: composedVerdict(r).note }));
    print(JSON.stringify({ results: [...both, ...one], coverage: cov }));
    return { results, composed, ok, coverage: cov };
  }
  for (const r of results) {
    if (r.violations.length === 0) continue;
    print(`\n${r.scenario} × ${r.variant}:`);
    for (const v of r.violations) {
      print(`  ${v.invariant}: ${v.message}`);
      v.path.forEach((s, i) => print(`    ${String(i + 1).padStart(2)}. ${s}`));
    }
  }
  if (cov.length > 0) {
    print(`\ncoverage of the production machines by the shipped scenarios above (states, handled state×event pairs):`);
    for (const c of cov) {
      print(`  ${c.machine.padEnd(18)} states ${c.states.covered}/${c.states.total}, transitions ${c.transitions.covered}/${c.transitions.total}`);
      if (c.states.missing.length) print(`    states never reached: ${c.states.missing.join(', ')}`);
      if (c.transitions.missing.length) print(`    pairs never exercised: ${c.transitions.missing.join(', ')}`);
    }
  }
  const shipped = results.filter((r) => r.shipped);
  const variants = results.filter((r) => !r.shipped);
  const totalMs = results.reduce((n, r) => n + r.ms, 0) + composed.reduce((n, r) => n + r.ms, 0);
  const cShipped = composed.filter((r) => r.shipped);
  const cVariants = composed.filter((r) => !r.shipped);
  print(
    `\ncomposed: ${cShipped.filter((r) => r.violations.length === 0).length}/${cShipped.length} shipped clean, ${cVariants.filter((r) => composedVerdict(r).ok).length}/${cVariants.length} variants as expected` +
      (combos.length > 0 ? `; one-sided: ${shipped.filter((r) => r.violations.length === 0).length}/${shipped.length} shipped clean, ${variants.filter((r) => verdict(r).ok).length}/${variants.length} variants caught` : '') +
      `; ${totalMs} ms` +
      (explored ? ` of exploration, ${Math.round(explored.wallMs + results.reduce((n, r) => n + r.ms, 0))} ms wall (composed combinations on ${explored.workers} worker threads)` : ''),
  );
  return { results, composed, ok, coverage: cov };
}

export function register(program: Command): void {
  program
    .command('explore')
    .description('explore both servers’ machines composed through the production wiring (and, with --one-sided, each side alone); check the invariants')
    .option('--scenario <name>', 'only this scenario (or scenario family, e.g. contextCancel)')
    .option('--variant <name>', 'only this variant ("shipped" for the production machines)')
    .option('--json', 'print JSON')
    .option('--deep', 'composed scenarios: wider bounds (2 handles, cancels, duplicates, peer death) and a larger state budget')
    .option('--one-sided', 'also run the one-sided scenarios (each side against a modelled peer)')
    .option('--invariants', 'list the invariants: id, kind (consequence | design-rule), where checked, description')
    .option('--inspect', 'then serve the inspector, whose counterexample viewer steps through these results')
    .action(async (opts: ExploreOptions & { inspect?: boolean }) => {
      // The composed combinations are independent: one worker thread per core explores them.
      const combos = composedCombosOf(opts);
      const t0 = performance.now();
      const inWorkers = await exploreComposedInWorkers(combos, opts.deep === true);
      const explored = inWorkers ? { composed: inWorkers, wallMs: performance.now() - t0, workers: Math.min(availableParallelism(), combos.length) } : undefined;
      const { ok } = runExplore(opts, console.log, explored);
      process.exitCode = ok ? 0 : 1;
      if (!opts.inspect) return;
      const inspector = await (await import('../inspect/index.js')).startInspector({ port: 0 });
      console.error(`inspector: ${inspector.url} (counterexamples tab; close the page or press Ctrl-C to exit)`);
      await Promise.race([inspector.pagesGone(), new Promise((r) => process.once('SIGINT', r))]);
      await inspector.close();
    });
}
