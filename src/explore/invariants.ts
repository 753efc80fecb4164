import type { AnyMachineSnapshot } from 'xstate';
import { TRANSFER_TERMINAL_STATES } from '../../machines/index.js';
import type { ScenarioDefinition, WorldState, WorldView } from './world.js';
import { roleOf, view } from './world.js';

/**
 * Safety invariants S1–S10 (trtllm-domain.md §5) as predicates over one reachable world (`state`) or
 * one edge (`edge`: the world before and after a step). Each returns a message when violated.
 * Liveness (L1–L5) is checked over the whole graph in liveness.ts.
 */
export type SafetyName = 'S1' | 'S2' | 'S3' | 'S4' | 'S5' | 'S6' | 'S7' | 'S8' | 'S9' | 'S10';
export type LivenessName = 'L1' | 'L2' | 'L3' | 'L4' | 'L5';
export type InvariantName = SafetyName | LivenessName;

export interface SafetyInvariant {
  name: SafetyName;
  title: string;
  state?(w: WorldView, sc: ScenarioDefinition): string | null;
  edge?(before: WorldView, after: WorldState, sc: ScenarioDefinition): string | null;
}

function actorsWithRole(w: WorldView, role: string): Array<[string, AnyMachineSnapshot]> {
  return Object.entries(w.state.actors).filter(([n]) => roleOf(n) === role);
}

const topLevel = (s: AnyMachineSnapshot): string => (typeof s.value === 'string' ? s.value : Object.keys(s.value as object)[0]!);
const leafIs = (s: AnyMachineSnapshot, leaf: string): boolean => JSON.stringify(s.value).includes(`"${leaf}"`);

/** The side of a request (contextSend or generationReceive), if spawned. */
function sides(w: WorldView): Array<[string, AnyMachineSnapshot]> {
  return [...actorsWithRole(w, 'send'), ...actorsWithRole(w, 'recv')];
}

/** Actor states in which a transfer of the request can still touch its memory. */
const TRANSMITTING: ReadonlyArray<[string, unknown]> = [
  ['send', { sender: 'sending' }],
  ['send', { sender: 'cancellingTransfers' }],
  ['recv', { worker: 'awaitingReady' }],
  ['recv', { worker: 'receiving' }],
  ['handle', 'inProgress'],
  ['handle', 'draining'],
  ['handle', 'releaseRefused'],
];

export const SAFETY: readonly SafetyInvariant[] = [
  {
    name: 'S1',
    title: 'strong ownership while referenced: a request is released only after every actor that can reach it has finished',
    state(w) {
      for (const [name, lc] of actorsWithRole(w, 'lifecycle')) {
        if (!leafIs(lc, 'released')) continue;
        const req = name.slice(0, -'.lifecycle'.length);
        for (const role of ['send', 'recv', 'handle']) {
          const a = w.actor(`${req}.${role}`);
          if (a && a.status !== 'done') return `${req} released while ${req}.${role} is still ${JSON.stringify(a.value)}`;
        }
      }
      return null;
    },
  },
  {
    name: 'S2',
    title: 'exactly-once completion: every promise is fulfilled once, with a value or an explicit error, never abandoned',
    state(w) {
      for (const [name, s] of sides(w)) if (s.context.promise === 'broken') return `${name}: promise destroyed unfulfilled (Broken promise)`;
      for (const [k, v] of Object.entries(w.env)) if (k.endsWith('reports') && Number(v) > 1) return `${k}: outcome reported ${v} times`;
      return null;
    },
  },
  {
    name: 'S3',
    title: 'publish after local quiescence: a future is observable only once the worker holds nothing of the request',
    state(w) {
      for (const [name, s] of sides(w)) {
        if (!s.matches({ future: 'observed' } as never)) continue;
        const c = s.context as Record<string, unknown>;
        if (roleOf(name) === 'send') {
          const held = ['inReadyMap', 'cancelMarked', 'isCurrent', 'sessionOpen'].filter((k) => c[k] === true);
          if (held.length > 0 || !s.matches({ sender: 'finished' } as never)) {
            return `${name}: future observed while the sender still holds ${held.join(', ') || 'its worker step'} (${JSON.stringify(s.value)})`;
          }
        } else if (!s.matches({ worker: 'done' } as never) || c.slot === 'held') {
          return `${name}: future observed while the receiver still holds the request (${JSON.stringify(s.value)})`;
        }
      }
      return null;
    },
  },
  {
    name: 'S4',
    title: 'no free during transmission: blocks return to the pool only once their owner has finished with them',
    state(w, sc) {
      for (const l of sc.facts.leases) {
        const lease = w.actor(l.name);
        if (!lease || !lease.matches('free' as never) || lease.context.epoch === 0) continue;
        if (!l.ownerFinished(w)) return `${l.name} returned to the pool while its owner still uses it`;
        const busy = TRANSMITTING.find(([role, state]) => w.actor(`${l.request}.${role}`)?.matches(state as never));
        if (busy) return `${l.name} returned to the pool while ${l.request}.${busy[0]} is still ${JSON.stringify(busy[1])}`;
      }
      return null;
    },
  },
  {
    name: 'S5',
    title: 'remote-write fencing: memory ever advertised to a transfer is reused only when no write can still land',
    state(w, sc) {
      for (const l of sc.facts.leases) {
        const lease = w.actor(l.name);
        if (lease && lease.matches('free' as never) && lease.context.epoch > 0 && l.touched(w)) return `${l.name} is reusable while a transfer can still write into it`;
      }
      return null;
    },
  },
  {
    name: 'S6',
    title: 'handle release is not quiescence: released exactly once, and "quiesced" only with proof',
    state(w) {
      if (w.env.doubleRelease === true) return 'a transfer handle was released twice';
      for (const [name, h] of actorsWithRole(w, 'handle')) {
        const out = h.output as { quiesced?: boolean } | undefined;
        if (h.status === 'done' && out?.quiesced && (w.env.xfer === 'inflight' || w.env.xfer === 'orphaned')) return `${name} reported quiesced while the backend still moves its bytes`;
      }
      return null;
    },
  },
  {
    name: 'S7',
    title: 'tri-state wait: a wait that ended without the notification is never success',
    state(w, sc) {
      if (!sc.facts.dataArrived) return null;
      for (const [name, s] of actorsWithRole(w, 'recv')) {
        const req = name.slice(0, -'.recv'.length);
        if (s.context.outcome === 'succeeded' && !sc.facts.dataArrived(w, req)) return `${name} succeeded although the sync notification never arrived`;
      }
      return null;
    },
  },
  {
    name: 'S8',
    title: 'absorbing terminal states: once 22, 12 or -1, no later event moves the request back or overwrites the error',
    edge(before, after) {
      const allowed: Record<string, string[]> = {
        DISAGG_GENERATION_TRANS_COMPLETE: ['GENERATION_IN_PROGRESS', 'GENERATION_COMPLETE'],
        GENERATION_IN_PROGRESS: ['GENERATION_COMPLETE'],
      };
      for (const [name, prev] of actorsWithRole(before, 'lifecycle')) {
        const next = after.actors[name];
        if (!next) continue;
        const from = topLevel(prev);
        const to = topLevel(next);
        if (from === to || !(TRANSFER_TERMINAL_STATES as readonly string[]).includes(from)) continue;
        // Decoding from blocks that failed the served-bytes check ends in error (reason 'corrupted').
        const servedCorrupt = from === 'GENERATION_IN_PROGRESS' && to === 'DISAGG_TRANS_ERROR' && (next.context as { errorReason?: string }).errorReason === 'corrupted';
        if (!(allowed[from] ?? []).includes(to) && !servedCorrupt) return `${name}: ${from} overwritten by ${to}`;
      }
      return null;
    },
  },
  {
    name: 'S9',
    title: 'balanced acquire and release: every receive slot a request acquired is handed back exactly once',
    state(w) {
      for (const [k, v] of Object.entries(w.env)) if (k.endsWith('slotReleases') && Number(v) > 1) return `${k}: slot handed back ${v} times`;
      for (const [name, s] of actorsWithRole(w, 'recv')) {
        if (s.matches({ worker: 'done' } as never) && s.context.slot === 'held') return `${name} finished still holding its receive slot`;
      }
      return null;
    },
  },
  {
    name: 'S10',
    title: 'rank-consistent transitions: request state changes only on executor steps (agreed status sets, deadlines, cancels), never from a worker or peer thread',
    edge(before, after) {
      const label = after.last?.label ?? '';
      const executorStep = /^(executor|checker|user):/.test(label) || /^deadline [^ ]*lifecycle/.test(label);
      if (executorStep) return null;
      for (const [name, prev] of actorsWithRole(before, 'lifecycle')) {
        const next = after.actors[name];
        if (next && topLevel(next) !== topLevel(prev)) return `${name} moved ${topLevel(prev)} → ${topLevel(next)} on "${label}"`;
      }
      return null;
    },
  },
];

export function checkState(sc: ScenarioDefinition, state: WorldState): Array<{ name: SafetyName; message: string }> {
  const w = view(state);
  const out: Array<{ name: SafetyName; message: string }> = [];
  for (const inv of SAFETY) {
    const m = inv.state?.(w, sc);
    if (m) out.push({ name: inv.name, message: m });
  }
  return out;
}

export function checkEdge(sc: ScenarioDefinition, before: WorldState, after: WorldState): Array<{ name: SafetyName; message: string }> {
  const w = view(before);
  const out: Array<{ name: SafetyName; message: string }> = [];
  for (const inv of SAFETY) {
    const m = inv.edge?.(w, after, sc);
    if (m) out.push({ name: inv.name, message: m });
  }
  return out;
}
