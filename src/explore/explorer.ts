import { getAdjacencyMap } from '@xstate/graph';
import type { AnyStateMachine } from 'xstate';
import type { Combination } from './catalog.js';
import { scenarioFor } from './catalog.js';
import type { InvariantName } from './invariants.js';
import { checkEdge, checkState } from './invariants.js';
import { statesWithoutDeadline } from './liveness.js';
import type { ChoiceEvent } from './logic.js';
import { worldEvents, worldLogic } from './logic.js';
import type { ScenarioDefinition, WorldState } from './world.js';
import { serializeWorld, view } from './world.js';

export interface Violation {
  invariant: InvariantName;
  message: string;
  /** The shortest sequence of steps from the start that exhibits it. */
  path: string[];
}

export interface ExploreResult {
  scenario: string;
  variant: string;
  shipped: boolean;
  states: number;
  edges: number;
  ms: number;
  violations: Violation[];
}

/** The explored graph of one combination, indexed for analysis and for test generation. */
export interface ExploredGraph {
  scenario: ScenarioDefinition;
  keys: string[];
  worlds: WorldState[];
  /** Outgoing edges per node index. */
  out: Array<Array<{ to: number; label: string; local: boolean; request?: string; after: WorldState }>>;
  /** BFS parent (node index, label) per node; the root has none. */
  parent: Array<{ from: number; label: string } | null>;
  depth: number[];
}

export function buildGraph(scenario: ScenarioDefinition): ExploredGraph {
  const logic = worldLogic(scenario);
  const adj: Record<string, { state: unknown; transitions: Record<string, { event: unknown; state: unknown }> }> = getAdjacencyMap(logic, {
    events: worldEvents(scenario) as never,
    serializeState: (s) => serializeWorld((s as unknown as { context: WorldState }).context),
  }) as never;
  const keys = Object.keys(adj);
  const index = new Map(keys.map((k, i) => [k, i]));
  const worlds = keys.map((k) => (adj[k]!.state as unknown as { context: WorldState }).context);
  const out = keys.map((k) =>
    Object.values(adj[k]!.transitions).map((t) => {
      const after = (t.state as unknown as { context: WorldState }).context;
      const to = index.get(serializeWorld(after));
      if (to === undefined) throw new Error('edge to an unexplored world');
      const last = after.last!;
      return { to, label: (t.event as ChoiceEvent).type, local: last.kind === 'local', request: last.request, after };
    }),
  );
  // BFS from the start for shortest counterexamples.
  const parent: ExploredGraph['parent'] = keys.map(() => null);
  const depth = keys.map(() => -1);
  depth[0] = 0;
  const queue = [0];
  for (let qi = 0; qi < queue.length; qi++) {
    const n = queue[qi]!;
    for (const e of out[n]!) {
      if (depth[e.to] !== -1) continue;
      depth[e.to] = depth[n]! + 1;
      parent[e.to] = { from: n, label: e.label };
      queue.push(e.to);
    }
  }
  return { scenario, keys, worlds, out, parent, depth };
}

export function pathTo(g: ExploredGraph, node: number): string[] {
  const labels: string[] = [];
  for (let p = g.parent[node]; p; p = g.parent[p.from]) labels.push(p.label);
  return labels.reverse();
}

/** Nodes from which some node satisfying `target` is reachable using only edges accepted by `use`. */
function canReach(g: ExploredGraph, target: (i: number) => boolean, use: (e: ExploredGraph['out'][number][number]) => boolean): Uint8Array {
  const n = g.keys.length;
  const incoming: number[][] = Array.from({ length: n }, () => []);
  g.out.forEach((edges, from) => edges.forEach((e) => use(e) && incoming[e.to]!.push(from)));
  const ok = new Uint8Array(n);
  const queue: number[] = [];
  for (let i = 0; i < n; i++) if (target(i)) (ok[i] = 1), queue.push(i);
  for (let qi = 0; qi < queue.length; qi++) for (const p of incoming[queue[qi]!]!) if (!ok[p]) (ok[p] = 1), queue.push(p);
  return ok;
}

/** The violating node closest to the start. */
function shallowest(g: ExploredGraph, bad: (i: number) => boolean): number | null {
  let best: number | null = null;
  for (let i = 0; i < g.keys.length; i++) if (bad(i) && g.depth[i]! >= 0 && (best === null || g.depth[i]! < g.depth[best]!)) best = i;
  return best;
}

export function analyse(g: ExploredGraph): Violation[] {
  const sc = g.scenario;
  const found = new Map<InvariantName, Violation>();
  const keep = (v: Violation) => {
    const prev = found.get(v.invariant);
    if (!prev || v.path.length < prev.path.length) found.set(v.invariant, v);
  };

  // Safety on every reachable world and every edge.
  g.worlds.forEach((w, i) => {
    for (const v of checkState(sc, w)) keep({ invariant: v.name, message: v.message, path: pathTo(g, i) });
    for (const e of g.out[i]!) for (const v of checkEdge(sc, w, e.after)) keep({ invariant: v.name, message: v.message, path: [...pathTo(g, i), e.label] });
  });

  // L1: every waiting state of every machine in the scenario has a deadline or local progress.
  const machines = new Set<AnyStateMachine>(Object.values(sc.machines));
  for (const m of machines) {
    for (const w of statesWithoutDeadline(m)) keep({ invariant: 'L1', message: `${w.state} ${w.reason}`, path: [`${w.machine}: ${w.state}`] });
  }

  const settled = (i: number) => sc.isSettled(view(g.worlds[i]!));
  const localOnly = (e: { local: boolean }) => e.local;

  // L2: from every reachable world the executor alone (deadlines, worker steps, polls) settles everything.
  const l2 = canReach(g, settled, localOnly);
  const l2bad = shallowest(g, (i) => !l2[i]);
  if (l2bad !== null) keep({ invariant: 'L2', message: 'from here no sequence of the executor\'s own steps settles every request: it waits on a peer forever', path: pathTo(g, l2bad) });

  // L3: a requested cancel is resolved (the side publishes its outcome) by local steps alone.
  const cancelRequested = (w: WorldState) => w.env.userCancelled === true || w.env.ownerCancelled === true || Object.entries(w.actors).some(([n, s]) => n.endsWith('.lifecycle') && (s.context as { errorReason: string }).errorReason !== 'none');
  const resolved = (i: number) => {
    const w = g.worlds[i]!;
    return Object.entries(w.actors).every(([n, s]) => {
      if (n.endsWith('.send') || n.endsWith('.recv')) return s.context.promise !== 'pending';
      if (n.endsWith('.handle')) return s.status === 'done';
      return true;
    });
  };
  const l3 = canReach(g, resolved, localOnly);
  const l3bad = shallowest(g, (i) => cancelRequested(g.worlds[i]!) && !l3[i]);
  if (l3bad !== null) keep({ invariant: 'L3', message: 'a cancel was requested but no sequence of local steps resolves it', path: pathTo(g, l3bad) });

  // L4: each request is cleaned up by its own and global steps, whatever the other requests do.
  for (const req of sc.facts.requests) {
    const mine = canReach(g, (i) => sc.facts.requestSettled(view(g.worlds[i]!), req), (e) => e.local && (e.request === undefined || e.request === req));
    const bad = shallowest(g, (i) => !mine[i]);
    if (bad !== null) keep({ invariant: 'L4', message: `request ${req} cannot be cleaned up without other work progressing`, path: pathTo(g, bad) });
  }

  // L5: no world in which nothing can happen any more still holds a resource of a finished owner.
  const leaked = (i: number) => {
    const w = view(g.worlds[i]!);
    return sc.facts.leases.some((l) => l.ownerFinished(w) && !(w.in(l.name, 'free') || w.done(l.name)) && !w.in(l.name, 'quarantined') && !w.in(l.name, 'fencing'));
  };
  const l5bad = shallowest(g, (i) => g.out[i]!.every((e) => !e.local) && leaked(i));
  if (l5bad !== null) keep({ invariant: 'L5', message: 'a resource whose owner finished is held forever (leaked slot or blocks)', path: pathTo(g, l5bad) });

  return [...found.values()].sort((a, b) => a.invariant.localeCompare(b.invariant, 'en', { numeric: true }));
}

export function exploreCombination(c: Combination, keep?: (g: ExploredGraph) => void): ExploreResult {
  const t0 = performance.now();
  const g = buildGraph(scenarioFor(c));
  const violations = analyse(g);
  const ms = performance.now() - t0;
  const edges = g.out.reduce((n, e) => n + e.length, 0);
  keep?.(g);
  return { scenario: c.scenario, variant: c.variant, shipped: c.variant === 'shipped', states: g.keys.length, edges, ms: Math.round(ms), violations };
}
