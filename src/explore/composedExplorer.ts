import type { AnyMachineSnapshot } from 'xstate';
import { TRANSFER_TERMINAL_STATES } from '../../machines/index.js';
import type { Bounds, ComposedConfig, ComposedState } from './composed.js';
import { ComposedWorld, stateKey, symmetricKey } from './composed.js';
import type { InvariantKind } from './invariantCatalog.js';
import { leafIds } from './coverage.js';
import { checkPromptRun } from './promptRun.js';
import { falseSuccess } from './reportedSuccess.js';
import { needlessRetirement } from './needlessRetirement.js';
import { causeMismatch } from './failureCause.js';
import { notReadyAfterWrite } from './signalContract.js';
import { untrueTransferFailure } from './failureTruth.js';
import { unsettledFutures } from './futureSettled.js';
import { cancelNotAsked } from './cancelReachesBackend.js';

/**
 * Breadth-first exploration of the composed world. States are identified by a compact key; a world
 * that broke a consequence invariant is reported (shortest path first, by BFS) and not expanded.
 * After the search, liveness and rest conditions are checked over the graph of local steps:
 * - L2: from every reachable world, the executors' own steps (deadlines, loop steps) settle everything;
 * - M4/M3 at rest: a world with no local step left holds nothing and every request has its outcome;
 * - M5: no cycle of local steps (a retry loop that never ends).
 */
export interface ComposedViolation {
  invariant: string;
  kind: InvariantKind;
  message: string;
  path: string[];
}

export interface ComposedResult {
  scenario: string;
  variant: string;
  shipped: boolean;
  composed: true;
  bounds: Bounds;
  backend: string;
  states: number;
  edges: number;
  ms: number;
  /** Of `ms`, the breadth-first search and its graph checks (without the random walks): states/s = states / searchMs. */
  searchMs: number;
  /** The search stopped at maxStates: what was explored is sound, but not every world was reached. */
  truncated: boolean;
  /**
   * Every world within this many steps of the start (in the reduced graph) was found and checked, and
   * every step out of a world closer than that was taken: the search is exhaustive to this depth.
   * null when not truncated (exhaustive within the bounds).
   */
  exhaustiveDepth: number | null;
  /** Worlds from which only one silent step was explored (partial-order reduction). */
  reducedStates: number;
  /** Steps taken by random walks beyond the breadth-first budget (0 when the search was exhaustive). */
  walkedSteps: number;
  /** Worlds of the prompt runs explored for M7 (0 when not checked), and how long that took (part of `ms`). */
  promptStates: number;
  promptMs: number;
  violations: ComposedViolation[];
  /** Machine transitions (machine, from-leaf, event) seen, for coverage. */
  seenPairs?: Set<string>;
}

export interface ExploreOptions {
  maxStates?: number;
  /** Take silent local steps eagerly (an ample set of one); false explores every interleaving. */
  reduce?: boolean;
  /** Record coverage pairs (costs a little). */
  coverage?: boolean;
  /** When the breadth-first budget ran out: this many seeded random walks go deeper (they find, they do not prove). */
  walks?: number;
  walkLength?: number;
  /** Check M7 (no spurious failure) over the fault-free prompt runs first (default true; src/explore/promptRun.ts). */
  promptRun?: boolean;
  /** Worlds M7's depth-first prompt search explores at most (default 10,000: the default explore stays near a minute). */
  promptMaxStates?: number;
  /** Observers of the search (the mutation runner's digest and early stop); they may throw to stop it. */
  hooks?: ExploreHooks;
  /** Identify worlds that differ only by a renaming of handle indices (symmetricKey); default true. */
  symmetry?: boolean;
}

/**
 * Optional observers of a composed search, called in breadth-first order. Additive: the search is the
 * same with or without them. A hook that throws ends the search with that exception.
 */
export interface ExploreHooks {
  /** A world seen for the first time (the initial world is 0). */
  onWorld?(s: ComposedState, id: number): void;
  /** An explored edge: to a world's id, or `!<invariant>` into a violation, or `cut` past the state budget. */
  onEdge?(from: number, label: string, to: number | string): void;
  /** A violation as it is found (before the shortest of each invariant is kept). */
  onViolation?(v: ComposedViolation): void;
}

const topLevel = (s: AnyMachineSnapshot): string => (typeof s.value === 'string' ? s.value : Object.keys(s.value as object)[0]!);

/** S8's one exception: decoding ends in error when the served blocks failed verification (reason 'corrupted'). */
const servedCorruption = (from: string, to: AnyMachineSnapshot): boolean =>
  from === 'GENERATION_IN_PROGRESS' && topLevel(to) === 'DISAGG_TRANS_ERROR' && (to.context as { errorReason?: string }).errorReason === 'corrupted';

/** Design rules (flags and state names, documented in docs/invariants.md), checked on every edge: S3 and S8. */
function designRules(before: ComposedState, after: ComposedState): { id: string; message: string } | null {
  for (const [k, a] of Object.entries(after.actors)) {
    const role = k.slice(k.lastIndexOf('.') + 1);
    // S3 (the catalog's composed design rule; the one-sided check of src/explore/invariants.ts): the
    // step that lets the status checker observe a future finds the worker holding nothing of it.
    if ((role === 'send' || role === 'recv') && a.matches({ future: 'observed' } as never) && !before.actors[k]?.matches({ future: 'observed' } as never)) {
      const c = a.context as Record<string, unknown>;
      if (role === 'send') {
        const held = ['inReadyMap', 'cancelMarked', 'isCurrent', 'sessionOpen'].filter((f) => c[f] === true);
        if (held.length > 0 || !a.matches({ sender: 'finished' } as never)) return { id: 'S3', message: `${k}: future observed while the sender still holds ${held.join(', ') || 'its worker step'}` };
      } else if (!a.matches({ worker: 'done' } as never) || c.slot === 'held') return { id: 'S3', message: `${k}: future observed while the receiver still holds the request` };
    }
    // S8: terminal request states are absorbing.
    if (role === 'lifecycle') {
      const prev = before.actors[k];
      if (!prev) continue;
      const from = topLevel(prev);
      const to = topLevel(a);
      const allowed: Record<string, string[]> = { DISAGG_GENERATION_TRANS_COMPLETE: ['GENERATION_IN_PROGRESS', 'GENERATION_COMPLETE'], GENERATION_IN_PROGRESS: ['GENERATION_COMPLETE'] };
      if (from !== to && (TRANSFER_TERMINAL_STATES as readonly string[]).includes(from) && !(allowed[from] ?? []).includes(to) && !servedCorruption(from, a)) return { id: 'S8', message: `${k}: ${from} overwritten by ${to}` };
    }
  }
  return null;
}

export function exploreComposed(cfg: ComposedConfig, meta: { scenario: string; variant: string }, opts: ExploreOptions = {}): ComposedResult {
  const t0 = performance.now();
  const world = new ComposedWorld(cfg);
  const maxStates = opts.maxStates ?? 2_000_000;
  const keys = new Map<string, number>();
  const handles = cfg.bounds.handlesPerRequest;
  const keyOf = opts.symmetry === false ? stateKey : (x: ComposedState) => symmetricKey(x, handles);
  const parent: number[] = [];
  const label: string[] = [];
  const depth: number[] = [];
  const settled: boolean[] = [];
  // Local edges (for liveness and cycles).
  const lFrom: number[] = [];
  const lTo: number[] = [];
  const found = new Map<string, ComposedViolation>();
  const seenPairs = opts.coverage ? new Set<string>() : undefined;
  let edges = 0;
  let reduced = 0;
  let truncated = false;
  // The least depth of a world one of whose successors was dropped at the state budget.
  let cutDepth = Infinity;

  const pathTo = (n: number): string[] => {
    const out: string[] = [];
    for (let i = n; parent[i]! >= 0; i = parent[i]!) out.push(label[i]!);
    return out.reverse();
  };
  const hooks = opts.hooks ?? {};
  const keep = (v: ComposedViolation) => {
    hooks.onViolation?.(v);
    const prev = found.get(v.invariant);
    if (!prev || v.path.length < prev.path.length) found.set(v.invariant, v);
  };
  const kindOf = (id: string): InvariantKind => (id.startsWith('M') || id === 'L2' ? 'consequence' : 'design-rule');

  const s0 = world.initial();
  keys.set(keyOf(s0), 0);
  parent.push(-1);
  label.push('');
  depth.push(0);
  settled.push(world.settled(s0));
  hooks.onWorld?.(s0, 0);
  // M7 (src/explore/promptRun.ts): its own small search over the fault-free prompt runs.
  let promptStates = 0;
  let promptMs = 0;
  if (opts.promptRun !== false) {
    const tp = performance.now();
    const pr = checkPromptRun(world, opts.promptMaxStates ?? 10_000);
    promptMs = performance.now() - tp;
    promptStates = pr.states;
    if (pr.violation) keep({ kind: 'consequence', ...pr.violation });
  }
  let frontier: ComposedState[] = [s0];
  let frontierIds: number[] = [0];
  while (frontier.length > 0) {
    const nextFrontier: ComposedState[] = [];
    const nextIds: number[] = [];
    for (let fi = 0; fi < frontier.length; fi++) {
      const s = frontier[fi]!;
      const id = frontierIds[fi]!;
      let choices = world.choices(s);
      let applied: Array<ReturnType<typeof world.apply> | undefined> = [];
      // Partial-order reduction: a silent local step (one actor changes; no effect, no deadline, no
      // message, no memory) is explored alone from here — unless its successor was already seen (the
      // cycle proviso: then every choice is expanded). It is invisible to every invariant, but it is
      // not independent of everything: a delivery to the same actor may not commute with it. So the
      // reduction is checked, not assumed: test/explore/composed.test.ts compares it with the full
      // search (every world with no silent step enabled that the full search reaches, it reaches).
      if (opts.reduce !== false) {
        for (let ci = 0; ci < choices.length; ci++) {
          const c = choices[ci]!;
          if (!c.local) continue;
          const r = world.apply(s, c);
          applied[ci] = r;
          if (r.next.violation || !silent(s, r.next) || keys.has(keyOf(r.next))) continue;
          choices = [c];
          applied = [r];
          reduced++;
          break;
        }
      }
      let anyLocal = false;
      // A local step that leads to another world (M22 reads the worlds with none: a status checker
      // that polls a future for ever without reaping it never lets the world come to rest).
      let anyLocalMoves = false;
      for (let ci = 0; ci < choices.length; ci++) {
        const c = choices[ci]!;
        const { next, transitions } = applied[ci] ?? world.apply(s, c);
        edges++;
        if (seenPairs) for (const t of transitions) for (const leaf of leafIds(t.machine, t.from.startsWith('{') ? JSON.parse(t.from) : t.from)) seenPairs.add(`${leaf} ${t.event}`);
        if (c.local) anyLocal = true;
        const rule = designRules(s, next);
        if (rule) keep({ invariant: rule.id, kind: 'design-rule', message: rule.message, path: [...pathTo(id), c.label] });
        // M8 (src/explore/reportedSuccess.ts): a success reported on this step is true.
        const lie = falseSuccess(s, next, cfg.bounds.handlesPerRequest);
        if (lie) keep({ invariant: 'M8', kind: 'consequence', message: lie, path: [...pathTo(id), c.label] });
        // M9 (src/explore/needlessRetirement.ts): a block retired on this step is retired for a reason.
        const needless = needlessRetirement(world, s, next, c.label);
        if (needless) keep({ invariant: 'M9', kind: 'consequence', message: needless, path: [...pathTo(id), c.label] });
        // M12 (src/explore/failureCause.ts): an outcome reported on this step carries its cause.
        const uncaused = causeMismatch(s, next);
        if (uncaused) keep({ invariant: 'M12', kind: 'consequence', message: uncaused, path: [...pathTo(id), c.label] });
        // M21 (src/explore/signalContract.ts): not-ready is sent only for a request that never had a transfer.
        const falseNotReady = notReadyAfterWrite(s, next);
        if (falseNotReady) keep({ invariant: 'M21', kind: 'consequence', message: falseNotReady, path: [...pathTo(id), c.label] });
        // M23 (src/explore/failureTruth.ts): a transfer failure reported names a transfer that existed.
        const untrue = untrueTransferFailure(s, next);
        if (untrue) keep({ invariant: 'M23', kind: 'consequence', message: untrue, path: [...pathTo(id), c.label] });
        // M24 (src/explore/cancelReachesBackend.ts): a cancel sent to the transfer side reaches every posted transfer.
        const unasked = cancelNotAsked(next);
        if (unasked) keep({ invariant: 'M24', kind: 'consequence', message: unasked, path: [...pathTo(id), c.label] });
        if (next.violation) {
          hooks.onEdge?.(id, c.label, `!${next.violation.id}`);
          keep({ invariant: next.violation.id, kind: kindOf(next.violation.id), message: next.violation.message, path: [...pathTo(id), c.label] });
          if (c.local) anyLocalMoves = true;
          continue;
        }
        const k = keyOf(next);
        let to = keys.get(k);
        if (to === undefined) {
          if (keys.size >= maxStates) {
            truncated = true;
            cutDepth = Math.min(cutDepth, depth[id]!);
            hooks.onEdge?.(id, c.label, 'cut');
            if (c.local) anyLocalMoves = true;
            continue;
          }
          to = keys.size;
          keys.set(k, to);
          parent.push(id);
          label.push(c.label);
          depth.push(depth[id]! + 1);
          settled.push(world.settled(next));
          nextFrontier.push(next);
          nextIds.push(to);
          hooks.onWorld?.(next, to);
        }
        hooks.onEdge?.(id, c.label, to);
        if (c.local && to !== id) anyLocalMoves = true;
        if (c.local) {
          lFrom.push(id);
          lTo.push(to);
        }
      }
      // M22 (src/explore/futureSettled.ts): idle (no step of the executors' own leads anywhere else),
      // every sender, receiver and handle has finished.
      if (!anyLocalMoves) {
        const unsettled = unsettledFutures(s);
        if (unsettled.length > 0) keep({ invariant: 'M22', kind: 'consequence', message: `idle: ${unsettled.join('; ')}`, path: pathTo(id) });
      }
      // At rest (no step of the executors' own left): nothing held, every request has its outcome.
      if (!anyLocal) {
        const problems = world.restProblems(s, true);
        if (problems.length > 0) {
          const missing = problems.filter((p) => p.endsWith('has no outcome'));
          const id2 = missing.length === problems.length ? 'M3' : 'M4';
          keep({ invariant: id2, kind: 'consequence', message: `at rest: ${problems.join('; ')}`, path: pathTo(id) });
        }
      }
    }
    frontier = nextFrontier;
    frontierIds = nextIds;
  }

  const n = keys.size;
  keys.clear();
  // L2: every world reaches a settled one by local steps alone.
  const inc: number[][] = Array.from({ length: n }, () => []);
  for (let i = 0; i < lFrom.length; i++) inc[lTo[i]!]!.push(lFrom[i]!);
  const ok = new Uint8Array(n);
  const queue: number[] = [];
  for (let i = 0; i < n; i++) if (settled[i]) (ok[i] = 1), queue.push(i);
  for (let qi = 0; qi < queue.length; qi++) for (const p of inc[queue[qi]!]!) if (!ok[p]) (ok[p] = 1), queue.push(p);
  let bad = -1;
  if (!truncated) for (let i = 0; i < n; i++) if (!ok[i] && (bad < 0 || depth[i]! < depth[bad]!)) bad = i;
  if (bad >= 0) keep({ invariant: 'L2', kind: 'consequence', message: 'from here no sequence of the executors’ own steps (deadlines, loop steps) settles every request: it waits on the peer, the network or the user forever', path: pathTo(bad) });

  // M5: a cycle of local steps is a retry loop.
  const cyc = localCycle(n, lFrom, lTo);
  if (cyc >= 0) keep({ invariant: 'M5', kind: 'consequence', message: 'a cycle of local steps: the executor can repeat the same steps forever (a retry loop)', path: pathTo(cyc) });

  // Deeper than the budget: seeded random walks from the start. A violation they find is real (its
  // path replays); their absence proves nothing beyond the breadth-first part.
  // M7's own search is not part of the breadth-first one (promptMs).
  const searchMs = Math.round(performance.now() - t0 - promptMs);
  let walked = 0;
  if (truncated && (opts.walks ?? 0) > 0) {
    let seed = 0x9e3779b9;
    const rnd = () => ((seed = (seed * 1664525 + 1013904223) >>> 0), seed / 2 ** 32);
    for (let w = 0; w < opts.walks!; w++) {
      let st = s0;
      const path: string[] = [];
      for (let step = 0; step < (opts.walkLength ?? 60); step++) {
        const cs = world.choices(st);
        if (cs.length === 0) break;
        const c = cs[Math.floor(rnd() * cs.length)]!;
        const { next } = world.apply(st, c);
        walked++;
        path.push(c.label);
        if (next.violation) {
          keep({ invariant: next.violation.id, kind: kindOf(next.violation.id), message: `${next.violation.message} (random walk ${w})`, path: [...path] });
          break;
        }
        st = next;
        if (!cs.some((x) => x.local) ) {
          const problems = world.restProblems(st, true);
          if (problems.length > 0) keep({ invariant: 'M4', kind: 'consequence', message: `at rest: ${problems.join('; ')} (random walk ${w})`, path: [...path] });
        }
      }
    }
  }

  // A walk's path wanders: shrink it to the steps the violation needs (each kept path still replays to it).
  for (const [id, v] of found) if (v.message.includes('(random walk')) found.set(id, { ...v, path: shrinkPath(cfg, v.path, id) });

  const violations = [...found.values()].sort((a, b) => a.invariant.localeCompare(b.invariant, 'en', { numeric: true }));
  return {
    scenario: meta.scenario,
    variant: meta.variant,
    shipped: meta.variant === 'shipped',
    composed: true,
    bounds: cfg.bounds,
    backend: cfg.backend,
    states: n,
    edges,
    ms: Math.round(performance.now() - t0),
    searchMs,
    truncated,
    exhaustiveDepth: truncated ? cutDepth : null,
    reducedStates: reduced,
    walkedSteps: walked,
    promptStates,
    promptMs: Math.round(promptMs),
    violations,
    ...(seenPairs ? { seenPairs } : {}),
  };
}

/** Only one actor's snapshot changed, and nothing else of the world (deadlines, channels, native, memory, reports). */
export const isSilentStep = (a: ComposedState, b: ComposedState): boolean => silent(a, b);
function silent(a: ComposedState, b: ComposedState): boolean {
  if (a.timers !== b.timers || a.toCtx !== b.toCtx || a.toGen !== b.toGen || a.notifs !== b.notifs || a.blocks !== b.blocks || a.leases !== b.leases) return false;
  if (a.allocSeq !== b.allocSeq || b.violation) return false;
  for (const k of Object.keys(b.nat)) if (a.nat[k] !== b.nat[k]) return false;
  if (Object.keys(a.nat).length !== Object.keys(b.nat).length) return false;
  for (const k of Object.keys(b.reports)) if (a.reports[k] !== b.reports[k]) return false;
  for (const k of Object.keys(b.cancelsSent)) if (a.cancelsSent[k] !== b.cancelsSent[k]) return false;
  if (a.budget.cancels !== b.budget.cancels || a.budget.duplicates !== b.budget.duplicates || a.budget.losses !== b.budget.losses || a.budget.reorder !== b.budget.reorder || a.budget.peerDeath !== b.budget.peerDeath) return false;
  let changed = 0;
  for (const k of Object.keys(b.actors)) if (a.actors[k] !== b.actors[k]) changed++;
  return changed === 1 && Object.keys(a.actors).length === Object.keys(b.actors).length;
}

/** A node on a cycle of the local-edge graph, or -1 (iterative colouring DFS). */
function localCycle(n: number, from: number[], to: number[]): number {
  const start = new Int32Array(n + 1);
  for (const f of from) start[f + 1]!++;
  for (let i = 0; i < n; i++) start[i + 1]! += start[i]!;
  const adj = new Int32Array(from.length);
  const fill = start.slice(0, n);
  for (let i = 0; i < from.length; i++) adj[fill[from[i]!]!++] = to[i]!;
  const colour = new Uint8Array(n);
  const stack: number[] = [];
  const it = new Int32Array(n);
  for (let r = 0; r < n; r++) {
    if (colour[r]) continue;
    stack.push(r);
    colour[r] = 1;
    it[r] = start[r]!;
    while (stack.length > 0) {
      const v = stack[stack.length - 1]!;
      if (it[v]! < start[v + 1]!) {
        const w = adj[it[v]!++]!;
        if (w === v) continue; // a self-loop is a step that changes nothing observable: not a retry
        if (colour[w] === 1) return w;
        if (colour[w] === 0) {
          colour[w] = 1;
          it[w] = start[w]!;
          stack.push(w);
        }
      } else {
        colour[v] = 2;
        stack.pop();
      }
    }
  }
  return -1;
}

/**
 * Greedy one-step-at-a-time deletion: drop each step whose removal still replays to a violation of
 * `invariant`, until no single step can go. The result is a real path (it replays), often far shorter.
 */
export function shrinkPath(cfg: ComposedConfig, path: readonly string[], invariant: string): string[] {
  let best = [...path];
  for (let changed = true; changed; ) {
    changed = false;
    for (let i = best.length - 1; i >= 0; i--) {
      const candidate = [...best.slice(0, i), ...best.slice(i + 1)];
      const r = replayComposed(cfg, candidate);
      if (r.violation?.id === invariant && r.steps === candidate.length) {
        best = candidate;
        changed = true;
      }
    }
  }
  return best;
}

/** Step a composed world along a path of choice labels; stops at the first label not enabled or the first violation. */
export function replayComposed(cfg: ComposedConfig, labels: readonly string[]): { steps: number; state: ComposedState; violation: ComposedState['violation']; stuckAt: string | null } {
  const world = new ComposedWorld(cfg);
  let s = world.initial();
  for (let i = 0; i < labels.length; i++) {
    const c = world.choices(s).find((x) => x.label === labels[i]);
    if (!c) return { steps: i, state: s, violation: null, stuckAt: labels[i]! };
    s = world.apply(s, c).next;
    if (s.violation) return { steps: i + 1, state: s, violation: s.violation, stuckAt: null };
  }
  return { steps: labels.length, state: s, violation: null, stuckAt: null };
}
