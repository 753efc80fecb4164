import type { AnyMachineSnapshot } from 'xstate';
import type { Side } from '../core/wiring.js';
import { parseAddress } from '../core/wiring.js';
import type { ComposedConfig, ComposedState } from '../explore/composed.js';
import { ComposedWorld, SEMANTICS, stateKey } from '../explore/composed.js';
import { composedConfig, COMPOSED_SCENARIOS } from '../explore/composedCatalog.js';
import { timerName, valueKey } from '../explore/world.js';
import type { RequestReport } from '../executor/config.js';
import { burstDelays } from '../executor/config.js';
import { ContextServer } from '../executor/contextServer.js';
import { GenerationServer } from '../executor/generationServer.js';
import { isPoisoned, patternWord, POISON_WORD, sliceOf } from '../executor/pattern.js';
import type { ServerBase } from '../executor/serverBase.js';
import type { TransferHandle } from '../native/index.js';
import { XferError } from '../native/index.js';
import { SimClock } from '../sim/clock.js';
import { NO_FAULTS, SimLink } from '../sim/network.js';
import { Rng } from '../sim/rng.js';

/**
 * Conformance of the implementation to the explored model (issue 9 item 7): paths generated from the
 * composed graph drive the real ContextServer and GenerationServer — one process, manual native
 * progress, virtual time, in-memory control links that can be reordered — and after every step the
 * runtime's observable state is compared with the model's: every actor's state, the messages in flight,
 * the reports, and the bytes and owner of every generation block.
 *
 * Native completions are held (ServerBase.holdCompletions) so the path decides when each arrives, as
 * the model does; deadlines are fired by hand (virtual time never runs on its own here).
 */
export interface Divergence {
  path: number;
  step: number;
  label: string;
  expected: string;
  actual: string;
}

export interface ConformReport {
  scenario: string;
  paths: number;
  edgesCovered: number;
  edgesTotal: number;
  /** States of the composed graph the paths were generated from (bounded; `truncated` says if cut). */
  states: number;
  truncated: boolean;
  /** Edges whose step the real backend cannot take (e.g. an ERROR after all bytes landed): not run. */
  unrealizable: number;
  /** The unrealizable edges by step (request and handle numbers folded) and reason, with counts. */
  whyUnrealizable: Record<string, number>;
  divergences: Divergence[];
}

interface Graph {
  states: ComposedState[];
  edges: Array<{ from: number; to: number; label: string }>;
  out: number[][];
  parent: Array<{ edge: number } | null>;
  truncated: boolean;
}

/** Breadth-first over the composed world (no reduction: every interleaving is an edge to cover). */
export function composedGraph(cfg: ComposedConfig, maxStates: number): Graph {
  const world = new ComposedWorld(cfg);
  const s0 = world.initial();
  const index = new Map<string, number>([[stateKey(s0), 0]]);
  const g: Graph = { states: [s0], edges: [], out: [[]], parent: [null], truncated: false };
  for (let i = 0; i < g.states.length; i++) {
    const s = g.states[i]!;
    if (s.violation) continue;
    for (const c of world.choices(s)) {
      const { next } = world.apply(s, c);
      const k = stateKey(next);
      let j = index.get(k);
      if (j === undefined) {
        if (g.states.length >= maxStates) {
          g.truncated = true;
          continue;
        }
        j = g.states.length;
        index.set(k, j);
        g.states.push(next);
        g.out.push([]);
        g.parent.push({ edge: g.edges.length });
      }
      g.out[i]!.push(g.edges.length);
      g.edges.push({ from: i, to: j, label: c.label });
    }
  }
  return g;
}

/** Paths from the start that together take every edge at least once: the shortest way to each uncovered edge, then onward greedily. */
export function coveringPaths(g: Graph, maxLength = 60): number[][] {
  const covered = new Uint8Array(g.edges.length);
  const paths: number[][] = [];
  const prefix = (node: number): number[] => {
    const out: number[] = [];
    for (let p = g.parent[node]; p; p = g.parent[g.edges[p.edge]!.from]!) out.push(p.edge);
    return out.reverse();
  };
  for (let e = 0; e < g.edges.length; e++) {
    if (covered[e]) continue;
    const path = [...prefix(g.edges[e]!.from), e];
    let node = g.edges[e]!.to;
    // Extend while an uncovered edge leaves the current node.
    while (path.length < maxLength) {
      const next = g.out[node]!.find((x) => !covered[x] && !path.includes(x));
      if (next === undefined) break;
      path.push(next);
      node = g.edges[next]!.to;
    }
    for (const x of path) covered[x] = 1;
    paths.push(path);
  }
  return paths;
}

const BLOCK = 4096;

/** The real servers wired like the model's world: same requests, pools, slots, handles and backend rules. */
class RealWorld {
  readonly clock = new SimClock();
  readonly ctx: ContextServer;
  readonly gen: GenerationServer;
  readonly toGen: SimLink;
  readonly toCtx: SimLink;
  readonly held = new Map<string, () => void>();
  readonly reports: Record<Side, Map<string, RequestReport[]>> = { context: new Map(), generation: new Map() };
  /** Aborts the context server asked for, not yet passed to the engine (see `deferAborts`). */
  readonly abortsWanted = new Map<TransferHandle, () => void>();
  private readonly deferred: Array<() => void> = [];
  private static seq = 0;

  constructor(cfg: ComposedConfig, requests: string[], variants: string[] = []) {
    const platform = { clock: this.clock, defer: (fn: () => void) => void this.deferred.push(fn) };
    const n = ++RealWorld.seq;
    const base = {
      socketPath: '',
      blockBytes: BLOCK,
      backend: 'shm',
      progress: 'manual' as const,
      loop: 'manual' as const,
      chunkBytes: 4096,
      recvSlots: 1,
      delays: burstDelays(1000),
      host: 'pure' as const,
      handlesPerRequest: cfg.bounds.handlesPerRequest,
      // The machines see the model's backend rules; what the real agent then does is compared.
      semantics: SEMANTICS[cfg.backend],
      ...(variants.length > 0 ? { variants } : {}),
    };
    const onReport = (side: Side) => (m: { t: string; report?: RequestReport }) => {
      if (m.t !== 'done' || !m.report) return;
      const list = this.reports[side].get(m.report.id) ?? [];
      list.push(m.report);
      this.reports[side].set(m.report.id, list);
    };
    this.gen = new GenerationServer({ ...base, role: 'generation', name: `conform-gen${n}-${process.pid}`, poolBlocks: cfg.genBlocks }, onReport('generation') as never, undefined, platform);
    this.ctx = new ContextServer({ ...base, role: 'context', name: `conform-ctx${n}-${process.pid}`, poolBlocks: requests.length }, onReport('context') as never, undefined, platform);
    this.ctx.loadPeer(this.gen.agent.exportMetadata());
    const rng = new Rng(1);
    this.toGen = new SimLink('ctx→gen', rng, () => this.clock.now(), NO_FAULTS, (m) => this.gen.receiveControl(m));
    this.toCtx = new SimLink('gen→ctx', rng, () => this.clock.now(), NO_FAULTS, (m) => this.ctx.receiveControl(m));
    this.ctx.attachPeer(this.toGen);
    this.gen.attachPeer(this.toCtx);
    this.deferAborts(cfg);
    for (const s of [this.ctx, this.gen] as ServerBase[]) s.holdCompletions = (what, deliver) => void this.held.set(`${what.kind}:${what.key}`, deliver);
    requests.forEach((id, i) => {
      const spec = { id, number: i + 1, blocks: 1, faults: [] };
      this.ctx.submit(spec);
      this.gen.submit(spec);
    });
  }

  /**
   * Manual progress has no chunk "in progress": an abort or a release reaches the engine between
   * chunks and nothing more lands. A threaded engine stops at the next chunk boundary, so the chunk in
   * flight may still land — the model explores that. To take those model steps, the context agent's
   * handles are wrapped: an abort is accepted and handed to the engine only when the model confirms
   * it (until then a write of the handle may land); a release of a transfer in flight (shm, which
   * quiesces on release) first lets the chunk in flight land, as the model does; under ucx semantics
   * it is accepted without quiescing and performed when the transfer ends.
   */
  private deferAborts(cfg: ComposedConfig): void {
    const agent = this.ctx.agent;
    const create = agent.createTransfer.bind(agent);
    agent.createTransfer = (req) => {
      const h = create(req);
      const realAbort = h.abort.bind(h);
      const realRelease = h.release.bind(h);
      h.abort = () => {
        this.abortsWanted.set(h, () => void realAbort());
        return { aborted: true, quiesced: false };
      };
      h.release = () => {
        this.abortsWanted.delete(h);
        if (SEMANTICS[cfg.backend].releaseInFlightQuiesces) {
          landChunks(h);
          return realRelease();
        }
        // A backend whose release in flight does not quiesce (ucx): the release is accepted, the bytes
        // keep moving (the model's later steps land and end the transfer), and the handle waits for
        // quiescence. The shm engine would stop at once, so the real release waits for the end. In
        // flight for the model is also a transfer the engine ended whose end the driver still holds
        // (its last chunk sent the notification and completed it): released once the end is told.
        const status = h.status();
        const heldEnd = status === 'DONE' || status === 'ERROR' ? this.heldEndOf(h) : undefined;
        if (status !== 'IN_PROGRESS' && heldEnd === undefined) return realRelease();
        const releaseLater = (): void => {
          try {
            realRelease();
          } catch (err) {
            // The path ended and its world was closed first: nothing is left to release.
            if (!(err instanceof XferError && err.code === 'CLOSED')) throw err;
          }
        };
        if (heldEnd === undefined) void h.whenTerminal().then(releaseLater);
        else
          this.held.set(heldEnd.key, () => {
            heldEnd.deliver();
            releaseLater();
          });
        return { accepted: true, quiesced: false };
      };
      return h;
    };
  }

  /** The held terminal status of this transfer, if the driver holds one (see `holdCompletions`). */
  private heldEndOf(h: TransferHandle): { key: string; deliver: () => void } | undefined {
    for (const [key, deliver] of this.held) {
      if (key.startsWith('native:') && this.ctx.nativeOf(parseAddress(key.slice('native:'.length)) as never) === h) return { key, deliver };
    }
    return undefined;
  }

  /** Notifications put in the generation mailbox to keep a landed transfer from completing (see `jam`). */
  jammed = 0;

  /**
   * A transfer can fail after its bytes landed (its completion or notification fails): the model takes
   * that step. The shm engine sends a transfer's notification with its last chunk, unless the receiver's
   * mailbox is full: then the transfer waits, IN_PROGRESS with every byte in place, and can still end
   * in ERROR. So before such a write lands, the context agent's lane of the generation mailbox is filled
   * with notifications no server reads (not a sync: the generation server ignores them), and emptied
   * again once the transfer failed. Only done when nothing is in the mailbox (nothing real is popped).
   */
  jam(): boolean {
    if (this.jammed > 0 || this.gen.agent.pendingWork().notifications > 0) return false;
    const junk = new TextEncoder().encode('conform: mailbox filler');
    for (let i = 0; i < 256; i++) {
      try {
        this.ctx.agent.sendNotification(this.gen.agent.name, junk);
        this.jammed++;
      } catch {
        return true; // full
      }
    }
    return true;
  }

  unjam(): void {
    for (; this.jammed > 0; this.jammed--) this.gen.agent.step({ notification: true } as never);
  }

  /** Let promise callbacks run (held completions land in `held`) and deferred work happen. */
  async settle(): Promise<void> {
    for (let i = 0; i < 4; i++) {
      await null;
      for (let j = 0; j < this.deferred.length; j++) this.deferred[j]!();
      this.deferred.length = 0;
    }
  }

  server(side: Side): ServerBase {
    return side === 'context' ? this.ctx : this.gen;
  }

  close(): void {
    this.ctx.close();
    this.gen.close();
  }
}

/** 'ok', or why the real servers cannot take the model's step from where they are. */
type StepOutcome = 'ok' | { unrealizable: string };
const unrealizable = (why: string): StepOutcome => ({ unrealizable: why });

/** Take one explored step on the real servers. The label is the model's choice; `before` is the model world it was taken from. */
async function takeStep(w: RealWorld, label: string, before: ComposedState, ahead: readonly string[] = []): Promise<StepOutcome> {
  let m: RegExpExecArray | null;
  if ((m = /^(ctx|gen) loop (\S+): (\w+)$/.exec(label))) {
    w.server(m[1] === 'ctx' ? 'context' : 'generation').inject({ kind: 'loop', request: m[2]!, step: m[3] as never });
  } else if ((m = /^user: cancel (\S+) on the (context|generation) side$/.exec(label))) {
    w.server(m[2] as Side).cancel(m[1]!);
  } else if ((m = /^ctx native: handles of (\S+) quiescent/.exec(label))) {
    if (!release(w, `quiesced:c:${m[1]}.lease`)) return unrealizable('no quiescence of the lease is pending in the runtime');
  } else if ((m = /^backend: write of (\S+) lands$/.exec(label))) {
    const h = w.ctx.nativeOf(parseAddress(`c:${m[1]}`) as never);
    // A transfer the engine already ended cannot land more bytes.
    if (!h || h.status() !== 'IN_PROGRESS') return unrealizable('the transfer is not in flight in the engine');
    // The path fails this transfer after its bytes landed, with no completion or notification between.
    const fail = ahead.indexOf(`backend: ${m[1]} ERROR`);
    if (fail >= 0 && !ahead.slice(0, fail).some((l) => / DONE$|^notif:/.test(l))) w.jam();
    // Every chunk of this transfer only (other transfers do not move); its notification is sent by the
    // step that completes it (DONE below), so an ERROR after the bytes landed stays possible, as in the model.
    landChunks(h);
  } else if ((m = /^backend: (\S+) (DONE|ERROR)$/.exec(label))) {
    const key = `c:${m[1]}`;
    const h = w.ctx.nativeOf(parseAddress(key) as never);
    if (m[2] === 'ERROR') {
      // A transfer that already completed cannot end in ERROR on the real backend.
      if (!h || h.status() === 'DONE') return unrealizable('the transfer already completed in the engine (or has none)');
      if (h.status() === 'IN_PROGRESS') {
        h.injectError();
        h.step();
      }
      w.unjam();
    } else if (h && h.status() === 'IN_PROGRESS') {
      // Its bytes landed (an earlier step): what is left is the notification, which completes it.
      if (h.bytesDone < h.totalBytes) return unrealizable('the transfer is still in flight in the engine');
      for (let i = 0; i < 16 && h.status() === 'IN_PROGRESS'; i++) h.step();
    }
    await w.settle();
    if (!release(w, `native:${key}`)) return unrealizable('no terminal status of the transfer is pending in the runtime');
  } else if ((m = /^backend: abort of (\S+) confirmed$/.exec(label))) {
    const h = w.ctx.nativeOf(parseAddress(`c:${m[1]}`) as never);
    const abort = h && w.abortsWanted.get(h);
    if (abort) {
      w.abortsWanted.delete(h);
      abort();
    }
    await w.settle();
    if (!release(w, `abort:c:${m[1]}`)) return unrealizable('no confirmed abort is pending in the runtime');
  } else if ((m = /^net (\S+): (deliver|lose) .*?(?: ahead of (\d+) older)?( and keep a duplicate)?$/.exec(label))) {
    const link = m[1]!.includes('Ctx') || m[1]!.startsWith('gen') || m[1] === 'toCtx' ? w.toCtx : w.toGen;
    const i = m[3] ? Number(m[3]) : 0;
    if (m[2] === 'lose') link.dropAt(i);
    else if (!link.deliverAt(i, m[4] !== undefined)) return unrealizable('the link holds no such message');
  } else if ((m = /^notif: sync of (\S+) arrives$/.exec(label))) {
    // Every notification waiting in the generation agent's mailbox (one per handle of the request).
    for (let i = 0; i < 64 && w.gen.agent.pendingWork().notifications > 0; i++) w.gen.agent.step({ notification: true } as never);
  } else if ((m = /^deadline (\S+): (.+)$/.exec(label))) {
    const key = m[1]!;
    const t = before.timers.find((x) => x.key === key && timerName(x.id) === m![2]);
    if (!t) return unrealizable('no such deadline armed');
    w.server(key.startsWith('g:') ? 'generation' : 'context').host.fire(key, t.id);
  } else return unrealizable('no driver for this step');
  await w.settle();
  return 'ok';
}

/** Copy the chunks of a transfer still in flight (not its notification: the transfer does not complete here). */
function landChunks(h: TransferHandle): void {
  for (let i = 0; i < 1024 && !h.released && h.status() === 'IN_PROGRESS' && h.bytesDone < h.totalBytes; i++) h.step();
}

function release(w: RealWorld, key: string): boolean {
  const d = w.held.get(key);
  if (!d) return false;
  w.held.delete(key);
  d();
  return true;
}

/** What the model and the runtime must agree on after a step; the first difference is returned. */
function compare(model: ComposedState, w: RealWorld): { expected: string; actual: string } | null {
  // 1. Every live actor, in the same state (finished ones the runtime may already have dropped).
  for (const [key, snap] of Object.entries(model.actors)) {
    const side: Side = key.startsWith('g:') ? 'generation' : 'context';
    const real = w.server(side).host.actor(key) as AnyMachineSnapshot | undefined;
    // A lifecycle resting in a `finished` state is done with its request: the runtime drops it.
    if (snap.status === 'active' && !snap.hasTag('finished')) {
      // A lease whose blocks went back to the pool rests in `free`; the runtime forgets it then.
      if (!real && key.endsWith('.lease') && valueKey(snap) === 'free') continue;
      if (!real) return { expected: `${key} ${valueKey(snap)}`, actual: `${key} absent` };
      if (valueKey(real) !== valueKey(snap)) return { expected: `${key} ${valueKey(snap)}`, actual: `${key} ${valueKey(real)}` };
    } else if (real && real.status === 'active' && !real.hasTag('finished')) return { expected: `${key} finished`, actual: `${key} ${valueKey(real)}` };
  }
  for (const side of ['context', 'generation'] as const) {
    for (const key of w.server(side).host.names()) {
      if (!model.actors[key] && w.server(side).host.actor(key)?.status === 'active' && !w.server(side).host.actor(key)!.hasTag('finished')) return { expected: `no actor ${key}`, actual: `${key} ${valueKey(w.server(side).host.actor(key)!)}` };
    }
  }
  // 2. Messages in flight, in order.
  const msgs = (l: readonly { t: string; id: string }[]) => l.map((x) => `${x.t}(${x.id})`).join(' ');
  if (msgs(model.toGen) !== msgs(w.toGen.messages())) return { expected: `ctx→gen [${msgs(model.toGen)}]`, actual: `ctx→gen [${msgs(w.toGen.messages())}]` };
  if (msgs(model.toCtx) !== msgs(w.toCtx.messages())) return { expected: `gen→ctx [${msgs(model.toCtx)}]`, actual: `gen→ctx [${msgs(w.toCtx.messages())}]` };
  // 3. Reports: which requests were reported on which side, with which outcome, once.
  for (const side of ['context', 'generation'] as const) {
    const model1 = Object.entries(model.reports).filter(([k]) => k.startsWith(`${side}:`)).map(([k, v]) => `${k.slice(side.length + 1)}=${v.outcome}×${v.n}`).sort().join(' ');
    const real1 = [...w.reports[side]].map(([id, l]) => `${id}=${l[0]!.outcome}×${l.length}`).sort().join(' ');
    if (model1 !== real1) return { expected: `${side} reports [${model1}]`, actual: `${side} reports [${real1}]` };
  }
  // 4. Generation memory: owner and contents of each block, slice by slice.
  const pool = w.gen.pool;
  const owners = new Map<number, { request: string; epoch: number; number: number }>();
  for (const [request, l] of pool.leases()) l.blocks.forEach((b) => owners.set(b, { request, epoch: l.epoch, number: l.number }));
  for (let b = 0; b < model.blocks.length; b++) {
    const mb = model.blocks[b]!;
    const o = owners.get(b);
    const realOwner = pool.isRetired(b) ? 'retired' : o ? `${o.request}@${o.epoch}` : null;
    if ((mb.owner ?? null) !== realOwner) return { expected: `block ${b} owner ${mb.owner}`, actual: `block ${b} owner ${realOwner}` };
    const view = pool.view(b);
    for (let c = 0; c < mb.chunks.length; c++) {
      const { offset, length } = sliceOf(BLOCK, c, mb.chunks.length);
      const slice = view.subarray(offset, offset + length);
      const realChunk = isPoisoned(slice) ? '' : describe(slice);
      const modelChunk = mb.chunks[c]!;
      // The model keeps a freed block's bytes (so that a late write into it shows as the old writer's);
      // the pool poisons a block when it is freed. A slice the model says holds another request's bytes
      // than the block's owner's is such a leftover (in the shipped model no write lands in a foreign
      // block: that is invariant M1), and the real slice is then poison.
      if (realChunk === '' && modelChunk !== '' && modelChunk !== mb.owner) continue;
      if (modelChunk !== realChunk) return { expected: `block ${b} slice ${c} holds '${modelChunk}'`, actual: `block ${b} slice ${c} holds '${realChunk}'` };
    }
  }
  return null;
}

/** `r<number>@<epoch>` when the slice is one request's pattern throughout, else 'mixed'. */
function describe(slice: Uint8Array): string {
  const b = Buffer.from(slice.buffer, slice.byteOffset, slice.byteLength);
  const first = b.subarray(0, 8);
  if (first.equals(POISON_WORD)) return 'mixed';
  const n = first.readUInt32LE(0);
  const e = first.readUInt16LE(4);
  const word = patternWord(n, e, first.readUInt16LE(6));
  for (let o = 0; o + 8 <= b.length; o += 8) if (!b.subarray(o, o + 8).equals(word)) return 'mixed';
  return `r${n}@${e}`;
}

export interface ConformOptions {
  scenario?: string;
  maxStates?: number;
  /** Stop after this many paths (default: all). */
  maxPaths?: number;
  /** Only these paths, by index into coveringPaths(composedGraph(…)) (default: all). */
  pathIndices?: readonly number[];
  onPath?(done: number, total: number): void;
  /** Regression variants run by the real servers only (a canary: conformance must then diverge). */
  realVariants?: string[];
}

export async function runConform(o: ConformOptions = {}): Promise<ConformReport> {
  const scenario = o.scenario ?? 'composed/reuse';
  if (!COMPOSED_SCENARIOS[scenario]) throw new Error(`unknown composed scenario '${scenario}'`);
  const cfg = composedConfig(scenario, 'shipped');
  const world = new ComposedWorld(cfg);
  const g = composedGraph(cfg, o.maxStates ?? 4000);
  const paths = coveringPaths(g).slice(0, o.maxPaths ?? Number.MAX_SAFE_INTEGER);
  const covered = new Uint8Array(g.edges.length);
  const divergences: Divergence[] = [];
  let unrealizable = 0;
  const unrealizableEdges = new Set<number>();
  const whyUnrealizable: Record<string, number> = {};
  for (let p = 0; p < paths.length; p++) {
    if (o.pathIndices !== undefined && !o.pathIndices.includes(p)) continue;
    const w = new RealWorld(cfg, world.requests, o.realVariants ?? []);
    try {
      await w.settle();
      const start = compare(g.states[0]!, w);
      if (start) {
        divergences.push({ path: p, step: 0, label: 'start', ...start });
        continue;
      }
      for (let i = 0; i < paths[p]!.length; i++) {
        const e = g.edges[paths[p]![i]!]!;
        const outcome = await takeStep(w, e.label, g.states[e.from]!, paths[p]!.slice(i + 1).map((x) => g.edges[x]!.label));
        if (outcome !== 'ok') {
          if (!unrealizableEdges.has(paths[p]![i]!)) {
            unrealizable++;
            const kind = `${e.label.replace(/r\d+/g, 'r*').replace(/#\d/g, '#*')}: ${outcome.unrealizable}`;
            whyUnrealizable[kind] = (whyUnrealizable[kind] ?? 0) + 1;
          }
          unrealizableEdges.add(paths[p]![i]!);
          break;
        }
        covered[paths[p]![i]!] = 1;
        const diff = compare(g.states[e.to]!, w);
        if (diff) {
          divergences.push({ path: p, step: i + 1, label: e.label, ...diff });
          break;
        }
      }
    } finally {
      w.close();
    }
    o.onPath?.(p + 1, paths.length);
  }
  let edgesCovered = 0;
  for (const c of covered) edgesCovered += c;
  return { scenario, paths: paths.length, edgesCovered, edgesTotal: g.edges.length, states: g.states.length, truncated: g.truncated, unrealizable, whyUnrealizable, divergences };
}
