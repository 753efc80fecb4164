import type { AnyStateMachine, StateValue } from 'xstate';
import type { ExploredGraph } from './explorer.js';
import { atomicStates, handledPairs } from './liveness.js';
import { roleOf } from './world.js';

/**
 * Which states and which (state, event) transitions of each machine the explored orderings exercised.
 * A transition counts when an explored step delivered that event to an actor in that state and the
 * state handles it (taken or guarded out); timers count as their `after` event.
 */
export interface MachineCoverage {
  machine: string;
  states: { covered: number; total: number; missing: string[] };
  transitions: { covered: number; total: number; missing: string[] };
}

export function leafIds(machineId: string, value: StateValue, prefix = machineId): string[] {
  if (typeof value === 'string') return [`${prefix}.${value}`];
  return Object.entries(value).flatMap(([k, v]) => (v === undefined ? [`${prefix}.${k}`] : leafIds(machineId, v as StateValue, `${prefix}.${k}`)));
}

export function coverage(machines: AnyStateMachine[], graphs: ExploredGraph[]): MachineCoverage[] {
  const seenStates = new Map<string, Set<string>>();
  const seenPairs = new Map<string, Set<string>>();
  for (const g of graphs) {
    for (const w of g.worlds) {
      for (const [actor, s] of Object.entries(w.actors)) {
        const m = g.scenario.machines[roleOf(actor)];
        if (!m) continue;
        const set = seenStates.get(m.id) ?? seenStates.set(m.id, new Set()).get(m.id)!;
        for (const id of leafIds(m.id, s.value as StateValue)) set.add(id);
      }
    }
    for (const edges of g.out) {
      for (const e of edges) {
        for (const t of e.after.last?.transitions ?? []) {
          const m = g.scenario.machines[roleOf(t.actor)];
          if (!m || t.from === null) continue;
          const set = seenPairs.get(m.id) ?? seenPairs.set(m.id, new Set()).get(m.id)!;
          const from = t.from.startsWith('{') ? (JSON.parse(t.from) as StateValue) : t.from;
          for (const id of leafIds(m.id, from)) set.add(`${id} ${t.event}`);
        }
      }
    }
  }
  return machines.map((m) => {
    const states = atomicStates(m);
    const pairs = handledPairs(m).map((p) => `${p.state} ${p.event}`);
    const sSeen = seenStates.get(m.id) ?? new Set();
    const pSeen = seenPairs.get(m.id) ?? new Set();
    const short = (x: string) => x.slice(m.id.length + 1);
    return {
      machine: m.id,
      states: { covered: states.filter((s) => sSeen.has(s)).length, total: states.length, missing: states.filter((s) => !sSeen.has(s)).map(short) },
      transitions: { covered: pairs.filter((p) => pSeen.has(p)).length, total: pairs.length, missing: pairs.filter((p) => !pSeen.has(p)).map(short) },
    };
  });
}
