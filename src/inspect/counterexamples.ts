import type { AnyStateMachine } from 'xstate';
import { REGRESSION_VARIANTS } from '../../machines/index.js';
import type { Combination } from '../explore/catalog.js';
import { scenarioFor, VARIANT_PLAN } from '../explore/catalog.js';
import { exploreCombination } from '../explore/explorer.js';
import type { WorldState } from '../explore/world.js';
import { initialWorld, roleOf, step, valueKey } from '../explore/world.js';
import { activeStateIds } from './dot.js';
import { diagramEntries, PRODUCTION_MACHINES } from './diagrams.js';

/** One regression variant explored in one scenario: what the page offers to step through. */
export interface CounterexampleCombination {
  scenario: string;
  variant: string;
  bugClass: string;
  summary: string;
  /** The invariants its counterexample must break. */
  expect: string[];
}

/** Every actor's state after one step of a counterexample. */
export interface CounterexampleFrame {
  /** The step taken to reach this frame; null for the start. */
  label: string | null;
  actors: Record<string, { machineId: string; diagram: string; value: unknown; state: string; status: string; activeIds: string[] }>;
  /** Actors whose state changed in this step. */
  changed: string[];
}

export interface ReplayedViolation {
  invariant: string;
  message: string;
  path: string[];
  frames: CounterexampleFrame[];
  /** Set when a path step is not an explorer step (e.g. L1 names a state without a deadline) or did not replay. */
  note?: string;
}

export interface CounterexampleResult extends CounterexampleCombination {
  states: number;
  edges: number;
  ms: number;
  violations: ReplayedViolation[];
}

/** The combinations the explorer runs for regression variants (cheap: no exploration). */
export function counterexampleCatalog(): CounterexampleCombination[] {
  const out: CounterexampleCombination[] = [];
  for (const [variant, plan] of Object.entries(VARIANT_PLAN)) {
    const v = REGRESSION_VARIANTS.find((x) => x.name === variant);
    for (const scenario of plan.scenarios) out.push({ scenario, variant, bugClass: v?.bugClass ?? '', summary: v?.summary ?? '', expect: [...plan.expect] });
  }
  return out;
}

/** The inspector diagram key for a machine: a production machine's id, else `variant.<name>`. */
export function diagramKeyOf(machine: AnyStateMachine): string {
  if (PRODUCTION_MACHINES.includes(machine)) return machine.id;
  const e = diagramEntries({ variants: true }).find((x) => x.machine === machine);
  return e ? e.key : machine.id;
}

/** Replay a counterexample path with the explorer's own `step()`, recording every actor after each step. */
export function replayPath(c: Combination, path: string[]): { frames: CounterexampleFrame[]; note?: string } {
  const scenario = scenarioFor(c);
  const roleMachine = (actor: string): AnyStateMachine | undefined => scenario.machines[roleOf(actor)];
  const frame = (w: WorldState, label: string | null, prev: CounterexampleFrame | null): CounterexampleFrame => {
    const actors: CounterexampleFrame['actors'] = {};
    for (const [name, snap] of Object.entries(w.actors)) {
      const m = roleMachine(name);
      actors[name] = {
        machineId: m?.id ?? '?',
        diagram: m ? diagramKeyOf(m) : '?',
        value: snap.value,
        state: valueKey(snap),
        status: snap.status,
        activeIds: m ? activeStateIds(m, snap.value) : [],
      };
    }
    const changed = Object.keys(actors).filter((n) => !prev || prev.actors[n]?.state !== actors[n]!.state || prev.actors[n]?.status !== actors[n]!.status);
    return { label, actors, changed };
  };
  let world = initialWorld(scenario);
  const frames = [frame(world, null, null)];
  for (const label of path) {
    try {
      world = step(scenario, world, label);
    } catch (e) {
      return { frames, note: `'${label}' is not an explorer step (${(e as Error).message}); shown up to the step before` };
    }
    frames.push(frame(world, label, frames[frames.length - 1]!));
  }
  return { frames };
}

/** Explore one combination and replay each violation's shortest counterexample. */
export function computeCounterexamples(c: Combination): CounterexampleResult {
  const meta = counterexampleCatalog().find((x) => x.scenario === c.scenario && x.variant === c.variant);
  if (!meta) throw new Error(`no regression variant '${c.variant}' planned in scenario '${c.scenario}'`);
  const r = exploreCombination(c);
  return {
    ...meta,
    states: r.states,
    edges: r.edges,
    ms: r.ms,
    violations: r.violations.map((v) => ({ invariant: v.invariant, message: v.message, path: v.path, ...replayPath(c, v.path) })),
  };
}
