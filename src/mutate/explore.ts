import { createHash } from 'node:crypto';
import type { AnyMachineSnapshot, AnyStateMachine } from 'xstate';
import type { ComposedConfig, ComposedState } from '../explore/composed.js';
import { machinesWith } from '../explore/composedCatalog.js';
import type { ComposedViolation, ExploreHooks, ExploreOptions } from '../explore/composedExplorer.js';
import { exploreComposed } from '../explore/composedExplorer.js';
import { ComposedWorld } from '../explore/composed.js';
import { checkPromptRun } from '../explore/promptRun.js';
import type { InvariantKind } from '../explore/invariantCatalog.js';
import { invariantKind } from '../explore/invariantCatalog.js';
import { statesWithoutDeadline } from '../explore/liveness.js';
import { valueKey } from '../explore/world.js';
import { mutationTarget, mutationTargets } from './footings.js';
import type { ObservedGraph } from './bisim.js';
import { FULL_GRAPH, GraphObserver, Interner, bisimilar, observedGraph } from './bisim.js';
import type { StepRecord } from './steps.js';
import { StepRecorder, alikeModuloWriteOnly, firstDifference, guarded } from './steps.js';

/**
 * Exploring one footing or composed scenario for the mutation runner (src/mutate/footings.ts): the
 * original once (the baseline: its violations, a digest of its graph and every machine step it took),
 * then each mutant with the mutated machine swapped in on every side and role that runs that machine
 * id. A mutant that takes every one of the original's steps alike has the same graph (src/mutate/steps.ts)
 * and is not explored; one that does not is explored under the same bounds and budget, with an early
 * stop at the first violation the original does not have.
 */

/** Where mutants are explored: the complete footings, then the shipped composed scenarios. */
export function mutationScenarios(opts: { deepBounds?: boolean } = {}): string[] {
  return mutationTargets(opts).map((t) => t.name);
}

/** How a footing or scenario is explored for mutation: bounds, budget, and the random walks past a cut budget. */
export interface ScenarioSetup {
  name: string;
  cfg: ComposedConfig;
  maxStates: number;
  walks: number;
  walkLength: number;
  /** A footing (complete; decides equivalence) rather than a shipped scenario (kills only). */
  decides: boolean;
}

/**
 * How a setup is explored. A footing: the full transition system (no partial-order reduction, no
 * handle symmetry), so that identical or bisimilar graphs mean the same of the system itself, not of a
 * reduction that depends on the machines' hidden states. A shipped scenario: as `explore` runs it.
 */
function exploreOptions(setup: ScenarioSetup, hooks: ExploreHooks): ExploreOptions {
  return { maxStates: setup.maxStates, walks: setup.walks, walkLength: setup.walkLength, hooks, ...(setup.decides ? FULL_GRAPH : {}) };
}

/** How far the kill search goes in the shipped scenarios (footings are complete and ignore both). */
export interface SearchDepth {
  walks?: number;
  /**
   * The shipped scenarios' state budget, for baseline and mutant alike; never below the shipped one
   * (a smaller search could miss where a mutant differs and let it pass for equivalent).
   */
  shippedStates?: number;
}

/**
 * The setup of a footing, or of a shipped composed scenario at its shipped bounds and budget (or the
 * larger `shippedStates`: a deeper kill search). A deeper search decides nothing new about equivalence:
 * a mutant is alike in a shipped scenario only if it is alike at the shipped budget too
 * (Baseline.shallowSteps), so it can turn an undecided mutant into a kill, never into an equivalent.
 */
export function scenarioSetup(name: string, opts: SearchDepth = {}): ScenarioSetup {
  const t = mutationTarget(name);
  return {
    name,
    cfg: { bounds: t.bounds, backend: t.backend, genBlocks: 1, timedDeadlines: true, machines: machinesWith(null) },
    maxStates: t.decides ? t.maxStates : Math.max(t.maxStates, opts.shippedStates ?? 0),
    walks: opts.walks ?? 0,
    walkLength: 50,
    decides: t.decides,
  };
}

/** Machine ids the scenario runs (both sides). */
export function machineIdsOf(cfg: ComposedConfig): string[] {
  const ids = new Set<string>();
  for (const side of Object.values(cfg.machines)) for (const m of Object.values(side)) if (m) ids.add(m.id);
  return [...ids].sort();
}

/** The configuration with every side and role that runs `machine.id` running `machine` instead (as machinesWith does for variants). */
export function withMachine(cfg: ComposedConfig, machine: AnyStateMachine): ComposedConfig {
  const machines: ComposedConfig['machines'] = { context: {}, generation: {} };
  let replaced = 0;
  for (const side of ['context', 'generation'] as const) {
    for (const [role, m] of Object.entries(cfg.machines[side])) {
      if (m && m.id === machine.id) replaced++;
      machines[side][role] = m && m.id === machine.id ? machine : m;
    }
  }
  if (replaced === 0) throw new Error(`no role runs ${machine.id}`);
  return { ...cfg, machines };
}

/**
 * Identity of an explored graph: each world's content in discovery (breadth-first) order, and every edge
 * (from, label, to) in the order explored. The content is written here, not taken from the explorer's
 * state key, whose interned numbers depend on what the process explored before.
 */
export class GraphDigest {
  private readonly h = createHash('sha1');
  readonly hooks: ExploreHooks = {
    onWorld: (s, id) => void this.h.update(`w${id}\t${worldText(s)}\n`),
    onEdge: (from, label, to) => void this.h.update(`e${from}\t${label}\t${to}\n`),
  };
  digest(): string {
    return this.h.digest('hex');
  }
}

const snapTexts = new WeakMap<AnyMachineSnapshot, string>();
function snapText(a: AnyMachineSnapshot): string {
  let t = snapTexts.get(a);
  if (t === undefined) snapTexts.set(a, (t = `${a.status}:${valueKey(a)}:${JSON.stringify(a.context)}`));
  return t;
}

function worldText(s: ComposedState): string {
  const actors = Object.keys(s.actors)
    .sort()
    .map((k) => `${k}=${snapText(s.actors[k]!)}`)
    .join(',');
  const { actors: _a, violation: _v, ...rest } = s;
  return `${actors}|${JSON.stringify(rest)}`;
}

/** L1 findings (machine:state) of a configuration's machines: a property of the definitions, read without exploring. */
export function l1Findings(cfg: ComposedConfig): string[] {
  const out = new Set<string>();
  const machines = new Set<AnyStateMachine>();
  for (const side of Object.values(cfg.machines)) for (const m of Object.values(side)) if (m) machines.add(m);
  for (const m of machines) for (const w of statesWithoutDeadline(m)) out.add(`${w.machine}:${w.state}`);
  return [...out].sort();
}

/** What the runner keeps of an original scenario's exploration. */
export interface Baseline {
  scenario: string;
  machines: string[];
  states: number;
  edges: number;
  ms: number;
  truncated: boolean;
  digest: string;
  /** Invariants the original already violates here (a mutant is charged only for others). */
  violations: string[];
  waitsWithoutDeadline: string[];
  walks: number;
  /** The state budget explored (the footing's cap, or the shipped scenario's budget: see scenarioSetup). */
  maxStates: number;
  decides: boolean;
  /** Every machine step the exploration took (what a mutant is checked against before exploring). */
  steps: StepRecord;
  /**
   * A shipped scenario searched deeper than its shipped budget: the steps of the search at the shipped
   * budget. A mutant counts as alike there only if it also takes every one of these alike, so a deeper
   * search never calls a mutant alike that the shipped search would see differ.
   */
  shallowSteps?: StepRecord;
}

export function computeBaseline(name: string, opts: SearchDepth = {}): Baseline {
  const setup = scenarioSetup(name, opts);
  const t0 = performance.now();
  const d = new GraphDigest();
  const rec = new StepRecorder();
  const r = exploreComposed(rec.configOf(setup.cfg), { scenario: name, variant: 'shipped' }, exploreOptions(setup, d.hooks));
  const shallow = setup.decides || setup.maxStates === mutationTarget(name).maxStates ? undefined : shallowSteps(name, opts.walks);
  return {
    scenario: name,
    machines: machineIdsOf(setup.cfg),
    states: r.states,
    edges: r.edges,
    ms: Math.round(performance.now() - t0),
    truncated: r.truncated,
    digest: d.digest(),
    violations: [...new Set(r.violations.map((v) => v.invariant))],
    waitsWithoutDeadline: l1Findings(setup.cfg),
    walks: setup.walks,
    maxStates: setup.maxStates,
    decides: setup.decides,
    steps: rec.record(),
    ...(shallow ? { shallowSteps: shallow } : {}),
  };
}

/** The machine steps of a shipped scenario's search at its shipped budget (see Baseline.shallowSteps). */
function shallowSteps(name: string, walks: number | undefined): StepRecord {
  const setup = scenarioSetup(name, { walks });
  const rec = new StepRecorder();
  exploreComposed(rec.configOf(setup.cfg), { scenario: name, variant: 'shipped' }, exploreOptions(setup, {}));
  return rec.record();
}

/** What a mutant did in one scenario. */
export type ScenarioOutcome =
  | { scenario: string; kind: 'killed'; invariant: string; invariantKind: InvariantKind; message: string; path: string[]; states: number; ms: number }
  | { scenario: string; kind: 'crash'; message: string; states: number; ms: number }
  | { scenario: string; kind: 'cap'; message: string; states: number; ms: number }
  | { scenario: string; kind: 'clean'; /** Identical graph (by the step check, or by digest where no bisimulation is made). */ same: boolean; truncated: boolean; states: number; edges: number; ms: number; /** Decided by the step check, without exploring. */ unexplored?: boolean; /** The first step the mutant takes differently (when explored). */ differsAt?: string; /** For a complete, clean, different graph: whether it is bisimilar to the original's (src/mutate/bisim.ts). */ bisimilar?: boolean; /** A shipped scenario where the graph differs: the mutant answers every recorded call alike except in these context fields (machine.field), which nothing reads (src/mutate/steps.ts alikeModuloWriteOnly). */ writeOnly?: string[]; /** Where the step check modulo write-only context fails, why (for a reader of --json). */ notWriteOnly?: string };

export interface Caps {
  /** Abandon a mutant's exploration of one scenario after this long (undecided); a backstop, not a verdict. */
  maxMs: number;
  /** Check bisimilarity where a complete footing's graph differs (default true). */
  bisim?: boolean;
}

/** The original's observed graph per footing, built once per thread (the interner is shared with every mutant's). */
const intern = new Interner();
const originals = new Map<string, ObservedGraph>();

/** The original's observed graph of a footing (built once per thread, on first need). */
function originalGraph(setup: ScenarioSetup): ObservedGraph {
  let g = originals.get(setup.name);
  if (!g) originals.set(setup.name, (g = observedGraph(setup.cfg, setup.maxStates, intern)));
  return g;
}

class Stop extends Error {
  constructor(readonly outcome: { kind: 'killed'; invariant: string; invariantKind: InvariantKind; message: string; path: string[] } | { kind: 'cap'; message: string }) {
    super(outcome.message);
  }
}

/**
 * Explore one scenario with `mutant` swapped in, under the original's bounds, budget and walks; stop at
 * the first violation the original does not have. Clean: `same` when the graph digest equals the
 * original's (only a complete exploration makes that an equivalence).
 */
export function exploreMutant(mutant: AnyStateMachine, base: Pick<Baseline, 'scenario' | 'violations' | 'waitsWithoutDeadline' | 'digest' | 'walks' | 'steps' | 'states' | 'edges' | 'truncated'> & Partial<Pick<Baseline, 'maxStates' | 'shallowSteps'>>, caps: Caps): ScenarioOutcome {
  const t0 = performance.now();
  const known = new Set(base.violations);
  let states = 0;
  const elapsed = () => Math.round(performance.now() - t0);
  try {
    const setup = scenarioSetup(base.scenario, { walks: base.walks, shippedStates: base.maxStates });
    // Guarded: a step that never ends (an eventless loop) throws, and counts as a crash, not a dead worker.
    const cfg = withMachine(setup.cfg, guarded(mutant));
    // L1 is a property of the definitions: a wait the mutant left unbounded is seen without exploring.
    const before = new Set(base.waitsWithoutDeadline);
    const newWait = l1Findings(cfg).find((f) => !before.has(f));
    if (newWait && !known.has('L1')) return { scenario: base.scenario, kind: 'killed', invariant: 'L1', invariantKind: invariantKind('L1'), message: `${newWait} waits with neither a deadline nor local progress`, path: [], states: 0, ms: elapsed() };
    // Every step the original took, taken alike: the same graph, no need to explore it.
    const differsAt = firstDifference(mutant, base.steps);
    // Searched deeper than shipped: alike only if alike at the shipped budget too (Baseline.shallowSteps).
    const alikeShallow = !base.shallowSteps || firstDifference(mutant, base.shallowSteps) === null;
    if (differsAt === null) {
      const modulo = alikeShallow || setup.decides ? null : moduloWriteOnly(mutant, base);
      return { scenario: base.scenario, kind: 'clean', same: alikeShallow, truncated: base.truncated, states: base.states, edges: base.edges, ms: elapsed(), unexplored: true, ...(modulo === null ? {} : modulo.alike ? { writeOnly: modulo.fields } : { notWriteOnly: modulo.why }) };
    }
    const d = new GraphDigest();
    // On a footing the observed graph is kept in the same pass, for the bisimulation if the digest differs.
    const observer = setup.decides && caps.bisim !== false ? new GraphObserver(cfg, intern) : null;
    const hooks: ExploreHooks = {
      onWorld: (s, id) => {
        states = id + 1;
        if ((id & 255) === 0 && performance.now() - t0 > caps.maxMs) throw new Stop({ kind: 'cap', message: `more than ${caps.maxMs} ms` });
        (observer ?? d).hooks.onWorld!(s, id);
      },
      // With an observer the digest is not kept (it costs about a third of the search): the step
      // check already found a step taken differently, so the graph is compared by bisimulation.
      onEdge: (observer ?? d).hooks.onEdge,
      onViolation: (v: ComposedViolation) => {
        if (!known.has(v.invariant)) throw new Stop({ kind: 'killed', invariant: v.invariant, invariantKind: v.kind, message: v.message, path: v.path });
      },
    };
    const r = exploreComposed(cfg, { scenario: base.scenario, variant: `mutant` }, exploreOptions(setup, hooks));
    // A complete footing where a step differs and nothing broke: is the difference observable at all?
    if (observer) {
      const orig = r.truncated || base.truncated ? null : originalGraph(setup);
      const b = orig !== null && !orig.truncated && bisimilar(orig, observer.graph(r.states, r.truncated));
      return { scenario: base.scenario, kind: 'clean', same: false, truncated: r.truncated, states: r.states, edges: r.edges, ms: elapsed(), differsAt, bisimilar: b };
    }
    const same = d.digest() === base.digest && alikeShallow;
    // A shipped scenario (truncated: no bisimulation): alike when every difference is a field nobody reads.
    const modulo = same || setup.decides ? null : moduloWriteOnly(mutant, base);
    return { scenario: base.scenario, kind: 'clean', same, truncated: r.truncated, states: r.states, edges: r.edges, ms: elapsed(), differsAt, ...(modulo === null ? {} : modulo.alike ? { writeOnly: modulo.fields } : { notWriteOnly: modulo.why }) };
  } catch (err) {
    if (err instanceof Stop) return { scenario: base.scenario, ...err.outcome, states, ms: elapsed() };
    const message = err instanceof Error ? err.message.split('\n')[0]! : String(err);
    return { scenario: base.scenario, kind: 'crash', message, states, ms: elapsed() };
  }
}

/**
 * The step check modulo write-only context over the shipped search, and over its search at the shipped
 * budget when it was searched deeper (Baseline.shallowSteps): the mutant is alike only if alike in both.
 * The mutant's own search there has been explored already and found nothing the original does not have.
 */
function moduloWriteOnly(mutant: AnyStateMachine, base: Pick<Baseline, 'steps'> & Partial<Pick<Baseline, 'shallowSteps'>>): ReturnType<typeof alikeModuloWriteOnly> {
  const deep = alikeModuloWriteOnly(mutant, base.steps);
  if (!deep.alike || !base.shallowSteps) return deep;
  const shallow = alikeModuloWriteOnly(mutant, base.shallowSteps);
  return shallow.alike ? { alike: true, fields: [...new Set([...deep.fields, ...shallow.fields])].sort() } : shallow;
}

/**
 * A kill search on one place by its prompt runs alone (M7, M8, M10–M13: src/explore/promptRun.ts), for a
 * mutant that is already a survivor and would not be explored there (not thorough). The prompt search is
 * the first thing the full exploration of that place runs (exploreComposed, with the same budget), so a
 * kill found here is one the full exploration would report first, at a few seconds' cost instead of a
 * whole footing. It only ever finds kills: no answer here says nothing, and never makes a mutant equivalent.
 * Null when the mutant takes every step of the original there alike (same prompt runs) or nothing broke.
 */
export function promptKill(mutant: AnyStateMachine, base: Pick<Baseline, 'scenario' | 'violations' | 'walks' | 'steps'>, promptMaxStates = 10_000): ScenarioOutcome | null {
  const t0 = performance.now();
  if (firstDifference(mutant, base.steps) === null) return null;
  const setup = scenarioSetup(base.scenario, { walks: base.walks });
  try {
    const r = checkPromptRun(new ComposedWorld(withMachine(setup.cfg, guarded(mutant))), promptMaxStates);
    if (!r.violation || base.violations.includes(r.violation.invariant)) return null;
    const v = r.violation;
    return { scenario: base.scenario, kind: 'killed', invariant: v.invariant, invariantKind: invariantKind(v.invariant), message: `${v.message} (prompt runs only)`, path: v.path, states: r.states, ms: Math.round(performance.now() - t0) };
  } catch (err) {
    const message = err instanceof Error ? err.message.split('\n')[0]! : String(err);
    return { scenario: base.scenario, kind: 'crash', message, states: 0, ms: Math.round(performance.now() - t0) };
  }
}
