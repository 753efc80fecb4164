/**
 * The wiring of the protocol: ONE table per side (context, generation) that says what each named
 * action a machine emits does — an event to another machine of the same server, or an Effect — and a
 * codec that turns every inbound stimulus into events for actors. Nothing here reads a machine's state:
 * every choice between outcomes is a machine transition, so the explorer sees it.
 *
 * How a server uses it (the explorer's world does exactly the same with modelled effects):
 *
 *   const wiring = wiringFor('context', { handles: 2, semantics });
 *   // 1. a stimulus arrives → events
 *   perform(wiring.inbound({ kind: 'control', msg }));            // also: submit, native, release, sync, served, loop, cancel, peerGone
 *   // 2. an actor emitted a named action (host.route) → effects
 *   perform(wiring.action(parseAddress(actor), action));
 *   // 3. an actor reached its final state (host.onDone) → effects
 *   perform(wiring.done(parseAddress(actor), output));
 *   // perform(): 'deliver' → host.send(addressKey(to), event); 'spawn' → host.spawn(addressKey(at), input);
 *   // 'control.send' → channel; 'native.*' → the agent (a release result comes back through inbound
 *   // { kind: 'release' }, statuses through { kind: 'native' }); 'pool.*' → BlockPool; 'report' → harness.
 *
 * The table is written in one form, into an EffectSink; `action`, `done` and `inbound` collect what it
 * asks for into a list (the explorer's world reads that), and the servers pass themselves as the sink
 * (`actionInto`, `doneInto`, `inboundInto`), performing each effect as it is named, with no list built.
 *
 * Actor names are `addressKey(address)`; `roleOf(name)` picks the machine (see ROLE_MACHINES).
 * Timers stay with the host (machines' `after` deadlines), so they are not stimuli here.
 */
import type { AnyStateMachine } from 'xstate';
import type {
  BackendSemantics,
  ContextSendOutput,
  GenerationReceiveOutput,
  QuiescenceProof,
  RemoteRef,
  RequestOutcome,
  TransferHandleOutput,
  TransferResult,
} from '../../machines/index.js';
import {
  admissionMachine,
  blockLeaseMachine,
  contextSendMachine,
  fenceClientMachine,
  generationReceiveMachine,
  peerSessionMachine,
  requestLifecycleMachine,
  transferHandleMachine,
} from '../../machines/index.js';
import type { EmittedAction, MachineEvent } from '../explore/world.js';
import type { Address, Effect, PeerMessage, RequestAddress, RequestRole, Role, ServerRole, Side } from './effects.js';
import { at } from './effects.js';

export * from './effects.js';

/** The production machine of each role, per side (a variant substitutes entries by machine id). */
export const ROLE_MACHINES: Record<Side, Partial<Record<Role, AnyStateMachine>>> = {
  context: {
    lifecycle: requestLifecycleMachine,
    send: contextSendMachine,
    handle: transferHandleMachine,
    lease: blockLeaseMachine,
    session: peerSessionMachine,
    admission: admissionMachine,
  },
  generation: {
    lifecycle: requestLifecycleMachine,
    recv: generationReceiveMachine,
    lease: blockLeaseMachine,
    fences: fenceClientMachine,
    admission: admissionMachine,
    slots: admissionMachine,
  },
};

export interface WiringOptions {
  /** Transfer handles per request (one per remote rank). */
  handles: number;
  /** What the transfer backend promises (the handles read it). */
  semantics: BackendSemantics;
}

/** Every stimulus a server receives from outside its machines. */
export type Stimulus =
  /** A new request (from the router/harness), needing `blocks` KV blocks. */
  | { kind: 'submit'; request: string; blocks: number }
  /** A user (or router) cancel. */
  | { kind: 'cancel'; request: string }
  /** A control message from the peer server. */
  | { kind: 'control'; msg: PeerMessage }
  /** The peer server's connection closed. */
  | { kind: 'peerGone' }
  /** A (new) peer server process connected. */
  | { kind: 'peerConnected' }
  /** A native transfer reached a terminal status, or its abort was confirmed. */
  | { kind: 'native'; handle: RequestAddress; status: 'DONE' | 'ERROR' | 'ABORTED' }
  /** The synchronous result of native.release. */
  | { kind: 'release'; handle: RequestAddress; accepted: boolean; quiesced: boolean }
  /** Context side: a fenced source lease's handles are quiescent (answer to native.whenQuiesced). */
  | { kind: 'quiesced'; lease: RequestAddress }
  /** Generation side: a sync notification arrived and the server verified the blocks it names. */
  | { kind: 'sync'; request: string; ok: boolean }
  /**
   * Generation side: right after the lifecycle took DECODE_START (same step), the server verified the
   * blocks it serves to decode; `ok` is whether each still holds exactly this request's bytes.
   */
  | { kind: 'served'; request: string; ok: boolean }
  /** One executor-loop step for a request: a prefill completing, a worker step, a status poll, decoding, a loop iteration. */
  | { kind: 'loop'; request: string; step: LoopKind };

export type LoopKind = 'prefill' | 'worker' | 'poll' | 'pop' | 'decodeStart' | 'decodeDone' | 'tick';

type Params = Record<string, unknown>;

/**
 * Where the wiring puts what it asks for, in order. A server performs each effect as it is told (no
 * array, no effect object and no address per delivery); the explorer and every reader of `Effect[]`
 * get the same effects collected (`collect`). The table is written once, in this form.
 */
export interface EffectSink {
  /** Deliver `event` to the actor of a request on this side (a `deliver` effect). */
  toRequest(role: Exclude<RequestRole, 'handle'>, request: string, event: MachineEvent): void;
  /** Deliver `event` to handle `index` of a request. */
  toHandle(request: string, index: number, event: MachineEvent): void;
  /** Deliver `event` to one of this server's own actors. */
  toServer(role: ServerRole, event: MachineEvent): void;
  /** Deliver `event` to an actor by address. */
  to(address: Address, event: MachineEvent): void;
  /** Any effect but a delivery. */
  effect(e: Effect): void;
}

export type ActionWiring = (s: EffectSink, from: Address, p: Params) => void;

const deliver = (to: Address, event: MachineEvent): Effect => ({ type: 'deliver', to, event });

/** The sink that collects: the effects as a list, exactly as a server would perform them. */
class Collect implements EffectSink {
  readonly out: Effect[] = [];
  constructor(private readonly side: Side) {}
  toRequest(role: Exclude<RequestRole, 'handle'>, request: string, event: MachineEvent): void {
    this.out.push(deliver(at.req(this.side, role, request), event));
  }
  toHandle(request: string, index: number, event: MachineEvent): void {
    this.out.push(deliver(at.req(this.side, 'handle', request, index), event));
  }
  toServer(role: ServerRole, event: MachineEvent): void {
    this.out.push(deliver(at.server(this.side, role), event));
  }
  to(address: Address, event: MachineEvent): void {
    this.out.push(deliver(address, event));
  }
  effect(e: Effect): void {
    this.out.push(e);
  }
}

/** What a sink-form function asks for, as a list. */
function collect(side: Side, f: (s: EffectSink) => void): Effect[] {
  const c = new Collect(side);
  f(c);
  return c.out;
}
const reqOf = (from: Address, p: Params): string => ('request' in from ? from.request : String(p.request ?? p.requestId ?? p.leaseId));

/** A transfer result as the lifecycle's event (the classification was made by the side's machine). */
function resultEvent(side: Side, result: TransferResult): MachineEvent {
  if (side === 'context') return result === 'complete' ? { type: 'SEND_COMPLETE' } : { type: 'SEND_FAILED', reason: result };
  return result === 'complete' ? { type: 'RECV_COMPLETE' } : { type: 'RECV_FAILED', reason: result };
}

/** Wiring both sides share: leases, admission, lifecycle bookkeeping. */
function common(side: Side): Record<string, ActionWiring> {
  return {
    // blockLease
    'lease/returnBlocks': (s, f, p) => {
      s.effect({ type: 'pool.free', side, request: reqOf(f, p) });
      s.toServer('admission', { type: 'RETURN', request: reqOf(f, p) });
    },
    'lease/retireBlocks': (s, f, p) => {
      s.effect({ type: 'pool.retire', side, request: reqOf(f, p) });
      s.toServer('admission', { type: 'RETIRE', request: reqOf(f, p) });
    },
    'lease/quarantineEntered': (s, f, p) => s.effect({ type: 'metric', side, name: 'quarantineEntered', request: reqOf(f, p) }),
    'lease/quarantineReleased': (s, f, p) => s.effect({ type: 'metric', side, name: p.by === 'fence' ? 'quarantineReleasedByFence' : 'quarantineReleasedByProof', request: reqOf(f, p) }),
    // requestLifecycle
    'lifecycle/freeResources': (s, f, p) => {
      s.toRequest('lease', reqOf(f, p), { type: 'RELEASE', proof: (p.release ?? null) as QuiescenceProof | null });
      // A request whose side never started may still wait in the admission queue: it leaves it (a late
      // grant cannot leak). One that started was granted, so admission holds nothing of it to withdraw.
      if (p.sideStarted !== true) s.toServer('admission', { type: 'WITHDRAW', request: reqOf(f, p) });
    },
    'lifecycle/requestFinished': (s, f, p) => s.effect({ type: 'report', side, request: reqOf(f, p), outcome: p.outcome as RequestOutcome, reason: String(p.reason) }),
    'lifecycle/respondError': (s, f, p) => s.effect({ type: 'metric', side, name: 'errorResponse', request: reqOf(f, p) }),
  };
}

function contextTable(o: WiringOptions): Record<string, ActionWiring> {
  const side: Side = 'context';
  const shared = common(side);
  const finished = shared['lifecycle/requestFinished']!;
  return {
    ...shared,
    // The session learns that a request that never started sending ended here (it answers an info kept
    // for it). One that started told the session then (REQUEST_STARTED), and its send's end (REQUEST_FINISHED).
    'lifecycle/requestFinished': (s, f, p) => {
      finished(s, f, p);
      if (p.sideStarted !== true) s.toServer('session', { type: 'REQUEST_ENDED', request: reqOf(f, p) });
    },
    'admission/grant': (s, _f, p) => {
      const r = String(p.request);
      s.effect({ type: 'pool.allocate', side, request: r, need: Number(p.need) });
      s.effect({ type: 'spawn', at: at.req(side, 'lease', r), input: { leaseId: r } });
      s.toRequest('lease', r, { type: 'ALLOCATE' });
      s.effect({ type: 'prefill.fill', request: r });
      s.effect({ type: 'spawn', at: at.req(side, 'lifecycle', r), input: { requestId: r, role: 'context' } });
    },
    'lifecycle/startContextSend': (s, f, p) => {
      s.effect({ type: 'spawn', at: at.req(side, 'send', reqOf(f, p)), input: { requestId: reqOf(f, p), handles: o.handles } });
      s.toServer('session', { type: 'REQUEST_STARTED', request: reqOf(f, p) });
    },
    'lifecycle/cancelSide': (s, f, p) => {
      s.effect({ type: 'metric', side, name: 'cancelSent', request: reqOf(f, p) });
      s.toRequest('send', reqOf(f, p), { type: 'CANCEL' });
    },
    'lease/fencePeer': (s, f, p) => s.effect({ type: 'native.whenQuiesced', request: reqOf(f, p), lease: at.req(side, 'lease', reqOf(f, p)) }),
    // The source lease's fence is the agent's own quiescence wait: a late answer to a lease that left
    // fencing is ignored by it, and nothing else is held.
    'lease/withdrawFence': () => {},
    // contextSend
    'send/sendReadySignal': (s, f, p) => s.effect({ type: 'control.send', msg: { t: 'ready', id: reqOf(f, p), ready: true } }),
    'send/signalPeer': (s, f, p) => {
      if (p.notReady === true) s.effect({ type: 'control.send', msg: { t: 'ready', id: reqOf(f, p), ready: false } });
      else if (p.stopped === true) s.effect({ type: 'control.send', msg: { t: 'stopped', id: reqOf(f, p) } });
    },
    'send/startTransfers': (s, f, p) => {
      const r = reqOf(f, p);
      const n = Number(p.handles);
      s.toRequest('lease', r, { type: 'EXPOSE' });
      for (let i = 0; i < n; i++) {
        const h = at.req(side, 'handle', r, i);
        s.effect({ type: 'spawn', at: h, input: { handleId: `${r}#${i}`, semantics: o.semantics } });
        s.effect({ type: 'native.create', handle: h, remote: (p.remote ?? null) as RemoteRef | null, index: i, of: n });
      }
      for (let i = 0; i < n; i++) s.toHandle(r, i, { type: 'POST' });
    },
    'send/cancelTransfers': (s, f, p) => {
      const r = reqOf(f, p);
      const n = Number(p.handles);
      for (let i = 0; i < n; i++) s.toHandle(r, i, { type: 'CANCEL' });
    },
    'send/ackFence': (s, f, p) => s.effect({ type: 'control.send', msg: { t: 'fenceAck', id: reqOf(f, p) } }),
    'send/reportOutcome': (s, f, p) => s.toRequest('lifecycle', reqOf(f, p), resultEvent(side, p.result as TransferResult)),
    // transferHandle
    'handle/postTransfer': (s, f) => s.effect({ type: 'native.post', handle: f as RequestAddress }),
    'handle/abortTransfer': (s, f) => s.effect({ type: 'native.abort', handle: f as RequestAddress }),
    'handle/releaseHandle': (s, f) => s.effect({ type: 'native.release', handle: f as RequestAddress }),
    // peerSession
    'session/forwardInfo': (s, _f, p) => s.toRequest('send', String(p.request), { type: 'REQUEST_INFO', remote: (p.remote ?? undefined) as RemoteRef | undefined }),
    'session/forwardFence': (s, _f, p) => s.toRequest('send', String(p.request), { type: 'FENCE' }),
    'session/ackFence': (s, _f, p) => s.effect({ type: 'control.send', msg: { t: 'fenceAck', id: String(p.request) } }),
    'session/forwardCancel': (s, _f, p) => s.toRequest('send', String(p.request), { type: 'PEER_CANCEL' }),
    'session/answerNotReady': (s, _f, p) => s.effect({ type: 'control.send', msg: { t: 'ready', id: String(p.request), ready: false } }),
  };
}

function generationTable(): Record<string, ActionWiring> {
  const side: Side = 'generation';
  return {
    ...common(side),
    'admission/grant': (s, _f, p) => {
      const r = String(p.request);
      s.effect({ type: 'pool.allocate', side, request: r, need: Number(p.need) });
      s.effect({ type: 'spawn', at: at.req(side, 'lease', r), input: { leaseId: r } });
      s.toRequest('lease', r, { type: 'ALLOCATE' });
      s.toRequest('lifecycle', r, { type: 'SCHEDULED' });
    },
    'slots/grant': (s, _f, p) => s.toRequest('recv', String(p.request), { type: 'SLOT_GRANTED' }),
    'lifecycle/startGenerationReceive': (s, f, p) => {
      s.toRequest('lease', reqOf(f, p), { type: 'EXPOSE' });
      s.effect({ type: 'spawn', at: at.req(side, 'recv', reqOf(f, p)), input: { requestId: reqOf(f, p) } });
    },
    'lifecycle/cancelSide': (s, f, p) => {
      s.effect({ type: 'metric', side, name: 'cancelSent', request: reqOf(f, p) });
      s.toRequest('recv', reqOf(f, p), { type: 'CANCEL' });
    },
    'lifecycle/tellPeerCancelled': (s, f, p) => s.effect({ type: 'control.send', msg: { t: 'cancel', id: reqOf(f, p) } }),
    'lease/fencePeer': (s, f, p) => s.toServer('fences', { type: 'FENCE_REQUEST', request: reqOf(f, p) }),
    'lease/withdrawFence': (s, f, p) => s.toServer('fences', { type: 'FENCE_WITHDRAWN', request: reqOf(f, p) }),
    // generationReceive
    'recv/requestSlot': (s, f, p) => s.toServer('slots', { type: 'WANT', request: reqOf(f, p), need: 1 }),
    'recv/withdrawSlotRequest': (s, f, p) => s.toServer('slots', { type: 'WITHDRAW', request: reqOf(f, p) }),
    'recv/releaseSlot': (s, f, p) => s.toServer('slots', { type: 'RETURN', request: reqOf(f, p) }),
    'recv/tellPeerCancelled': (s, f, p) => s.effect({ type: 'control.send', msg: { t: 'cancel', id: reqOf(f, p) } }),
    'recv/sendRequestInfo': (s, f, p) => s.effect({ type: 'control.sendInfo', request: reqOf(f, p) }),
    'recv/reportOutcome': (s, f, p) => s.toRequest('lifecycle', reqOf(f, p), resultEvent(side, p.result as TransferResult)),
    // Regression variants only: the refused cancel is logged (and counted).
    'recv/cancelRefused': (s, f, p) => s.effect({ type: 'metric', side, name: 'cancelRefused', request: reqOf(f, p) }),
    // fenceClient
    'fences/sendFence': (s, _f, p) => s.effect({ type: 'control.send', msg: { t: 'fence', id: String(p.request) } }),
    'fences/confirmFence': (s, _f, p) => s.toRequest('lease', String(p.request), { type: 'FENCE_CONFIRMED' }),
  };
}

/** Actions that are pure bookkeeping of a regression variant's or engine's own and have no effect. */
const NO_EFFECT = new Set(['send/cancelRefused']);

export interface Wiring {
  side: Side;
  /** The actors every server starts with, and their input. */
  start(capacity: { blocks: number; slots: number }): Effect[];
  /** What a named action of an actor does. Throws on an action the table does not know (the table is total). */
  action(from: Address, a: EmittedAction): Effect[];
  /** `action` into a sink (the side's `dispatcher`). Effects reach the sink in the order `action` lists them. */
  actionInto(s: EffectSink, from: Address, a: EmittedAction): void;
  /** What an actor's final state (its output) does. */
  done(from: Address, output: unknown): Effect[];
  /** `done` into a sink. */
  doneInto(s: EffectSink, from: Address, output: unknown): void;
  /** A stimulus from outside the machines, as events (and spawns). */
  inbound(s: Stimulus): Effect[];
  /** `inbound` into a sink. */
  inboundInto(sink: EffectSink, s: Stimulus): void;
  /** Every action this side's table wires, as `role/action` (for completeness checks). */
  wired(): string[];
}

export type ActionInto = (s: EffectSink, from: Address, a: EmittedAction) => void;

/** Sources of dispatchers made (each source is made unique with it: see dispatcher). */
let dispatchers = 0;

/**
 * A side's action table as one function: a switch on the actor's role, then on the action's type, each
 * case calling its entry; `general` (the error, or a no-effect action) past the table. Roles and action
 * types are the machines' literal strings (internalized), so each case is a pointer comparison, where a
 * lookup in a Map per action hashed the type and probed (about 80 instructions, 22 actions per request in
 * the burst bench), and each case's call has one target, which V8 can inline.
 */
export function dispatcher(byRole: Map<string, Map<string, ActionWiring>>, general: ActionInto): ActionInto {
  const entries: ActionWiring[] = [];
  const roles = [...byRole]
    .map(([role, table]) => {
      const types = [...table].map(([type, w]) => `case ${JSON.stringify(type)}: return W[${entries.push(w) - 1}](s, from, a.params);`);
      return `case ${JSON.stringify(role)}: switch (a.type) { ${types.join(' ')} } break;`;
    })
    .join(' ');
  try {
    // A source of its own (the counter): V8 shares what it learns about code made from one source, and
    // each side's table calls other functions.
    return new Function('W', 'G', `return function dispatch(s, from, a) { switch (from.role) { ${roles} } return G(s, from, a); }; // ${dispatchers++}`)(entries, general) as ActionInto;
  } catch (error) {
    // Code from strings is forbidden (--disallow-code-generation-from-strings): the same table by lookups.
    if (!(error instanceof EvalError)) throw error;
    return (s, from, a) => {
      const w = byRole.get(from.role)?.get(a.type);
      return w !== undefined ? w(s, from, a.params) : general(s, from, a);
    };
  }
}

/**
 * One wiring per (side, handles, semantics) in the process: its functions are stateless, and every
 * server built with the same options shares them. Built per server, each server's table was a new set
 * of closures: V8 keeps a closure's optimized code only while a closure of it lives, so a process that
 * starts servers one after another (the bench's runs, the simulator's seeds, an embedder's restarts)
 * compiled the table again for each, on its helper threads.
 */
const wirings = new Map<string, Wiring>();

export function wiringFor(side: Side, o: WiringOptions): Wiring {
  // A copy of the semantics, which is also the key: the shared wiring must not see a caller's later change to its object.
  const semantics: BackendSemantics = { canAbortInFlight: o.semantics.canAbortInFlight, releaseInFlightQuiesces: o.semantics.releaseInFlightQuiesces };
  const key = `${side}|${o.handles}|${JSON.stringify(semantics)}`;
  let w = wirings.get(key);
  if (w === undefined) wirings.set(key, (w = buildWiring(side, { handles: o.handles, semantics })));
  return w;
}

function buildWiring(side: Side, o: WiringOptions): Wiring {
  const table = side === 'context' ? contextTable(o) : generationTable();
  // Looked up by role, then action type: no key string built per action.
  const byRole = new Map<string, Map<string, ActionWiring>>();
  for (const [key, w] of Object.entries(table)) {
    const [role, type] = key.split('/') as [string, string];
    let m = byRole.get(role);
    if (!m) byRole.set(role, (m = new Map()));
    m.set(type, w);
  }
  // An action the table has no entry for: a no-effect action, or the error.
  const unwired = (_s: EffectSink, from: Address, a: EmittedAction): void => {
    const key = `${from.role}/${a.type}`;
    if (NO_EFFECT.has(key)) return;
    throw new Error(`wiring(${side}): no entry for action ${key}`);
  };
  const actionInto = dispatcher(byRole, unwired);
  const doneInto = (s: EffectSink, from: Address, output: unknown): void => {
    if (!('request' in from)) return;
    const r = from.request;
    switch (from.role) {
      case 'handle': {
        const h = output as TransferHandleOutput;
        s.toRequest('send', r, { type: 'TRANSFERS_SETTLED', outcome: h.outcome, quiesced: h.quiesced, ...(from.index !== undefined ? { index: from.index } : {}) });
        return;
      }
      case 'send': {
        const c = output as ContextSendOutput;
        s.toRequest('lifecycle', r, { type: 'SIDE_QUIESCENT', proof: c.proof !== null, how: c.proof });
        s.toServer('session', { type: 'REQUEST_FINISHED', request: r, quiesced: c.quiesced, wrote: c.proof !== 'neverExposed' });
        return;
      }
      case 'recv': {
        const g = output as GenerationReceiveOutput;
        // The receiver is done, so its own wait cannot touch the slot; its proof (or none) is the lease's.
        s.toRequest('lifecycle', r, { type: 'SIDE_QUIESCENT', proof: g.proof !== null, how: g.proof });
        return;
      }
      default:
        return;
    }
  };
  const inboundInto = (sink: EffectSink, s: Stimulus): void => {
    switch (s.kind) {
      case 'submit':
        if (side === 'generation') sink.effect({ type: 'spawn', at: at.req(side, 'lifecycle', s.request), input: { requestId: s.request, role: 'generation' } });
        sink.toServer('admission', { type: 'WANT', request: s.request, need: s.blocks });
        return;
      case 'cancel':
        return sink.toRequest('lifecycle', s.request, { type: 'CANCEL' });
      case 'peerConnected':
        if (side === 'generation') sink.toServer('fences', { type: 'PEER_CONNECTED' });
        return;
      case 'peerGone':
        return sink.toServer(side === 'context' ? 'session' : 'fences', { type: 'PEER_GONE' });
      case 'control':
        return controlEvents(sink, side, s.msg);
      case 'native':
        return sink.to(s.handle, s.status === 'ABORTED' ? { type: 'ABORTED' } : { type: 'STATUS', status: s.status });
      case 'release':
        return sink.to(s.handle, { type: 'RELEASE_RESULT', accepted: s.accepted, quiesced: s.quiesced });
      case 'quiesced':
        return sink.to(s.lease, { type: 'FENCE_CONFIRMED' });
      case 'sync':
        // The receiver decides what verified (or wrong) data means; a quarantined lease takes it as late proof.
        sink.toRequest('recv', s.request, { type: 'SYNC_VERIFIED', ok: s.ok });
        sink.toRequest('lease', s.request, { type: 'SYNC_VERIFIED', ok: s.ok });
        return;
      case 'served':
        // The lifecycle decides what wrong served bytes mean (the request fails, reason 'corrupted').
        if (side === 'generation') sink.toRequest('lifecycle', s.request, { type: 'SERVED_VERIFIED', ok: s.ok });
        return;
      case 'loop':
        return sink.to(loopTarget(side, s.request, s.step), LOOP_EVENTS[s.step]);
    }
  };
  return {
    side,
    start: ({ blocks, slots }) =>
      side === 'context'
        ? [
            { type: 'spawn', at: at.server(side, 'session'), input: {} },
            { type: 'spawn', at: at.server(side, 'admission'), input: { capacity: blocks } },
          ]
        : [
            { type: 'spawn', at: at.server(side, 'fences'), input: {} },
            { type: 'spawn', at: at.server(side, 'admission'), input: { capacity: blocks } },
            { type: 'spawn', at: at.server(side, 'slots'), input: { capacity: slots } },
          ],
    action: (from, a) => collect(side, (s) => actionInto(s, from, a)),
    actionInto,
    done: (from, output) => collect(side, (s) => doneInto(s, from, output)),
    doneInto,
    inbound: (s) => collect(side, (sink) => inboundInto(sink, s)),
    inboundInto,
    wired: () => Object.keys(table),
  };
}

export const LOOP_EVENTS: Readonly<Record<LoopKind, MachineEvent>> = {
  prefill: { type: 'CONTEXT_DONE' },
  worker: { type: 'WORKER_STEP' },
  poll: { type: 'STATUS_POLL' },
  pop: { type: 'WORKER_POP' },
  decodeStart: { type: 'DECODE_START' },
  decodeDone: { type: 'DECODE_DONE' },
  tick: { type: 'LOOP_TICK' },
};

/** The actor a loop step goes to. */
export function loopTarget(side: Side, request: string, step: LoopKind): RequestAddress {
  if (step === 'worker' || step === 'poll') return at.req(side, side === 'context' ? 'send' : 'recv', request);
  if (step === 'pop') return at.req(side, 'recv', request);
  return at.req(side, 'lifecycle', request);
}

/** A control message as events: no state is read; an actor that does not accept an event ignores it. */
function controlEvents(s: EffectSink, side: Side, m: PeerMessage): void {
  if (side === 'context') {
    if (m.t === 'info') return s.toServer('session', { type: 'INFO', request: m.id, remote: m.remote });
    if (m.t === 'fence') return s.toServer('session', { type: 'FENCE', request: m.id });
    if (m.t === 'cancel') return s.toServer('session', { type: 'PEER_CANCEL', request: m.id });
    return;
  }
  if (m.t === 'ready') {
    s.toRequest('recv', m.id, { type: 'READY_SIGNAL', ready: m.ready });
    // A not-ready is, by the context side's contract, sent only when no write was ever posted: late proof for a quarantined lease.
    if (!m.ready) s.toRequest('lease', m.id, { type: 'PEER_NOT_READY' });
    return;
  }
  if (m.t === 'fenceAck') return s.toServer('fences', { type: 'FENCE_ACK', request: m.id });
  if (m.t === 'stopped') return s.toRequest('recv', m.id, { type: 'PEER_STOPPED' });
}
