import { createHash } from 'node:crypto';
import type { RequestSpec } from '../executor/config.js';
import { checkPoolBytes, completedWithCorruptedBlocks } from './checkers.js';
import type { SimShape, StepKind } from './cluster.js';
import { SimCluster } from './cluster.js';
import { NO_FAULTS } from './network.js';
import { Rng } from './rng.js';

/**
 * The simulator's driver, after TigerBeetle's VOPR: one seed decides the world's shape (swarm
 * options) and every scheduling choice; a safety phase runs with faults on and checks ground truth
 * after every step; then the network heals, faults stop, and the world must settle within a bound
 * (liveness). A failure names the seed and the step, and rerunning the seed replays it bit for bit.
 */
export interface SimOptions {
  seed: number;
  /** Steps of the safety phase. */
  steps: number;
  /** Regression variants to swap into the servers (canaries). */
  variants?: string[];
  /** Keep every step's label (for printing a failing prefix). */
  keepSchedule?: boolean;
  /** Servers keep time-in-state histograms (the full transition observer; see SimShape.timeInState). */
  timeInState?: boolean;
  /** The servers' host of machines (SimShape.host). */
  host?: 'pure' | 'actors';
}

export interface SimViolation {
  seed: number;
  /** 1-based step at which it was first seen: the schedule's prefix of this length fails. */
  step: number;
  invariant: string;
  message: string;
  /** The last steps of the failing prefix (all of it when short). */
  prefixTail: string[];
}

export interface SimResult {
  seed: number;
  steps: number;
  virtualMs: number;
  shape: SimShape;
  requests: { submitted: number; completed: number; cancelled: number; failed: number; lostWithCrash: number; reasons: Record<string, number> };
  crashes: number;
  violations: SimViolation[];
  /** sha256 over the schedule and the end state: equal for two runs of one seed (determinism). */
  digest: string;
  /** Every step's label and the world it left (see `noteWorld` in simulate), in order (only with `keepSchedule`). */
  schedule?: string[];
  /** Each request's transition count per side, as the digest covers them (`[id, counts]`, sorted by id). */
  transitions: { context: [string, number[]][]; generation: [string, number[]][] };
}

const TAIL = 40;

export function shapeFor(seed: number, variants: string[] = []): SimShape {
  const r = new Rng(seed ^ 0x5eed);
  const blocksPerRequest = r.int(1, 3);
  return {
    requests: r.int(4, 24),
    blocksPerRequest,
    blockBytes: r.pick([4096, 8192]),
    ctxPoolBlocks: blocksPerRequest * r.int(1, 4),
    genPoolBlocks: blocksPerRequest * r.int(1, 4),
    recvSlots: r.int(1, 3),
    kvTransferTimeoutMs: 1000,
    links: { drop: r.pick([0, 0, 0.01, 0.05]), duplicate: r.pick([0, 0.02, 0.1]), reorder: r.chance(0.5), maxDelayMs: r.pick([0, 20, 100, 600]) },
    cancelRate: r.pick([0, 0.001, 0.004]),
    crashRate: r.pick([0, 0, 0.0002, 0.001]),
    partitionRate: r.pick([0, 0.001]),
    weights: { submit: r.int(1, 5), deliver: r.int(1, 10), loop: r.int(1, 10), native: r.int(1, 10), time: r.int(1, 6) },
    variants,
    // Drawn last, so a seed's other choices are what they were before the loop was a choice. A
    // regression variant keeps the manual loop: a refused cancel re-sent every iteration would spin an
    // automatic one (the explorer and the manual loop are where such a bug is caught).
    loop: r.chance(0.5) && variants.length === 0 ? 'auto' : 'manual',
  };
}

interface Action {
  kind: StepKind | 'fault';
  label: string;
  weight: number;
  run(): void;
}

/**
 * Let promise callbacks (native completions routed through the facade) run before the next step.
 * Awaiting yields to the microtask queue; a few rounds drain the short chains the servers create, in
 * the same order on every run.
 */
const settle = async (cluster: SimCluster): Promise<void> => {
  for (let i = 0; i < 4; i++) {
    await null;
    cluster.runDeferred();
  }
};

export async function simulate(o: SimOptions): Promise<SimResult> {
  const shape = { ...shapeFor(o.seed, o.variants ?? []), ...(o.timeInState ? { timeInState: true } : {}), ...(o.host !== undefined ? { host: o.host } : {}) };
  const rng = new Rng(o.seed);
  const cluster = new SimCluster(o.seed, shape, rng);
  const hash = createHash('sha256');
  const tail: string[] = [];
  const schedule: string[] = [];
  const violations: SimViolation[] = [];
  const specs: RequestSpec[] = [];
  for (let i = 0; i < shape.requests; i++) specs.push({ id: `r${i + 1}`, number: i + 1, blocks: shape.blocksPerRequest, faults: [] });
  let nextGen = 0;
  let nextCtx = 0;
  let crashes = 0;
  let step = 0;
  let partitionUntil = -1;

  const record = (label: string) => {
    hash.update(label);
    hash.update('\n');
    tail.push(label);
    if (tail.length > TAIL && !o.keepSchedule) tail.shift();
  };
  const fail = (invariant: string, message: string) => {
    if (violations.some((v) => v.invariant === invariant)) return;
    violations.push({ seed: o.seed, step, invariant, message, prefixTail: tail.slice(-TAIL) });
  };
  if (o.keepSchedule) cluster.onLog = (line) => tail.push(`    ${line}`);
  /**
   * With `keepSchedule`: the step's label and what the world looks like once it settled, from outside
   * the hosts (requests live, blocks held, messages deliverable, the next deadline), so two runs that
   * should agree are seen to part at the step where they did, not at the first choice it changed.
   */
  const noteWorld = (label: string) => {
    if (!o.keepSchedule) return;
    const side = (s: SimCluster['ctx'] | SimCluster['gen']) => `${s.requests.size}/${s.pool.stats().heldBlocks}`;
    schedule.push(`${label} → ctx ${side(cluster.ctx)} gen ${side(cluster.gen)} links ${cluster.toGen.deliverable()}/${cluster.toCtx.deliverable()} next ${cluster.clock.nextAt() ?? '-'}`);
  };
  const numberOf = (lease: string) => cluster.specs.get(lease)?.number;

  const check = () => {
    for (const v of checkPoolBytes(cluster.gen.pool, numberOf)) fail('bytes-in-foreign-block', v.message);
    for (const side of ['context', 'generation'] as const) {
      for (const [id, list] of cluster.reports[side]) if (list.length > 1) fail('settles-once', `${side} reported ${id} ${list.length} times`);
    }
    for (const m of completedWithCorruptedBlocks(cluster.reports.generation)) fail('served-bytes-are-owners', m);
    if (cluster.gen.servedMismatches > 0) fail('served-bytes-are-owners', `${cluster.gen.servedMismatches} request(s) served blocks that no longer held their own bytes`);
    if (cluster.gen.pool.poisonBroken > 0) fail('bytes-in-foreign-block', `${cluster.gen.pool.poisonBroken} block(s) found written while free when allocated again`);
    // A design rule of the executor, not a consequence: the automatic loop's work comes with a turn of
    // it scheduled. Its consequence, a request that waits for some unrelated stimulus, cannot show here:
    // the scheduler's own loop steps, taken on top, and its steady stimuli move every request anyway.
    for (const [side, server] of [['context', cluster.ctx], ['generation', cluster.gen]] as const) {
      const n = server.strandedLoopWork;
      if (n > 0) fail('loop-woken-for-its-work', `${side}: ${n} actor(s) wait in the automatic loop's sets and no turn of it is scheduled`);
    }
  };

  const live = (side: 'context' | 'generation') =>
    specs.filter((s, i) => (side === 'generation' ? i < nextGen : i < nextCtx) && !cluster.reports[side].has(s.id) && !(side === 'context' ? cluster.lostWithCrash : cluster.lostWithGenCrash).has(s.id));

  const actions = (): Action[] => {
    const w = shape.weights;
    const a: Action[] = [];
    if (nextGen < specs.length) a.push({ kind: 'submit', label: `submit gen ${specs[nextGen]!.id}`, weight: w.submit, run: () => cluster.submitGeneration(specs[nextGen++]!) });
    if (nextCtx < specs.length) a.push({ kind: 'submit', label: `submit ctx ${specs[nextCtx]!.id}`, weight: w.submit, run: () => cluster.submitContext(specs[nextCtx++]!) });
    if (cluster.toGen.deliverable() > 0) a.push({ kind: 'deliver', label: 'deliver ctx→gen', weight: w.deliver, run: () => void cluster.toGen.deliverOne() });
    if (cluster.toCtx.deliverable() > 0) a.push({ kind: 'deliver', label: 'deliver gen→ctx', weight: w.deliver, run: () => void cluster.toCtx.deliverOne() });
    a.push({ kind: 'loop', label: 'loop ctx', weight: w.loop, run: () => void cluster.ctx.stepLoop() });
    a.push({ kind: 'loop', label: 'loop gen', weight: w.loop, run: () => void cluster.gen.stepLoop() });
    a.push({ kind: 'native', label: 'native ctx', weight: w.native, run: () => void cluster.ctx.agent.step() });
    a.push({ kind: 'native', label: 'native gen', weight: w.native, run: () => void cluster.gen.agent.step() });
    a.push({ kind: 'time', label: 'time', weight: w.time, run: () => advanceTime() });
    return a;
  };

  /** The world's faults, each a per-step chance decided by the seed's shape (not weighted against work). */
  const faultAction = (): Action | null => {
    const g = live('generation');
    const c = live('context');
    if (g.length > 0 && rng.chance(shape.cancelRate)) return { kind: 'fault', label: 'cancel gen', weight: 0, run: () => cluster.gen.cancel(rng.pick(g).id) };
    if (c.length > 0 && rng.chance(shape.cancelRate)) return { kind: 'fault', label: 'cancel ctx', weight: 0, run: () => cluster.ctx.cancel(rng.pick(c).id) };
    if (rng.chance(shape.crashRate)) return { kind: 'fault', label: 'crash ctx', weight: 0, run: () => (crashes++, cluster.crashContext()) };
    if (rng.chance(shape.crashRate)) return { kind: 'fault', label: 'crash gen', weight: 0, run: () => (crashes++, cluster.crashGeneration()) };
    if (partitionUntil < 0 && rng.chance(shape.partitionRate)) {
      return {
        kind: 'fault',
        label: 'partition',
        weight: 0,
        run: () => {
          partitionUntil = cluster.clock.now() + rng.int(100, 3 * shape.kvTransferTimeoutMs);
          cluster.setLinkFaults(shape.links, true);
        },
      };
    }
    return null;
  };

  /**
   * Let a little virtual time pass (firing what falls due); when nothing else can happen, jump to the
   * next deadline or delayed message. Steps are cheap next to deadlines, as in a real server.
   */
  const advanceTime = (jump = false) => {
    const now = cluster.clock.now();
    const next = [cluster.clock.nextAt(), cluster.toGen.nextAt(), cluster.toCtx.nextAt()].filter((x): x is number => x !== undefined && x > now);
    const quantum = jump && next.length > 0 ? Math.min(...next) - now : rng.int(1, Math.max(2, Math.round(shape.kvTransferTimeoutMs / 20)));
    cluster.clock.advance(quantum);
    if (partitionUntil >= 0 && cluster.clock.now() >= partitionUntil) {
      partitionUntil = -1;
      cluster.setLinkFaults(shape.links, false);
    }
  };

  const pick = (list: Action[]): Action => {
    let total = 0;
    for (const x of list) total += x.weight;
    let r = rng.float() * total;
    for (const x of list) if ((r -= x.weight) < 0) return x;
    return list[list.length - 1]!;
  };

  try {
    // Safety phase: faults on, every choice random.
    for (step = 1; step <= o.steps && violations.length === 0; step++) {
      const choice = faultAction() ?? pick(actions());
      record(choice.label);
      choice.run();
      await settle(cluster);
      noteWorld(choice.label);
      check();
    }
    // Liveness phase: heal, stop injecting, and let the world settle within a bound of virtual time.
    if (violations.length === 0) {
      cluster.setLinkFaults(NO_FAULTS, false);
      partitionUntil = -1;
      // Requests can wait for blocks one behind another (a pool of one block serves them in turn), and each
      // can take a few deadlines to end: the bound grows with the number of requests.
      const settleBoundMs = (40 + 4 * shape.requests) * shape.kvTransferTimeoutMs;
      const deadline = cluster.clock.now() + settleBoundMs;
      const settled = () =>
        nextGen === specs.length && nextCtx === specs.length && live('generation').length === 0 && live('context').length === 0 &&
        cluster.gen.pool.stats().heldBlocks === 0 && cluster.ctx.pool.stats().heldBlocks === 0;
      let budget = 0;
      for (; !settled() && cluster.clock.now() <= deadline && violations.length === 0 && budget < 200_000; step++) {
        // Fair: run every local step first; only when nothing moves does time pass.
        const list = actions().filter((x) => x.kind !== 'time');
        const choice = pick(list);
        record(choice.label);
        choice.run();
        await settle(cluster);
        noteWorld(choice.label);
        check();
        if (rng.chance(0.05)) {
          record('time jump');
          advanceTime(true);
          await settle(cluster);
          noteWorld('time jump');
          check();
        }
        budget++;
        if (settled()) break;
      }
      if (settled() && violations.length === 0) {
        // Let the executors finish their own work (a side that outlived its failed-closed request unwinds).
        for (let i = 0; i < 1000 && (cluster.ctx.stepLoop() || cluster.gen.stepLoop()); i++) await settle(cluster);
        await settle(cluster);
        // At rest nothing of any request is left: only each server's own actors (session, admission, slots, fences).
        const hosts = [cluster.ctx.host, cluster.gen.host];
        const left = hosts.flatMap((h) => h.names().filter((n) => !n.includes('@server')).map((n) => `${n} ${JSON.stringify(h.actor(n)?.value)}`));
        if (left.length > 0) fail('nothing-leaked-at-rest', `at rest, actors of finished requests are still alive: ${left.slice(0, 8).join(', ')}${left.length > 8 ? ` and ${left.length - 8} more` : ''}`);
      }
      if (!settled() && violations.length === 0) {
        const stuckGen = live('generation').map((s) => s.id);
        const stuckCtx = live('context').map((s) => s.id);
        const states = (h: typeof cluster.ctx.host, ids: string[]) => h.names().filter((n) => ids.some((id) => n.slice(2).startsWith(`${id}.`) || n.slice(2).startsWith(`${id}#`))).map((n) => `${n} ${JSON.stringify(h.actor(n)?.value)}`);
        fail('settles-after-heal', `not settled ${settleBoundMs} virtual ms after healing (now ${cluster.clock.now()}): generation stuck [${stuckGen.join(',')}], context stuck [${stuckCtx.join(',')}], held blocks gen ${cluster.gen.pool.stats().heldBlocks} ctx ${cluster.ctx.pool.stats().heldBlocks}; clock timers ${cluster.clock.armed()} next ${cluster.clock.nextAt()}; ${[...states(cluster.gen.host, stuckGen), ...states(cluster.ctx.host, stuckCtx)].join('; ')}`);
      }
    }
  } finally {
    cluster.close();
  }

  const outcomes = { completed: 0, cancelled: 0, failed: 0 };
  const reasons: Record<string, number> = {};
  for (const list of cluster.reports.generation.values()) {
    outcomes[list[0]!.outcome]++;
    reasons[list[0]!.reason] = (reasons[list[0]!.reason] ?? 0) + 1;
  }
  // Each report's transition count too: the servers count them in their transition observer.
  const counts = (side: 'context' | 'generation'): [string, number[]][] => [...cluster.reports[side]].sort(([a], [b]) => (a < b ? -1 : 1)).map(([id, list]) => [id, list.map((r) => r.transitions)]);
  const transitions = { context: counts('context'), generation: counts('generation') };
  hash.update(JSON.stringify([outcomes, cluster.clock.now(), violations.map((v) => [v.invariant, v.step]), transitions.context, transitions.generation]));
  return {
    seed: o.seed,
    steps: step - 1,
    virtualMs: cluster.clock.now(),
    shape,
    requests: { submitted: specs.length, ...outcomes, lostWithCrash: cluster.lostWithCrash.size + cluster.lostWithGenCrash.size, reasons },
    crashes,
    violations,
    digest: hash.digest('hex').slice(0, 16),
    ...(o.keepSchedule ? { schedule } : {}),
    transitions,
  };
}

/** Where two runs of one seed parted (SimResults with `schedule`): the first step after which their worlds differ, or what differs at the end. */
export interface Divergence {
  seed: number;
  /** 1-based; null when the schedules agree and only the end differs (outcomes, final time, transition counts). */
  step: number | null;
  what: string;
}

/** Whether two runs of one seed agree: the same schedule and end state (digest) over the same steps. */
export function sameRun(a: SimResult, b: SimResult): boolean {
  return a.digest === b.digest && a.steps === b.steps;
}

export function divergence(a: SimResult, b: SimResult, names: [string, string]): Divergence | null {
  if (sameRun(a, b)) return null;
  const sa = a.schedule ?? [];
  const sb = b.schedule ?? [];
  for (let i = 0; i < Math.max(sa.length, sb.length); i++) {
    if (sa[i] !== sb[i]) return { seed: a.seed, step: i + 1, what: `after step ${i + 1}, ${names[0]}: ${sa[i] ?? '(ended)'}; ${names[1]}: ${sb[i] ?? '(ended)'}` };
  }
  for (const side of ['context', 'generation'] as const) {
    const tb = new Map(b.transitions[side]);
    for (const [id, n] of a.transitions[side]) {
      const m = tb.get(id);
      if (JSON.stringify(m) !== JSON.stringify(n)) return { seed: a.seed, step: null, what: `same schedule; ${side} ${id} counted ${JSON.stringify(n)} transition(s) on ${names[0]}, ${JSON.stringify(m ?? null)} on ${names[1]}` };
    }
  }
  return { seed: a.seed, step: null, what: `same schedule; the end differs: ${names[0]} ${JSON.stringify(a.requests)} at ${a.virtualMs} ms, ${names[1]} ${JSON.stringify(b.requests)} at ${b.virtualMs} ms` };
}
