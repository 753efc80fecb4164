import { createHash } from 'node:crypto';
import type { AnyMachineSnapshot, AnyStateMachine } from 'xstate';
import { SCENARIOS, scenarioFor } from '../explore/catalog.js';
import type { ExploredGraph } from '../explore/explorer.js';
import { analyse, buildGraph } from '../explore/explorer.js';
import type { InvariantName } from '../explore/invariants.js';
import { checkState } from '../explore/invariants.js';
import { statesWithoutDeadline } from '../explore/liveness.js';
import type { ScenarioDefinition, WorldState } from '../explore/world.js';
import type { MutationOperator, MutationSite } from './operators.js';
import { WorldDraft, roleOf } from '../explore/world.js';

/**
 * Exploring one scenario for the mutation runner: the original once (the baseline: its graph's
 * fingerprint, its violations, and which states and events it exercised), then each mutant with the
 * mutated machine swapped in by id, a state cap, and an early stop at the first new safety violation.
 */

/** The scenarios mutants are explored in: the composed ones when the catalog has any, else all. */
export function mutationScenarios(): string[] {
  const all = Object.keys(SCENARIOS);
  const composed = all.filter((s) => s.startsWith('composed'));
  return composed.length > 0 ? composed : all;
}

export function shippedScenario(name: string): ScenarioDefinition {
  return scenarioFor({ scenario: name, variant: 'shipped' });
}

/** Machine ids a scenario runs. */
export function machineIdsOf(sc: ScenarioDefinition): string[] {
  return [...new Set(Object.values(sc.machines).map((m) => m.id))];
}

/** The scenario with every role that runs `machine.id` running `machine` instead (as withVariant does). */
export function withMachine(sc: ScenarioDefinition, machine: AnyStateMachine): ScenarioDefinition {
  const machines: Record<string, AnyStateMachine> = {};
  for (const [role, m] of Object.entries(sc.machines)) machines[role] = m.id === machine.id ? machine : m;
  return { ...sc, machines };
}

/** What the runner keeps of an original scenario's exploration. */
export interface Baseline {
  scenario: string;
  machines: string[];
  states: number;
  edges: number;
  ms: number;
  fingerprint: string;
  violations: InvariantName[];
  /** L1 findings (machine:state) of the original machines, so a mutant is charged only for new ones. */
  waitsWithoutDeadline: string[];
  /** `machineId|statePath` for every state path active in some explored world or after some transition within a step ('' = root). */
  reached: string[];
  /** `machineId|statePath|eventType` for every event delivered to an actor while that path was active. */
  delivered: string[];
}

/** Identity of an explored graph: worlds in traversal order and every edge (label, target index). */
export function fingerprint(g: ExploredGraph): string {
  const h = createHash('sha1');
  for (const k of g.keys) h.update(k).update('\n');
  g.out.forEach((edges, i) => {
    for (const e of edges) h.update(`${i}\t${e.label}\t${e.to}\n`);
  });
  return h.digest('hex');
}

/** Every active state path of a state value, with its prefixes ('' for the root). */
export function activePaths(value: unknown, prefix = ''): string[] {
  const out = prefix === '' ? [''] : [];
  const join = (k: string) => (prefix === '' ? k : `${prefix}.${k}`);
  if (typeof value === 'string') return [...out, join(value)];
  if (value && typeof value === 'object') {
    for (const [k, v] of Object.entries(value as Record<string, unknown>)) {
      out.push(join(k));
      out.push(...activePaths(v, join(k)).filter((p) => p !== ''));
    }
  }
  return out;
}

function parseValueKey(key: string): unknown {
  return key.startsWith('{') ? JSON.parse(key) : key;
}

function l1Findings(sc: ScenarioDefinition): string[] {
  const out = new Set<string>();
  for (const m of new Set(Object.values(sc.machines))) for (const w of statesWithoutDeadline(m)) out.add(`${w.machine}:${w.state}`);
  return [...out].sort();
}

export function computeBaseline(name: string): Baseline {
  const t0 = performance.now();
  const sc = shippedScenario(name);
  const g = buildGraph(sc);
  const violations = [...new Set(analyse(g).map((v) => v.invariant))];
  const ms = Math.round(performance.now() - t0);
  const idOf = (actor: string) => sc.machines[roleOf(actor)]?.id ?? roleOf(actor);
  const reached = new Set<string>();
  const delivered = new Set<string>();
  const seenValues = new Map<string, string[]>();
  const pathsOf = (key: string): string[] => {
    let p = seenValues.get(key);
    if (!p) seenValues.set(key, (p = activePaths(parseValueKey(key))));
    return p;
  };
  for (const w of g.worlds) {
    for (const [actor, s] of Object.entries(w.actors)) for (const p of activePaths((s as AnyMachineSnapshot).value)) reached.add(`${idOf(actor)}|${p}`);
  }
  // The graph's edges do not record what the scenario's start did (the initial world carries no step),
  // so replay the start once to see the events it delivered.
  const start = new WorldDraft(sc, { actors: {}, timers: {}, env: { ...sc.initialEnv }, last: null }, 'start', 'local');
  sc.start(start);
  const steps = [start.state.last?.transitions ?? [], ...g.out.flatMap((edges) => edges.map((e) => e.after.last?.transitions ?? []))];
  for (const transitions of steps) {
    for (const t of transitions) {
      // A state entered and left within one step (a synchronous result routed back at once) shows in no
      // world, only in the step's transitions.
      for (const p of pathsOf(t.to)) reached.add(`${idOf(t.actor)}|${p}`);
      if (t.from === null) continue;
      for (const p of pathsOf(t.from)) delivered.add(`${idOf(t.actor)}|${p}|${t.event}`);
    }
  }
  return {
    scenario: name,
    machines: machineIdsOf(sc),
    states: g.keys.length,
    edges: g.out.reduce((n, e) => n + e.length, 0),
    ms,
    fingerprint: fingerprint(g),
    violations,
    waitsWithoutDeadline: l1Findings(sc),
    reached: [...reached].sort(),
    delivered: [...delivered].sort(),
  };
}

/** What a mutant did in one scenario. */
export type ScenarioOutcome =
  | { scenario: string; kind: 'killed'; invariant: InvariantName; message: string; states: number; ms: number }
  | { scenario: string; kind: 'crash'; message: string; states: number; ms: number }
  | { scenario: string; kind: 'cap'; message: string; states: number; ms: number }
  | { scenario: string; kind: 'clean'; same: boolean; states: number; edges: number; ms: number; skipped?: true };

/** A state node at a dotted path of a machine config. */
function configAt(config: Record<string, unknown>, path: string): Record<string, unknown> | null {
  let n: Record<string, unknown> | undefined = config;
  for (const p of path ? path.split('.') : []) n = (n?.states as Record<string, Record<string, unknown>> | undefined)?.[p];
  return n ?? null;
}

/** Whether the state at `path` may be entered and left within one step (it or an ancestor has `always`). */
export function mayBeTransient(config: Record<string, unknown>, path: string): boolean {
  const parts = path ? path.split('.') : [];
  for (let i = 0; i <= parts.length; i++) if (configAt(config, parts.slice(0, i).join('.'))?.always !== undefined) return true;
  return false;
}

/**
 * Whether the mutated site can never act in this scenario, judged from the original's exploration. A
 * mutant differs from the original only when its site acts (its event arrives in its state, or its state
 * is entered); if that never happens in the original graph, the mutant's exploration takes the same steps
 * world by world, so its graph is the original's and need not be explored. Transient states never show
 * in a world, so sites in them are always explored.
 */
export function siteNeverActs(machine: AnyStateMachine, site: MutationSite, operator: MutationOperator, base: Pick<Baseline, 'reached' | 'delivered'>): boolean {
  const id = machine.id;
  const config = machine.config as Record<string, unknown>;
  if (mayBeTransient(config, site.state)) return false;
  const reached = base.reached.includes(`${id}|${site.state}`);
  if (!reached) return true;
  const ev = site.event;
  // A deadline's timer is armed on entry, so dropping it changes every world in which the state is active.
  if (!ev || operator === 'drop-deadline') return false;
  const type = ev.kind === 'on' ? ev.type : `xstate.after.${ev.delay}.${id}${site.state ? `.${site.state}` : ''}`;
  return !base.delivered.includes(`${id}|${site.state}|${type}`);
}

export interface Caps {
  /** Stop exploring a mutant after this many worlds in one scenario (undecided). */
  maxStates: number;
  /** Stop exploring a mutant after this long in one scenario (undecided); a backstop, not a verdict. */
  maxMs: number;
}

class Stop extends Error {
  constructor(readonly outcome: { kind: 'killed'; invariant: InvariantName; message: string } | { kind: 'cap'; message: string }) {
    super(outcome.message);
  }
}

/** Explore one scenario with `mutant` swapped in; stop early at the first safety violation the original does not have. */
export function exploreMutant(
  mutant: AnyStateMachine,
  base: Pick<Baseline, 'scenario' | 'violations' | 'waitsWithoutDeadline' | 'fingerprint' | 'states' | 'edges'>,
  caps: Caps,
  /** The site never acts here (siteNeverActs): after the definition checks, the graph is the original's. */
  neverActs = false,
): ScenarioOutcome {
  const t0 = performance.now();
  const known = new Set<string>(base.violations);
  let states = 0;
  const elapsed = () => Math.round(performance.now() - t0);
  try {
    const swapped = withMachine(shippedScenario(base.scenario), mutant);
    // L1 is a property of the definitions: no need to explore to see a wait the mutant left unbounded.
    const before = new Set(base.waitsWithoutDeadline);
    const newWait = l1Findings(swapped).find((f) => !before.has(f));
    if (newWait && !known.has('L1')) return { scenario: base.scenario, kind: 'killed', invariant: 'L1', message: `${newWait} waits with neither a deadline nor local progress`, states: 0, ms: elapsed() };
    if (neverActs) return { scenario: base.scenario, kind: 'clean', same: true, states: base.states, edges: base.edges, ms: elapsed(), skipped: true };

    const visited = new WeakSet<WorldState>();
    const sc: ScenarioDefinition = {
      ...swapped,
      // The graph tool asks for each world's choices once per world (and again per step it takes from
      // it), which makes this the one hook that sees every new world before the traversal goes on.
      choices: (w) => {
        if (!visited.has(w.state)) {
          visited.add(w.state);
          if (++states > caps.maxStates) throw new Stop({ kind: 'cap', message: `more than ${caps.maxStates} worlds` });
          if ((states & 63) === 0 && performance.now() - t0 > caps.maxMs) throw new Stop({ kind: 'cap', message: `more than ${caps.maxMs} ms` });
          const bad = checkState(sc, w.state).find((v) => !known.has(v.name));
          if (bad) throw new Stop({ kind: 'killed', invariant: bad.name, message: bad.message });
        }
        return swapped.choices(w);
      },
    };
    const g = buildGraph(sc);
    const fresh = analyse(g).find((v) => !known.has(v.invariant));
    if (fresh) return { scenario: base.scenario, kind: 'killed', invariant: fresh.invariant, message: fresh.message, states: g.keys.length, ms: elapsed() };
    const edges = g.out.reduce((n, e) => n + e.length, 0);
    return { scenario: base.scenario, kind: 'clean', same: fingerprint(g) === base.fingerprint, states: g.keys.length, edges, ms: elapsed() };
  } catch (err) {
    if (err instanceof Stop) return { scenario: base.scenario, ...err.outcome, states, ms: elapsed() };
    const message = err instanceof Error ? err.message.split('\n')[0]! : String(err);
    return { scenario: base.scenario, kind: 'crash', message, states, ms: elapsed() };
  }
}
