import type { ComposedConfig, ComposedState } from '../explore/composed.js';
import { ComposedWorld } from '../explore/composed.js';
import type { ExploreHooks } from '../explore/composedExplorer.js';
import { exploreComposed } from '../explore/composedExplorer.js';

/**
 * A second, less brittle equivalence: strong bisimilarity of two complete explored graphs, where a
 * world is seen only through what the consequence invariants read, and a step only through its label.
 *
 * Observation of a world (the ground truth of docs/invariants.md): messages on both control channels
 * and the notification channel, every native transfer (remote, phase, landed, released, abort asked),
 * every generation block (owner and whose bytes each chunk holds), the leases and allocation epochs,
 * the outcomes reported and cancels counted, the fault budget, which process is dead, what is not at
 * rest (M4's list: it names lease states, admission holders and stored early info), which requests
 * decode (M2), and each request lifecycle's top-level state (S8 reads it). Hidden: every other machine
 * state and context, and the armed deadlines (a deadline shows as the step that fires it).
 *
 * Step labels are the explorer's (network, backend, user, loop steps, deadlines), with the machine
 * state a deadline was armed in cut off: `deadline c:r1.send: kvTransferTimeout in sender.queued` is
 * `deadline c:r1.send: kvTransferTimeout`. Local and environment steps keep their labels, so L2 and M5
 * (which read the local steps) see the same in bisimilar graphs.
 *
 * Both graphs are explored without partial-order reduction and without handle symmetry, so the graphs
 * compared are the full transition systems within the bounds (a reduced graph is a function of the
 * machines' hidden states and would not be a sound thing to compare). A mutant whose graph is
 * bisimilar to the original's cannot be told apart from it by any check that reads only these
 * observations and steps, at these bounds: no consequence invariant can kill it there.
 */

export interface ObservedGraph {
  /** Observation id per world (interned in the shared table). */
  obs: number[];
  from: number[];
  label: number[];
  to: number[];
  states: number;
  truncated: boolean;
}

/** Interning shared by the two graphs compared (ids must mean the same on both sides). */
export class Interner {
  private readonly m = new Map<string, number>();
  id(s: string): number {
    let n = this.m.get(s);
    if (n === undefined) this.m.set(s, (n = this.m.size));
    return n;
  }
}

// The actor's address holds a colon (`c:r1.send`): the label is `deadline <address>: <delay> in <state>`.
const DEADLINE = /^(deadline \S+: \S+) in .*$/;
export const observedLabel = (l: string): string => l.replace(DEADLINE, '$1');

export function observation(w: ComposedWorld, s: ComposedState): string {
  const lifecycles: string[] = [];
  for (const k of Object.keys(s.actors).sort()) {
    if (!k.endsWith('.lifecycle')) continue;
    const a = s.actors[k]!;
    const v = typeof a.value === 'string' ? a.value : Object.keys(a.value as object)[0]!;
    lifecycles.push(`${k}=${a.status}:${v}`);
  }
  const nat = Object.keys(s.nat)
    .sort()
    .map((k) => [k, s.nat[k]]);
  return JSON.stringify([s.toCtx, s.toGen, s.notifs, nat, s.blocks, s.leases, s.allocSeq, s.reports, s.cancelsSent, s.budget, s.dead, w.restProblems(s, true), lifecycles, s.violation]);
}

/** Hooks that keep the observed graph of an exploration (call `graph` after it). */
export class GraphObserver {
  private readonly g: ObservedGraph = { obs: [], from: [], label: [], to: [], states: 0, truncated: false };
  private readonly violationNode = new Map<string, number>();
  private readonly world: ComposedWorld;
  readonly hooks: ExploreHooks;

  constructor(cfg: ComposedConfig, private readonly intern: Interner) {
    this.world = new ComposedWorld(cfg);
    this.hooks = {
      onWorld: (s, id) => void (this.g.obs[id] = intern.id(observation(this.world, s))),
      onEdge: (from, label, to) => {
        if (to === 'cut') return;
        let t: number;
        if (typeof to === 'string') {
          // A step into a violation: a sink observed as that violation (one per invariant).
          const v = this.violationNode.get(to);
          if (v === undefined) this.violationNode.set(to, (t = -1 - this.violationNode.size));
          else t = v;
        } else t = to;
        this.g.from.push(from);
        this.g.label.push(intern.id(observedLabel(label)));
        this.g.to.push(t);
      },
    };
  }

  graph(states: number, truncated: boolean): ObservedGraph {
    const g = this.g;
    // Violation sinks become nodes after the worlds.
    for (const [name, v] of this.violationNode) g.obs[states + (-1 - v)] = this.intern.id(`violation ${name}`);
    for (let i = 0; i < g.to.length; i++) if (g.to[i]! < 0) g.to[i] = states + (-1 - g.to[i]!);
    g.states = states + this.violationNode.size;
    g.truncated = truncated;
    return g;
  }
}

/** The exploration options under which graphs are compared: no partial-order reduction, no handle symmetry. */
export const FULL_GRAPH = { reduce: false, symmetry: false } as const;

/** Explore `cfg` completely (up to maxStates) without reduction or symmetry, keeping the observed graph. */
export function observedGraph(cfg: ComposedConfig, maxStates: number, intern: Interner): ObservedGraph {
  const o = new GraphObserver(cfg, intern);
  // M7 is a check of its own, not part of the graph.
  const r = exploreComposed(cfg, { scenario: 'bisim', variant: 'x' }, { maxStates, ...FULL_GRAPH, walks: 0, promptRun: false, hooks: o.hooks });
  return o.graph(r.states, r.truncated);
}

/**
 * Whether the initial worlds of `a` and `b` are strongly bisimilar (partition refinement over the
 * disjoint union: start from the observation classes, split by the set of (label, class of target)
 * until nothing splits).
 */
export function bisimilar(a: ObservedGraph, b: ObservedGraph): boolean {
  const n = a.states + b.states;
  const off = a.states;
  const obs = new Int32Array(n);
  for (let i = 0; i < a.states; i++) obs[i] = a.obs[i]!;
  for (let i = 0; i < b.states; i++) obs[off + i] = b.obs[i]!;
  // Adjacency (CSR) of the union.
  const from: number[] = [...a.from, ...b.from.map((x) => x + off)];
  const to: number[] = [...a.to, ...b.to.map((x) => x + off)];
  const label: number[] = [...a.label, ...b.label];
  const start = new Int32Array(n + 1);
  for (const f of from) start[f + 1]!++;
  for (let i = 0; i < n; i++) start[i + 1]! += start[i]!;
  const fill = start.slice(0, n);
  const eTo = new Int32Array(from.length);
  const eLabel = new Int32Array(from.length);
  for (let i = 0; i < from.length; i++) {
    const p = fill[from[i]!]!++;
    eTo[p] = to[i]!;
    eLabel[p] = label[i]!;
  }
  let block = obs;
  let count = new Set(obs).size;
  for (;;) {
    const sigs = new Map<string, number>();
    const next = new Int32Array(n);
    for (let v = 0; v < n; v++) {
      const pairs: number[] = [];
      for (let e = start[v]!; e < start[v + 1]!; e++) pairs.push(eLabel[e]! * 0x100000 + block[eTo[e]!]!);
      pairs.sort((x, y) => x - y);
      let sig = `${block[v]}:`;
      let prev = -1;
      for (const p of pairs) if (p !== prev) (sig += `${p},`), (prev = p);
      let id = sigs.get(sig);
      if (id === undefined) sigs.set(sig, (id = sigs.size));
      next[v] = id;
    }
    block = next;
    if (sigs.size === count) break;
    count = sigs.size;
  }
  return block[0] === block[off];
}
