import type { AnyMachineSnapshot, AnyStateMachine, EventObject } from 'xstate';
import type { BackendSemantics, RemoteRef, RequestTable } from '../../machines/index.js';
import type { Effect, PeerMessage, RequestAddress, Side, Stimulus, Wiring } from '../core/wiring.js';
import { addressKey, at, parseAddress, ROLE_MACHINES, wiringFor } from '../core/wiring.js';
import type { EmittedAction, MachineEvent } from './world.js';
import { engineStats, pureInitialTransition, pureTransition, roleOf, valueKey } from './world.js';

/**
 * The composed world: both servers' production machines at once, stepped through the production
 * wiring (src/core/wiring.ts), with modelled effects: a control channel per direction (loss,
 * duplication, reordering, delay — each bounded), a sync-notification channel, a native backend per
 * transfer handle whose writes land chunk by chunk, and a memory model of the generation pool.
 * No side is a stand-in: every decision is taken by a machine of the running system.
 */

/** The bounds of one exploration, printed with every result. */
export interface Bounds {
  /** Requests submitted to both sides (in order); the generation pool holds one, so later ones reuse its blocks. */
  requests: number;
  handlesPerRequest: number;
  /** User cancels, on either side, in total. */
  cancels: number;
  /** Control messages (or notifications) delivered twice. */
  duplicates: number;
  /** Deliveries out of send order. */
  reorder: number;
  /** Control messages or notifications lost. */
  losses: number;
  /** Peer process deaths (either side), in total. */
  peerDeath: number;
}

export type Backend = 'shm' | 'ucx';
export const SEMANTICS: Record<Backend, BackendSemantics> = {
  shm: { canAbortInFlight: true, releaseInFlightQuiesces: true },
  ucx: { canAbortInFlight: false, releaseInFlightQuiesces: false },
};

export interface ComposedConfig {
  bounds: Bounds;
  backend: Backend;
  /** Generation-pool blocks (each request needs one): fewer blocks than requests forces reuse. */
  genBlocks: number;
  /** Deadlines fire in the order their configured delays allow (false: any armed deadline at any time). */
  timedDeadlines: boolean;
  /** Machines per side and role (production, or with a regression variant substituted). */
  machines: Record<Side, Partial<Record<string, AnyStateMachine>>>;
}

/** One native transfer (handle) as the backend sees it. */
export interface NativeXfer {
  remote: RemoteRef | null;
  index: number;
  /** created → posted → (landed) → done | error; aborted; 'released' only marks the handle freed. */
  phase: 'created' | 'posted' | 'done' | 'error' | 'aborted';
  landed: boolean;
  released: boolean;
  abortWanted: boolean;
  /**
   * Released while still posted on a backend whose release in flight does not quiesce (UCX): from then
   * on the initiator can never learn when its bytes stop (the completion is not sent after a release),
   * so no acknowledgement of a fence of its request can be sound (M9 reads it). Absent otherwise.
   */
  releasedInFlight?: true;
}

export interface Block {
  /** `${request}@${epoch}` of the lease that owns it, null when free, 'retired' when out of the pool. */
  owner: string | null;
  /** Per chunk: `${writer}@${epoch it was written for}`, or '' (never written). */
  chunks: string[];
}

export interface ComposedState {
  actors: Record<string, AnyMachineSnapshot>;
  /**
   * Armed deadlines of every actor, in the order they were armed. A deadline may fire only when no
   * deadline armed before it has a shorter or equal delay (that one is due first): the orderings
   * explored are those the configured delays allow; peers, network and backend take any time.
   */
  timers: readonly Timer[];
  toCtx: readonly PeerMessage[];
  toGen: readonly PeerMessage[];
  /** Sync notifications in flight (request ids); they travel apart from the control channel. */
  notifs: readonly string[];
  nat: Record<string, NativeXfer>;
  blocks: readonly Block[];
  /** Generation: the request's lease → its blocks and allocation epoch. */
  leases: Record<string, { blocks: number[]; epoch: number }>;
  allocSeq: number;
  /** `${side}:${request}` → reports made, with the outcome and reason reported. */
  reports: Record<string, { n: number; outcome: string; reason?: string }>;
  /** `${side}:${request}` → cancels sent to the transfer side (retry counting). */
  cancelsSent: Record<string, number>;
  budget: { cancels: number; duplicates: number; reorder: number; losses: number; peerDeath: number };
  dead: { context: boolean; generation: boolean };
  /** The first consequence violation seen on the way to this world (the world is not expanded further). */
  violation: { id: string; message: string } | null;
}

export interface Timer {
  key: string;
  id: string;
  delay: number;
}

export interface Choice {
  label: string;
  local: boolean;
  request?: string;
  apply(d: Draft): void;
}

export const RETRY_BOUND = 3;

const REQ = (i: number) => `r${i + 1}`;

export function requestIds(b: Bounds): string[] {
  return Array.from({ length: b.requests }, (_, i) => REQ(i));
}

/** A mutable copy of a composed world while one choice is applied (run to completion, in order). */
export class Draft {
  readonly s: ComposedState;
  private readonly queue: Array<{ key: string; event: EventObject }> = [];
  private draining = false;
  /** Every machine transition of this step (for coverage). */
  readonly transitions: Array<{ machine: string; from: string; event: string }> = [];

  constructor(
    readonly cfg: ComposedConfig,
    readonly wiring: Record<Side, Wiring>,
    prev: ComposedState,
  ) {
    this.s = {
      ...prev,
      actors: { ...prev.actors },
      nat: { ...prev.nat },
      reports: { ...prev.reports },
      cancelsSent: { ...prev.cancelsSent },
      budget: { ...prev.budget },
      dead: { ...prev.dead },
    };
  }

  violate(id: string, message: string): void {
    if (!this.s.violation) this.s.violation = { id, message };
  }

  machine(key: string): AnyStateMachine {
    const side: Side = key.startsWith('g:') ? 'generation' : 'context';
    const m = this.cfg.machines[side][roleOf(key)];
    if (!m) throw new Error(`no machine for ${key}`);
    return m;
  }

  stimulus(side: Side, st: Stimulus): void {
    if (this.s.dead[side]) return;
    this.perform(side, this.wiring[side].inbound(st));
  }

  fire(key: string, id: string): void {
    this.s.timers = this.s.timers.filter((t) => !(t.key === key && t.id === id));
    this.enqueue(key, { type: id });
  }

  perform(side: Side, effects: Effect[]): void {
    for (const fx of effects) this.effect(side, fx);
    this.drain();
  }

  private enqueue(key: string, event: EventObject): void {
    this.queue.push({ key, event });
    this.drain();
  }

  private spawn(key: string, input: unknown): void {
    if (this.s.actors[key]) return;
    const [snap, actions] = memoInitial(this.machine(key), input);
    this.s.actors[key] = snap;
    this.actions(key, actions as EmittedAction[]);
  }

  private drain(): void {
    if (this.draining) return;
    this.draining = true;
    try {
      while (this.queue.length > 0) {
        const { key, event } = this.queue.shift()!;
        const prev = this.s.actors[key];
        // An actor that does not exist or has finished drops the event, as a stopped actor would.
        if (!prev || prev.status !== 'active') continue;
        const m = this.machine(key);
        const [next, actions] = memoTransition(m, prev, event);
        this.transitions.push({ machine: m.id, from: valueKey(prev), event: event.type });
        this.s.actors[key] = next;
        this.actions(key, actions as EmittedAction[]);
        if (next.status === 'done') {
          this.s.timers = this.s.timers.filter((t) => t.key !== key);
          const side: Side = key.startsWith('g:') ? 'generation' : 'context';
          for (const fx of this.wiring[side].done(parseAddress(key), next.output)) this.effect(side, fx);
        }
      }
    } finally {
      this.draining = false;
    }
  }

  private actions(key: string, actions: EmittedAction[]): void {
    const side: Side = key.startsWith('g:') ? 'generation' : 'context';
    for (const a of actions) {
      if (a.type === 'xstate.raise') {
        const p = a.params as unknown as { id: string; delay?: number };
        if (p.delay !== undefined && Number.isFinite(p.delay)) this.s.timers = [...this.s.timers.filter((t) => !(t.key === key && t.id === p.id)), { key, id: p.id, delay: p.delay }];
        continue;
      }
      if (a.type === 'xstate.cancel') {
        const id = (a.params as unknown as { sendId: string }).sendId;
        this.s.timers = this.s.timers.filter((t) => !(t.key === key && t.id === id));
        continue;
      }
      if (a.type.startsWith('xstate.')) continue;
      for (const fx of this.wiring[side].action(parseAddress(key), { type: a.type, params: (a.params ?? {}) as Record<string, unknown> })) this.effect(side, fx);
    }
  }

  /** The modelled effect table: the same Effect union the real servers interpret. */
  private effect(side: Side, fx: Effect): void {
    switch (fx.type) {
      case 'deliver':
        return void this.queue.push({ key: addressKey(fx.to), event: fx.event as EventObject });
      case 'spawn':
        return this.spawn(addressKey(fx.at), fx.input);
      case 'control.send':
        return this.send(side, fx.msg);
      case 'control.sendInfo': {
        const l = this.s.leases[fx.request];
        if (!l) return; // nothing allocated: nothing to name (the machine never asks then)
        return this.send(side, { t: 'info', id: fx.request, remote: { region: 0, blocks: l.blocks, epoch: l.epoch } });
      }
      case 'native.create':
        this.s.nat[addressKey(fx.handle)] = { remote: fx.remote, index: fx.index, phase: 'created', landed: false, released: false, abortWanted: false };
        return;
      case 'native.post': {
        const k = addressKey(fx.handle);
        const x = this.s.nat[k];
        // Posting an active or finished transfer is refused (REPOST_ACTIVE) and changes nothing.
        if (x && x.phase === 'created') this.s.nat[k] = { ...x, phase: 'posted' };
        return;
      }
      case 'native.abort': {
        const k = addressKey(fx.handle);
        const x = this.s.nat[k];
        if (x) this.s.nat[k] = { ...x, abortWanted: true };
        return;
      }
      case 'native.release': {
        const k = addressKey(fx.handle);
        const x = this.s.nat[k];
        if (!x) return;
        if (x.released) this.violate('M6', `${k} released twice`);
        const inFlight = x.phase === 'posted';
        const sem = SEMANTICS[this.cfg.backend];
        this.s.nat[k] = inFlight && !sem.releaseInFlightQuiesces ? { ...x, released: true, releasedInFlight: true } : { ...x, released: true };
        // Release is not cancel: with UCX the bytes keep moving after an accepted release.
        return void this.queue.push({ key: k, event: { type: 'RELEASE_RESULT', accepted: true, quiesced: inFlight ? sem.releaseInFlightQuiesces && this.quietAfterRelease(k) : true } as EventObject });
      }
      case 'native.whenQuiesced':
        // Answered by a later local step ("native: handles of r quiescent") once nothing of r touches memory.
        return;
      case 'pool.allocate':
        if (side === 'generation') this.allocate(fx.request);
        return;
      case 'pool.free':
        if (side === 'generation') this.freeBlocks(fx.request, null);
        return;
      case 'pool.retire':
        if (side === 'generation') this.freeBlocks(fx.request, 'retired');
        return;
      case 'prefill.fill':
        return;
      case 'report': {
        const k = `${side}:${fx.request}`;
        const prev = this.s.reports[k];
        if (prev) this.violate('M3', `${k} reported twice (${prev.outcome}, then ${fx.outcome})`);
        this.s.reports[k] = { n: (prev?.n ?? 0) + 1, outcome: fx.outcome, reason: fx.reason };
        return;
      }
      case 'metric':
        if ((fx.name === 'cancelSent' || fx.name === 'cancelRefused') && fx.request) {
          const k = `${side}:${fx.request}`;
          const n = (this.s.cancelsSent[k] ?? 0) + 1;
          this.s.cancelsSent[k] = Math.min(n, RETRY_BOUND + 1);
          if (n > RETRY_BOUND) this.violate('M5', `${k}: cancel sent or refused ${n} times (retried without bound)`);
        }
        return;
    }
  }

  /** shm: a release in flight makes the engine finish its chunk and stop; modelled as: the write lands now. */
  private quietAfterRelease(k: string): boolean {
    const x = this.s.nat[k]!;
    if (!x.landed) this.land(k);
    this.s.nat[k] = { ...this.s.nat[k]!, phase: 'aborted' };
    return true;
  }

  private send(from: Side, msg: PeerMessage): void {
    if (this.s.dead[from]) return;
    if (from === 'context') {
      if (!this.s.dead.generation) this.s.toGen = [...this.s.toGen, msg];
    } else if (!this.s.dead.context) this.s.toCtx = [...this.s.toCtx, msg];
  }

  private allocate(request: string): void {
    const blocks = this.s.blocks;
    const b = blocks.findIndex((x) => x.owner === null);
    if (b < 0) return this.violate('M4', `generation pool: admission granted ${request} but no block is free`);
    const epoch = this.s.allocSeq + 1;
    this.s.allocSeq = epoch;
    this.s.blocks = blocks.map((x, i) => (i === b ? { ...x, owner: `${request}@${epoch}` } : x));
    this.s.leases = { ...this.s.leases, [request]: { blocks: [b], epoch } };
  }

  private freeBlocks(request: string, to: null | 'retired'): void {
    const l = this.s.leases[request];
    if (!l) return;
    this.s.blocks = this.s.blocks.map((x, i) => (l.blocks.includes(i) ? { ...x, owner: to } : x));
    const { [request]: _gone, ...rest } = this.s.leases;
    this.s.leases = rest;
  }

  /** A write of handle `k` lands: its chunk of every target block now holds the writer's bytes. */
  land(k: string): void {
    const x = this.s.nat[k]!;
    this.s.nat[k] = { ...x, landed: true };
    if (!x.remote) return;
    const writer = (parseAddress(k) as RequestAddress).request;
    const tag = `${writer}@${x.remote.epoch}`;
    this.s.blocks = this.s.blocks.map((blk, i) => {
      if (!x.remote!.blocks.includes(i)) return blk;
      if (blk.owner !== tag && blk.owner !== 'retired') this.violate('M1', `a write of ${k} landed in generation block ${i}, which is ${blk.owner === null ? 'free' : `owned by ${blk.owner}`} (written for ${tag})`);
      const chunks = [...blk.chunks];
      chunks[x.index] = tag;
      return { ...blk, chunks };
    });
  }

  /**
   * The generation loop starts decoding `request`: the lifecycle takes DECODE_START and, in the same
   * step (as the server does), the blocks served to decode are verified against the memory model and
   * the result delivered to the lifecycle, which decides the outcome. M2 reports wrong bytes here.
   */
  decodeStart(request: string): void {
    const key = `g:${request}.lifecycle`;
    const before = this.s.actors[key];
    this.stimulus('generation', { kind: 'loop', request, step: 'decodeStart' });
    if (this.s.dead.generation || this.s.actors[key] === before) return;
    const ok = this.verify(request);
    if (!ok) this.violate('M2', servedMismatch(this.s, request));
    this.stimulus('generation', { kind: 'served', request, ok });
  }

  /** A sync notification for `request` arrives: the server verifies the blocks it now holds for it. */
  verify(request: string): boolean {
    const l = this.s.leases[request];
    if (!l) return false;
    const tag = `${request}@${l.epoch}`;
    return l.blocks.every((b) => this.s.blocks[b]!.chunks.every((c) => c === tag));
  }
}

export class ComposedWorld {
  readonly wiring: Record<Side, Wiring>;
  readonly requests: string[];

  constructor(readonly cfg: ComposedConfig) {
    const o = { handles: cfg.bounds.handlesPerRequest, semantics: SEMANTICS[cfg.backend] };
    this.wiring = { context: wiringFor('context', o), generation: wiringFor('generation', o) };
    this.requests = requestIds(cfg.bounds);
  }

  initial(): ComposedState {
    const b = this.cfg.bounds;
    const empty: ComposedState = {
      actors: {},
      timers: [],
      toCtx: [],
      toGen: [],
      notifs: [],
      nat: {},
      blocks: Array.from({ length: this.cfg.genBlocks }, () => ({ owner: null, chunks: Array.from({ length: b.handlesPerRequest }, () => '') })),
      leases: {},
      allocSeq: 0,
      reports: {},
      cancelsSent: {},
      budget: { cancels: b.cancels, duplicates: b.duplicates, reorder: b.reorder, losses: b.losses, peerDeath: b.peerDeath },
      dead: { context: false, generation: false },
      violation: null,
    };
    const d = new Draft(this.cfg, this.wiring, empty);
    d.perform('context', this.wiring.context.start({ blocks: this.requests.length, slots: 1 }));
    d.perform('generation', this.wiring.generation.start({ blocks: this.cfg.genBlocks, slots: 1 }));
    for (const r of this.requests) {
      d.stimulus('context', { kind: 'submit', request: r, blocks: 1 });
      d.stimulus('generation', { kind: 'submit', request: r, blocks: 1 });
    }
    return d.s;
  }

  apply(s: ComposedState, c: Choice): { next: ComposedState; transitions: Draft['transitions'] } {
    const d = new Draft(this.cfg, this.wiring, s);
    c.apply(d);
    const next = d.s;
    checkConsequences(this, next, d);
    return { next, transitions: d.transitions };
  }

  /** Every choice enabled in a world: executor steps and deadlines (local), network, backend, users, deaths (env). */
  choices(s: ComposedState): Choice[] {
    const out: Choice[] = [];
    const alive = (side: Side) => !s.dead[side];
    const can = (key: string, ev: MachineEvent) => {
      const a = s.actors[key];
      return a !== undefined && a.status === 'active' && memoCan(this.cfg.machines[key.startsWith('g:') ? 'generation' : 'context'][roleOf(key)]!, a, ev);
    };
    for (const r of this.requests) {
      // Executor loop steps (local): each only where the actor accepts it.
      const loops: Array<[Side, Parameters<Wiring['inbound']>[0] & { kind: 'loop' }, string, MachineEvent]> = [
        ['context', { kind: 'loop', request: r, step: 'prefill' }, `c:${r}.lifecycle`, { type: 'CONTEXT_DONE' }],
        ['context', { kind: 'loop', request: r, step: 'worker' }, `c:${r}.send`, { type: 'WORKER_STEP' }],
        ['context', { kind: 'loop', request: r, step: 'poll' }, `c:${r}.send`, { type: 'STATUS_POLL' }],
        ['context', { kind: 'loop', request: r, step: 'tick' }, `c:${r}.lifecycle`, { type: 'LOOP_TICK' }],
        ['generation', { kind: 'loop', request: r, step: 'pop' }, `g:${r}.recv`, { type: 'WORKER_POP' }],
        ['generation', { kind: 'loop', request: r, step: 'poll' }, `g:${r}.recv`, { type: 'STATUS_POLL' }],
        ['generation', { kind: 'loop', request: r, step: 'decodeStart' }, `g:${r}.lifecycle`, { type: 'DECODE_START' }],
        ['generation', { kind: 'loop', request: r, step: 'decodeDone' }, `g:${r}.lifecycle`, { type: 'DECODE_DONE' }],
        ['generation', { kind: 'loop', request: r, step: 'tick' }, `g:${r}.lifecycle`, { type: 'LOOP_TICK' }],
      ];
      for (const [side, st, key, ev] of loops) {
        if (alive(side) && can(key, ev)) out.push({ label: `${side === 'context' ? 'ctx' : 'gen'} loop ${r}: ${st.step}`, local: true, request: r, apply: st.step === 'decodeStart' ? (d) => d.decodeStart(r) : (d) => d.stimulus(side, st) });
      }
      // User cancels (env), bounded: wherever a real user could cancel, i.e. the request is live on a
      // live side (its lifecycle active, no outcome reported there yet), whatever the lifecycle's
      // can(CANCEL) says. xstate's can() is false for an unhandled event and for a transition with
      // neither target nor actions, so asking it would hide a lifecycle that ignores a cancel.
      if (s.budget.cancels > 0) {
        for (const side of ['context', 'generation'] as const) {
          if (alive(side) && this.cancellable(s, side, r)) {
            out.push({
              label: `user: cancel ${r} on the ${side} side`,
              local: false,
              request: r,
              apply: (d) => {
                d.s.budget.cancels--;
                d.stimulus(side, { kind: 'cancel', request: r });
              },
            });
          }
        }
      }
      // Context side: a quarantined source lease whose handles are all quiet is confirmed by the agent (local).
      const lease = `c:${r}.lease`;
      if (alive('context') && s.actors[lease]?.matches('fencing' as never) && !this.touching(s, r)) {
        out.push({ label: `ctx native: handles of ${r} quiescent (fence of source blocks)`, local: true, request: r, apply: (d) => d.stimulus('context', { kind: 'quiesced', lease: at.req('context', 'lease', r) }) });
      }
    }
    // The backend, per transfer (env).
    if (alive('context')) {
      for (const [k, x] of Object.entries(s.nat)) {
        const h = parseAddress(k) as RequestAddress;
        if (x.phase !== 'posted') continue;
        if (!x.landed) out.push({ label: `backend: write of ${k.slice(2)} lands`, local: false, request: h.request, apply: (d) => d.land(k) });
        if (x.landed) {
          out.push({
            label: `backend: ${k.slice(2)} DONE`,
            local: false,
            request: h.request,
            apply: (d) => {
              d.s.nat[k] = { ...d.s.nat[k]!, phase: 'done' };
              d.stimulus('context', { kind: 'native', handle: h, status: 'DONE' });
              // The transfer carries the request's notification: sent once every handle of it is done.
              const mine = Object.entries(d.s.nat).filter(([kk]) => (parseAddress(kk) as RequestAddress).request === h.request);
              if (mine.length === this.cfg.bounds.handlesPerRequest && mine.every(([, y]) => y.phase === 'done') && !d.s.dead.generation) d.s.notifs = [...d.s.notifs, h.request];
            },
          });
        }
        out.push({
          label: `backend: ${k.slice(2)} ERROR`,
          local: false,
          request: h.request,
          apply: (d) => {
            d.s.nat[k] = { ...d.s.nat[k]!, phase: 'error' };
            d.stimulus('context', { kind: 'native', handle: h, status: 'ERROR' });
          },
        });
        if (x.abortWanted && SEMANTICS[this.cfg.backend].canAbortInFlight) {
          out.push({
            label: `backend: abort of ${k.slice(2)} confirmed`,
            local: false,
            request: h.request,
            apply: (d) => {
              d.s.nat[k] = { ...d.s.nat[k]!, phase: 'aborted' };
              d.stimulus('context', { kind: 'native', handle: h, status: 'ABORTED' });
            },
          });
        }
      }
    }
    // The control channels and the notification channel (env), with bounded faults.
    const chan = (dir: 'toCtx' | 'toGen', to: Side) => {
      const q = s[dir];
      if (q.length === 0 || !alive(to)) return;
      const name = dir === 'toCtx' ? 'gen→ctx' : 'ctx→gen';
      const deliverAt = (i: number, keep: boolean) => (d: Draft) => {
        const m = d.s[dir][i]!;
        if (!keep) d.s[dir] = [...d.s[dir].slice(0, i), ...d.s[dir].slice(i + 1)];
        d.stimulus(to, { kind: 'control', msg: m });
      };
      out.push({ label: `net ${name}: deliver ${msgLabel(q[0]!)}`, local: false, request: q[0]!.id, apply: deliverAt(0, false) });
      if (s.budget.duplicates > 0) out.push({ label: `net ${name}: deliver ${msgLabel(q[0]!)} and keep a duplicate`, local: false, request: q[0]!.id, apply: (d) => ((d.s.budget.duplicates--, deliverAt(0, true)(d))) });
      if (s.budget.losses > 0) out.push({ label: `net ${name}: lose ${msgLabel(q[0]!)}`, local: false, request: q[0]!.id, apply: (d) => ((d.s.budget.losses--, (d.s[dir] = d.s[dir].slice(1)))) });
      if (s.budget.reorder > 0) for (let i = 1; i < q.length; i++) out.push({ label: `net ${name}: deliver ${msgLabel(q[i]!)} ahead of ${i} older`, local: false, request: q[i]!.id, apply: (d) => ((d.s.budget.reorder--, deliverAt(i, false)(d))) });
    };
    chan('toCtx', 'context');
    chan('toGen', 'generation');
    if (s.notifs.length > 0 && alive('generation')) {
      const r = s.notifs[0]!;
      out.push({
        label: `notif: sync of ${r} arrives`,
        local: false,
        request: r,
        apply: (d) => {
          d.s.notifs = d.s.notifs.slice(1);
          d.stimulus('generation', { kind: 'sync', request: r, ok: d.verify(r) });
        },
      });
      if (s.budget.losses > 0) out.push({ label: `notif: sync of ${r} lost`, local: false, request: r, apply: (d) => ((d.s.budget.losses--, (d.s.notifs = d.s.notifs.slice(1)))) });
    }
    // Peer death (env), bounded: the process stops; its transfers stop writing; the other side sees the socket close.
    if (s.budget.peerDeath > 0) {
      for (const side of ['context', 'generation'] as const) {
        if (!alive(side)) continue;
        out.push({
          label: `${side} process dies`,
          local: false,
          apply: (d) => {
            d.s.budget.peerDeath--;
            d.s.dead = { ...d.s.dead, [side]: true };
            if (side === 'context') {
              d.s.toGen = [];
              d.s.notifs = [];
              for (const [k, x] of Object.entries(d.s.nat)) if (x.phase === 'posted') d.s.nat[k] = { ...x, phase: 'aborted' };
            } else d.s.toCtx = [];
            d.stimulus(side === 'context' ? 'generation' : 'context', { kind: 'peerGone' });
          },
        });
      }
    }
    // Deadlines (local): only those not preceded by an earlier-armed, no-longer deadline (see Timer).
    let minDelay = Infinity;
    for (const t of s.timers) {
      const side: Side = t.key.startsWith('g:') ? 'generation' : 'context';
      // A dead process's deadlines never fire, so they hold back no deadline of the living side.
      if (!alive(side)) continue;
      const due = t.delay < minDelay || !this.cfg.timedDeadlines;
      minDelay = Math.min(minDelay, t.delay);
      if (!due) continue;
      const a = parseAddress(t.key);
      out.push({ label: `deadline ${t.key}: ${timerLabel(t.id)}`, local: true, request: 'request' in a ? a.request : undefined, apply: (d) => d.fire(t.key, t.id) });
    }
    return out;
  }

  /** Whether a user of `side` could still cancel `request`: its lifecycle lives and has reported nothing there. */
  cancellable(s: ComposedState, side: Side, request: string): boolean {
    const lc = s.actors[`${side === 'context' ? 'c' : 'g'}:${request}.lifecycle`];
    return lc !== undefined && lc.status === 'active' && s.reports[`${side}:${request}`] === undefined;
  }

  /** Whether any transfer of `request` can still write (posted, not terminal). */
  touching(s: ComposedState, request: string): boolean {
    return Object.entries(s.nat).some(([k, x]) => x.phase === 'posted' && (parseAddress(k) as RequestAddress).request === request);
  }

  /** Settled: every request reported on every live side, and everything back at rest. */
  settled(s: ComposedState): boolean {
    return this.restProblems(s, true).length === 0;
  }

  /** What is not at rest (for M4 at quiescence, and for the settled predicate). */
  restProblems(s: ComposedState, requireReports: boolean): string[] {
    const p: string[] = [];
    for (const side of ['context', 'generation'] as const) {
      if (s.dead[side] || s.dead[side === 'context' ? 'generation' : 'context']) continue;
      const c = side === 'context' ? 'c' : 'g';
      for (const r of this.requests) {
        if (requireReports && !s.reports[`${side}:${r}`]) p.push(`${side} ${r} has no outcome`);
        const lease = s.actors[`${c}:${r}.lease`];
        if (lease && !(lease.matches('free' as never) || lease.status === 'done')) p.push(`${c}:${r}.lease is ${valueKey(lease)}`);
      }
      const adm = s.actors[`${c}:@server.admission`];
      if (adm && holdersOf(adm).length > 0) p.push(`${side} admission still has holders ${holdersOf(adm).join(',')}`);
    }
    const slots = s.actors['g:@server.slots'];
    if (slots && !s.dead.generation && holdersOf(slots).length > 0) p.push(`receive slot still held by ${holdersOf(slots).join(',')}`);
    const session = s.actors['c:@server.session'];
    if (session && !s.dead.context && (session.context.early as RequestTable<unknown>).size > 0) p.push(`peerSession keeps early info for ${(session.context.early as RequestTable<unknown>).ids().join(',')}`);
    // A fence the generation side still waits on at rest can never be answered usefully (no lease is
    // fencing at rest): an entry held for the life of the peer, one per fenced request.
    const fences = s.actors['g:@server.fences'];
    if (fences && !s.dead.generation && (fences.context.pending as readonly string[]).length > 0) p.push(`fence client keeps a pending fence for ${(fences.context.pending as readonly string[]).join(',')}`);
    for (const [k, x] of Object.entries(s.nat)) if (!s.dead.context && !x.released) p.push(`native transfer ${k} never released`);
    return p;
  }
}

/** The requests an admission actor counts as holding (its context keeps them in grant order). */
function holdersOf(a: AnyMachineSnapshot): string[] {
  return (a.context as { holders: RequestTable<number> }).holders.ids();
}

function msgLabel(m: PeerMessage): string {
  return m.t === 'ready' ? `${m.ready ? 'ready' : 'not-ready'}(${m.id})` : m.t === 'info' ? `info(${m.id}@${m.remote.epoch})` : `${m.t}(${m.id})`;
}

/** `xstate.after.kvTransferTimeout.contextSend.sender.queued` → `kvTransferTimeout in sender.queued`. */
function timerLabel(id: string): string {
  const m = /^xstate\.after\.([^.]+)\.[^.]+\.(.*)$/.exec(id);
  return m ? `${m[1]} in ${m[2]}` : id;
}

/** Consequence invariants over one world (state-level ones; the effect-level ones are raised while applying). */
function checkConsequences(w: ComposedWorld, s: ComposedState, d: Draft): void {
  if (s.violation) return;
  // M2: a block served to decode holds exactly its owner's bytes (checked when decoding starts, in
  // Draft.decodeStart, and here for as long as it decodes).
  for (const r of w.requests) {
    const lc = s.actors[`g:${r}.lifecycle`];
    if (!lc || !lc.matches('GENERATION_IN_PROGRESS' as never)) continue;
    const problem = servedMismatch(s, r);
    if (problem) d.violate('M2', problem);
  }
}

/** Why the blocks served to decode `r` are not exactly its own bytes, or '' when they are. */
function servedMismatch(s: ComposedState, r: string): string {
  const l = s.leases[r];
  const tag = l ? `${r}@${l.epoch}` : null;
  const bad = l?.blocks.find((b) => s.blocks[b]!.chunks.some((c) => c !== tag));
  return !l || bad !== undefined ? `${r} decodes from block ${bad ?? '?'} holding ${l ? JSON.stringify(s.blocks[bad!]!.chunks) : 'no lease'}, not all ${tag}` : '';
}

/** Machines of both sides, production unless a variant substitutes some (by machine id). */
export function productionMachines(): Record<Side, Partial<Record<string, AnyStateMachine>>> {
  return { context: { ...ROLE_MACHINES.context }, generation: { ...ROLE_MACHINES.generation } };
}

/**
 * Snapshots are interned: every snapshot with the same status, value and context gets one small number
 * (the first object seen with that content stands for all of them). The number is what a world's key
 * holds, and what the transition cache is keyed by, so equal actors reached along different paths
 * share one key and one cached step.
 */
const snapIds = new WeakMap<AnyMachineSnapshot, number>();
// Never cleared (a number must keep naming one content for as long as any key holds it); it grows with
// the distinct snapshots seen, which the explored worlds bound.
const snapIntern = new Map<string, number>();
function snapId(a: AnyMachineSnapshot): number {
  let n = snapIds.get(a);
  if (n === undefined) {
    const text = `${a.status[0]}${valueKey(a)}${JSON.stringify(a.context)}`;
    n = snapIntern.get(text);
    if (n === undefined) snapIntern.set(text, (n = snapIntern.size));
    snapIds.set(a, n);
  }
  return n;
}

/**
 * Pure machine steps are deterministic in (machine, snapshot content, event): each is computed once and
 * reused (snapshots are never mutated, so sharing the result between worlds is safe). Bounded: the
 * cache is dropped when it grows past CACHE_MAX entries.
 */
const CACHE_MAX = 200_000;
let stepCache = new WeakMap<AnyStateMachine, Map<string, [AnyMachineSnapshot, unknown[]]>>();
let cached = 0;
function cacheOf(m: AnyStateMachine): Map<string, [AnyMachineSnapshot, unknown[]]> {
  if (cached > CACHE_MAX) {
    // Every machine's entries go at once (the count is over all of them).
    stepCache = new WeakMap();
    cached = 0;
  }
  let c = stepCache.get(m);
  if (!c) stepCache.set(m, (c = new Map()));
  return c;
}
function memoTransition(m: AnyStateMachine, prev: AnyMachineSnapshot, event: EventObject): [AnyMachineSnapshot, unknown[]] {
  const c = cacheOf(m);
  const k = `${snapId(prev)} ${JSON.stringify(event)}`;
  let r = c.get(k);
  if (!r) {
    r = pureTransition(m, prev, event);
    engineStats.transitions++;
    c.set(k, r);
    cached++;
  }
  return r;
}
/** `snapshot.can(event)`, cached like a step (the answer depends on the same three things). */
const canCache = new WeakMap<AnyStateMachine, Map<string, boolean>>();
function memoCan(m: AnyStateMachine, a: AnyMachineSnapshot, ev: MachineEvent): boolean {
  let c = canCache.get(m);
  if (!c) canCache.set(m, (c = new Map()));
  if (c.size > CACHE_MAX) c.clear();
  const k = `${snapId(a)} ${ev.type}`;
  let r = c.get(k);
  if (r === undefined) c.set(k, (r = a.can(ev as never)));
  return r;
}
function memoInitial(m: AnyStateMachine, input: unknown): [AnyMachineSnapshot, unknown[]] {
  const c = cacheOf(m);
  const k = `init ${JSON.stringify(input)}`;
  let r = c.get(k);
  if (!r) {
    r = pureInitialTransition(m, input);
    c.set(k, r);
    cached++;
  }
  return r;
}

/** A compact, deterministic key of a world: each actor's interned snapshot, deadlines, the channels, native, memory. */
export function stateKey(s: ComposedState): string {
  let key = '';
  for (const k of Object.keys(s.actors).sort()) key += `${k}=${snapId(s.actors[k]!)},`;
  key += '|';
  for (const t of s.timers) key += `${t.key}:${t.id},`;
  return `${key}|${JSON.stringify([s.toCtx, s.toGen, s.notifs, s.nat, s.blocks, s.leases, s.allocSeq, s.reports, s.cancelsSent, s.budget, s.dead])}`;
}

/**
 * Symmetry between the handles of a request. Handle i writes slice i of every block (of whichever
 * request owns it), and no machine treats one index differently from another (contextSend counts
 * settled handles; the wiring names a handle only by its address). So renaming the handle indices by
 * one permutation, the same for every request, maps a world to an equivalent one: same futures up to
 * the renaming, same invariant verdicts (M1–M6 and L2 name no index). The key of a world modulo that
 * symmetry is the least of its keys under every permutation (n ≤ 3 handles; more: no reduction).
 * The relabelled parts: handle actors (their address and `handleId`), their deadlines, the native
 * transfers (address and slice index) and the slices of every block.
 */
export function symmetricKey(s: ComposedState, handles: number): string {
  // What no renaming touches is serialised once.
  const rest = JSON.stringify([s.toCtx, s.toGen, s.notifs, s.leases, s.allocSeq, s.reports, s.cancelsSent, s.budget, s.dead]);
  let best = keyUnder(s, null);
  if (handles < 2 || handles > 3 || Object.keys(s.nat).length === 0) return best + rest;
  for (const perm of permutations(handles)) {
    if (perm.every((p, i) => p === i)) continue;
    const k = keyUnder(s, perm);
    if (k < best) best = k;
  }
  return best + rest;
}

const permCache = new Map<number, number[][]>();
function permutations(n: number): number[][] {
  let out = permCache.get(n);
  if (out) return out;
  out = [];
  const rec = (prefix: number[], rest: number[]) => {
    if (rest.length === 0) return void out!.push(prefix);
    rest.forEach((x, i) => rec([...prefix, x], [...rest.slice(0, i), ...rest.slice(i + 1)]));
  };
  rec([], Array.from({ length: n }, (_, i) => i));
  permCache.set(n, out);
  return out;
}

const HANDLE = /#(\d+)\./;
/** A world's key with handle indices renamed by `perm` (null: as they are); native transfers in address order. */
function keyUnder(s: ComposedState, perm: number[] | null): string {
  const rename = (k: string): string => (perm ? k.replace(HANDLE, (_, d: string) => `#${perm[Number(d)]}.`) : k);
  const actors = Object.keys(s.actors).map((k) => {
    const a = s.actors[k]!;
    const to = rename(k);
    return [to, to === k ? snapId(a) : renamedSnapId(a, to)] as const;
  });
  actors.sort((x, y) => (x[0] < y[0] ? -1 : x[0] > y[0] ? 1 : 0));
  let key = '';
  for (const [k, id] of actors) key += `${k}=${id},`;
  key += '|';
  for (const t of s.timers) key += `${rename(t.key)}:${t.id},`;
  const nat = Object.keys(s.nat)
    .map((k) => [rename(k), s.nat[k]!] as const)
    .sort((x, y) => (x[0] < y[0] ? -1 : 1))
    .map(([k, x]) => [k, x.remote, perm ? perm[x.index] : x.index, x.phase, x.landed, x.released, x.abortWanted, x.releasedInFlight === true]);
  const blocks = perm ? s.blocks.map((b) => ({ owner: b.owner, chunks: b.chunks.map((_, i) => b.chunks[perm.indexOf(i)]!) })) : s.blocks;
  return `${key}|${JSON.stringify([nat, blocks])}|`;
}

/** The interned id of a handle actor's snapshot as it would read at address `to` (its handleId renamed). */
function renamedSnapId(a: AnyMachineSnapshot, to: string): number {
  const ctx = a.context as { handleId?: string };
  const handleId = to.slice(2, to.lastIndexOf('.'));
  const text = `${a.status[0]}${valueKey(a)}${JSON.stringify(ctx.handleId === undefined ? ctx : { ...ctx, handleId })}`;
  let n = snapIntern.get(text);
  if (n === undefined) snapIntern.set(text, (n = snapIntern.size));
  return n;
}
