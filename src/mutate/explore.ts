import { createHash } from 'node:crypto';
import type { AnyMachineSnapshot, AnyStateMachine } from 'xstate';
import type { ComposedConfig, ComposedState } from '../explore/composed.js';
import { COMPOSED_SCENARIOS, machinesWith } from '../explore/composedCatalog.js';
import type { ComposedViolation, ExploreHooks } from '../explore/composedExplorer.js';
import { exploreComposed } from '../explore/composedExplorer.js';
import type { InvariantKind } from '../explore/invariantCatalog.js';
import { invariantKind } from '../explore/invariantCatalog.js';
import { statesWithoutDeadline } from '../explore/liveness.js';
import { valueKey } from '../explore/world.js';

/**
 * Exploring one composed scenario for the mutation runner: the original once (the baseline: its
 * violations and a digest of its graph), then each mutant with the mutated machine swapped in on every
 * side and role that runs that machine id, under the scenario's shipped bounds and state budget, with
 * an early stop at the first violation the original does not have.
 */

/** The scenarios mutants are explored in: every composed scenario of the catalog. */
export function mutationScenarios(): string[] {
  return Object.keys(COMPOSED_SCENARIOS);
}

/** How a scenario is explored for mutation: the shipped bounds and budget, and the random walks `explore` takes past it. */
export interface ScenarioSetup {
  name: string;
  cfg: ComposedConfig;
  maxStates: number;
  walks: number;
  walkLength: number;
}

/** The shipped setup of a composed scenario (as `xferstate explore` runs it by default). */
export function scenarioSetup(name: string, opts: { walks?: number } = {}): ScenarioSetup {
  const sc = COMPOSED_SCENARIOS[name];
  if (!sc) throw new Error(`unknown composed scenario '${name}'`);
  return {
    name,
    cfg: { bounds: sc.bounds, backend: sc.backend, genBlocks: 1, timedDeadlines: true, machines: machinesWith(null) },
    maxStates: sc.maxStates,
    walks: opts.walks ?? 2000,
    walkLength: 50,
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
}

export function computeBaseline(name: string, opts: { walks?: number } = {}): Baseline {
  const setup = scenarioSetup(name, opts);
  const t0 = performance.now();
  const d = new GraphDigest();
  const r = exploreComposed(setup.cfg, { scenario: name, variant: 'shipped' }, { maxStates: setup.maxStates, walks: setup.walks, walkLength: setup.walkLength, hooks: d.hooks });
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
  };
}

/** What a mutant did in one scenario. */
export type ScenarioOutcome =
  | { scenario: string; kind: 'killed'; invariant: string; invariantKind: InvariantKind; message: string; path: string[]; states: number; ms: number }
  | { scenario: string; kind: 'crash'; message: string; states: number; ms: number }
  | { scenario: string; kind: 'cap'; message: string; states: number; ms: number }
  | { scenario: string; kind: 'clean'; same: boolean; truncated: boolean; states: number; edges: number; ms: number };

export interface Caps {
  /** Abandon a mutant's exploration of one scenario after this long (undecided); a backstop, not a verdict. */
  maxMs: number;
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
export function exploreMutant(mutant: AnyStateMachine, base: Pick<Baseline, 'scenario' | 'violations' | 'waitsWithoutDeadline' | 'digest' | 'walks'>, caps: Caps): ScenarioOutcome {
  const t0 = performance.now();
  const known = new Set(base.violations);
  let states = 0;
  const elapsed = () => Math.round(performance.now() - t0);
  try {
    const setup = scenarioSetup(base.scenario, { walks: base.walks });
    const cfg = withMachine(setup.cfg, mutant);
    // L1 is a property of the definitions: a wait the mutant left unbounded is seen without exploring.
    const before = new Set(base.waitsWithoutDeadline);
    const newWait = l1Findings(cfg).find((f) => !before.has(f));
    if (newWait && !known.has('L1')) return { scenario: base.scenario, kind: 'killed', invariant: 'L1', invariantKind: invariantKind('L1'), message: `${newWait} waits with neither a deadline nor local progress`, path: [], states: 0, ms: elapsed() };
    const d = new GraphDigest();
    const hooks: ExploreHooks = {
      onWorld: (s, id) => {
        states = id + 1;
        if ((id & 255) === 0 && performance.now() - t0 > caps.maxMs) throw new Stop({ kind: 'cap', message: `more than ${caps.maxMs} ms` });
        d.hooks.onWorld!(s, id);
      },
      onEdge: d.hooks.onEdge,
      onViolation: (v: ComposedViolation) => {
        if (!known.has(v.invariant)) throw new Stop({ kind: 'killed', invariant: v.invariant, invariantKind: v.kind, message: v.message, path: v.path });
      },
    };
    const r = exploreComposed(cfg, { scenario: base.scenario, variant: `mutant` }, { maxStates: setup.maxStates, walks: setup.walks, walkLength: setup.walkLength, hooks });
    return { scenario: base.scenario, kind: 'clean', same: d.digest() === base.digest, truncated: r.truncated, states: r.states, edges: r.edges, ms: elapsed() };
  } catch (err) {
    if (err instanceof Stop) return { scenario: base.scenario, ...err.outcome, states, ms: elapsed() };
    const message = err instanceof Error ? err.message.split('\n')[0]! : String(err);
    return { scenario: base.scenario, kind: 'crash', message, states, ms: elapsed() };
  }
}
