import { createWriteStream } from 'node:fs';
import type { WriteStream } from 'node:fs';
import type { AnyMachineSnapshot, AnyStateMachine, EventObject, InspectionEvent } from 'xstate';
import { REGRESSION_VARIANTS } from '../../machines/index.js';
import type { Platform } from '../core/platform.js';
import { nodePlatform } from '../core/platform.js';
import type { Address, Effect, EffectSink, LoopKind, RequestAddress, RequestRole, ServerRole, Side, Stimulus, Wiring } from '../core/wiring.js';
import { addressKey, at, LOOP_EVENTS, loopTarget, parseAddress, ROLE_MACHINES, wiringFor } from '../core/wiring.js';
import { appended } from '../core/lists.js';
import type { MachineEvent } from '../explore/world.js';
import { ActorHost } from '../engine/host.js';
import type { LifecycleHost, TransitionRecord } from '../engine/host.js';
import { PureHost, transitionRecord } from '../engine/pureHost.js';
import type { ActorRef, PureHostCalls } from '../engine/pureHost.js';
import type { EmittedAction } from '../explore/world.js';
import { Agent } from '../native/index.js';
import type { ChildMessage, RequestSpec, ServerConfig, ServerStats } from './config.js';
import { FaultPoints } from './faults.js';
import { Histogram } from './histogram.js';
import { BlockPool } from './pool.js';
import { ReadyQueue } from './readyQueue.js';
import { RequestTable } from './requestTable.js';
import { outcomeLabel, XferMetrics } from '../metrics/index.js';

/**
 * What both servers are: interpreters of the protocol's wiring (src/core/wiring.ts). A stimulus — a
 * submitted request, a control message, a native completion, a loop step — goes through the wiring's
 * codec into events for the machines; what the machines emit goes through the wiring's table into
 * effects, which the server performs (native calls, channel sends, pool operations, reports). The
 * server decides nothing about the protocol: every choice is a machine transition the explorer sees.
 *
 * A subclass performs its side's effects (`effect`) and turns its side's inputs into stimuli.
 */
export type LoopStep = 'worker' | 'poll' | 'admit' | 'slot' | 'decode';

/** The few facts per live request a server keeps beside the machines (pruned when it is reported). */
export interface RequestEntry {
  spec: RequestSpec;
  startedAt: number;
  transitions: number;
  corrupted: boolean;
  bytes: number;
  /** Set when the request is reported and leaves the table (an actor's record may still hold the entry). */
  reported: boolean;
  /** Its actors' records (the automatic loop runs them right after a stimulus of this request). */
  actors?: ActorInfo[];
  /** The request's actor names, built once (not once per delivery). */
  keys?: ByRole<string>;
  handleKeys?: string[];
  /** Its live actors' records by role and by handle index: deliveries find their actor without a name. */
  infos?: ByRole<ActorInfo>;
  handleInfos?: (ActorInfo | undefined)[];
}

/**
 * Something per request actor role, one field each (a request's actor names, its actors' records). A
 * record indexed by the role (`keys[role]`) was a keyed load or store with a different name each time,
 * which V8 answers from its megamorphic cache; a switch on the role compares interned constants.
 */
class ByRole<T> {
  lifecycle: T | undefined = undefined;
  send: T | undefined = undefined;
  recv: T | undefined = undefined;
  lease: T | undefined = undefined;

  get(role: RequestRole): T | undefined {
    switch (role) {
      case 'lifecycle':
        return this.lifecycle;
      case 'send':
        return this.send;
      case 'recv':
        return this.recv;
      case 'lease':
        return this.lease;
      default:
        return undefined;
    }
  }

  set(role: RequestRole, value: T | undefined): void {
    switch (role) {
      case 'lifecycle':
        this.lifecycle = value;
        break;
      case 'send':
        this.send = value;
        break;
      case 'recv':
        this.recv = value;
        break;
      case 'lease':
        this.lease = value;
        break;
      default:
        // A role without a field here (a handle, indexed apart): found by its name instead.
        break;
    }
  }
}

interface ActorInfo {
  /** Its name; null until needed for an actor PureHost spawned by key (`nameOfInfo` builds it). */
  name: string | null;
  readonly addr: Address;
  /** The loop events offered to this actor (it waits in the ready set after a change); undefined: none. */
  readonly kinds: readonly LoopKind[] | undefined;
  /** The events of `kinds`, in the same order (`LOOP_EVENTS[kind]` looked up once per actor, not per offer). */
  readonly loopEvents: readonly EventObject[] | undefined;
  /**
   * The state it is in (NO_KEY before its first record and after it finished), and since when. A string
   * either way: with null beside the configurations' (internalized) keys, comparing two took V8's generic
   * StrictEqual builtin instead of a pointer comparison.
   */
  key: string;
  at: number;
  /** Time-in-state histograms of its machine, by state key (found once, not per transition). */
  byKey: Map<string, Histogram> | null;
  /** Its request's entry, while the request is live (null for server actors). */
  entry: RequestEntry | null;
  /** Membership in the loop's two queues (ReadyQueue's tokens). */
  q0: number;
  q1: number;
  /** The host's reference to the actor (PureHost's spawnRef): it is sent events with no lookup by name. Null with live actors. */
  ref: ActorRef | null;
}

/** What the actors of one role share (ServerBase.roleFacts). */
interface RoleFacts {
  readonly role: string;
  readonly kinds: readonly LoopKind[] | undefined;
  readonly loopEvents: readonly EventObject[] | undefined;
}

/** Rounds of a request's loop steps right after its stimulus (a machine that kept taking steps would be a bug: bounded anyway). */
const MAX_EAGER_ROUNDS = 64;

/** The request a stimulus concerns, if one. */
function requestOf(s: Stimulus): string | undefined {
  switch (s.kind) {
    case 'submit':
    case 'cancel':
    case 'sync':
    case 'served':
    case 'loop':
      return s.request;
    case 'control':
      return s.msg.id;
    case 'native':
    case 'release':
      return s.handle.request;
    case 'quiesced':
      return s.lease.request;
    default:
      return undefined;
  }
}

/** The request actors a report lets go once they are done (handles apart: they are indexed), per side: the roles it has machines for. */
const reapedRoles = (side: Side) => (['lifecycle', 'send', 'recv'] as const).filter((r) => ROLE_MACHINES[side][r] !== undefined);
const REAPED_ROLES: Record<Side, readonly ('lifecycle' | 'send' | 'recv')[]> = { context: reapedRoles('context'), generation: reapedRoles('generation') };
/** Whether a side has transfer handle actors. */
const HAS_HANDLES: Record<Side, boolean> = { context: ROLE_MACHINES.context.handle !== undefined, generation: ROLE_MACHINES.generation.handle !== undefined };

/**
 * Whether an actor waits in the loop's ready set: it has loop events, and its configuration has a
 * transition for one of them (an event it has none for would change nothing). `ref`: the host's
 * reference under PureHost; null for a live actor, which always waits.
 */
function offerable(info: ActorInfo, ref: ActorRef | null): boolean {
  if (info.loopEvents === undefined) return false;
  if (ref === null || !ref.alive || ref.compiled === null) return true;
  return ref.compiled.acceptedOf(ref.snap, info.loopEvents) !== 0;
}

/** ActorInfo.key of an actor with no configuration recorded (no state key is empty). */
const NO_KEY = '';

/** A state value as a string: the state name when atomic at the top, else its JSON. */
const valueKeyOf = (v: unknown): string => (typeof v === 'string' ? v : JSON.stringify(v));

/** PureHost's `nameOf`: an actor spawned by address is named as `addressKey` names it. */
const addressKeyOf = (key: unknown): string => addressKey(key as Address);

/** Actors offered their loop events per turn of the automatic loop before it yields to the event loop. */
const LOOP_SLICE = 16;

/** Loop events the executor offers to each role after it changed: the machine takes or ignores them. */
const LOOP_KINDS: Record<Side, Partial<Record<string, LoopKind[]>>> = {
  context: { lifecycle: ['prefill'], send: ['worker', 'poll'] },
  generation: { recv: ['pop', 'poll'], lifecycle: ['decodeStart', 'decodeDone'] },
};
/** LOOP_KINDS' events, list for list. */
const eventsOf = (bySide: Partial<Record<string, LoopKind[]>>) => Object.fromEntries(Object.entries(bySide).map(([role, kinds]) => [role, kinds!.map((k) => LOOP_EVENTS[k])]));
const LOOP_EVENT_LISTS: Record<Side, Partial<Record<string, EventObject[]>>> = { context: eventsOf(LOOP_KINDS.context), generation: eventsOf(LOOP_KINDS.generation) };
// The loop sends a step's event straight to the actor it offers it to (loopStep): that must be the
// wiring's loopTarget for the step, checked once here rather than trusted.
for (const side of ['context', 'generation'] as const) {
  for (const [role, kinds] of Object.entries(LOOP_KINDS[side])) {
    for (const k of kinds ?? []) if (loopTarget(side, 'r', k).role !== role) throw new Error(`loop step '${k}' is offered to ${side} ${role} but the wiring targets ${loopTarget(side, 'r', k).role}`);
  }
}

function withVariants(machines: Record<string, AnyStateMachine>, names: readonly string[]): Record<string, AnyStateMachine> {
  const out = { ...machines };
  for (const name of names) {
    const v = REGRESSION_VARIANTS.find((x) => x.name === name);
    if (!v) throw new Error(`unknown variant '${name}'; known: ${REGRESSION_VARIANTS.map((x) => x.name).join(', ')}`);
    // A variant of the other side's machine leaves this server as it is.
    for (const [role, m] of Object.entries(out)) if (m.id === v.replaces) out[role] = v.machine;
  }
  return out;
}

/** Actions performed between two renewals of a server's scratch object (a power of two; see `scratch`). */
const SCRATCH_RENEWAL = 256;

/** See ServerBase.scratch. */
class Scratch {
  /** The entry of the request whose actor's action is being performed (its deliveries find their actors there); null outside one. */
  sinkFrom: RequestEntry | null = null;
  /** The address of the actor being spawned (its record is made from it, not from a parse of its name). */
  spawning: Address | null = null;
  /** Its name, or null when it is spawned by address (PureHost.spawnAt). */
  spawningName: string | null = null;
  /** Its request's entry (found from the spawning actor's, without a lookup, in the usual case). */
  spawningEntry: RequestEntry | null = null;
}

export abstract class ServerBase {
  readonly agent: Agent;
  readonly pool: BlockPool;
  readonly host: LifecycleHost;
  /** The host when it is a PureHost (the executor's default): actors are then addressed by reference. */
  private readonly pure: PureHost | null;
  readonly wiring: Wiring;
  readonly side: Side;
  /** Requests submitted and not yet reported: the only per-request table, pruned on report. */
  readonly requests = new RequestTable<RequestEntry>();
  readonly quarantine = { entered: 0, releasedByProof: 0, releasedByFence: 0 };
  readonly counters = { reported: 0, errorResponses: 0, cancelRefused: 0, retiredLeases: 0 };
  protected readonly faults: FaultPoints;

  /** Time in state per machine and state key (two levels: no string built per transition). */
  private readonly timeInState = new Map<string, Map<string, Histogram>>();
  /**
   * The records of live actors by name, under ActorHost (its callbacks name the actor). Under PureHost the
   * host keeps each record as its actor's owner and hands it back: no second table keyed by name to fill
   * and empty per actor.
   */
  private readonly actorInfo = new Map<string, ActorInfo>();
  private readonly logTransitions = process.env.XFERSTATE_LOG === '1';
  private readonly keepTimeInState: boolean;
  /**
   * The configuration the hot paths read, copied here: `config`'s hidden class is its caller's (the
   * subclasses' `{ ...config, role }` makes a new one per server once that spread has seen several
   * shapes), so code reading it was deoptimized and recompiled for every server a process made.
   */
  private readonly manualLoop: boolean;
  private readonly handlesPerRequest: number;
  /** Actors that changed since the loop last offered them its events (a ready queue, not a scan). */
  private ready = new ReadyQueue<ActorInfo>(0);
  /** The iteration in progress: actors still to be offered their loop events (the automatic loop runs it in slices). */
  private batch = new ReadyQueue<ActorInfo>(1);
  private readonly trace?: WriteStream;
  /** Prometheus metrics, when the server is asked to serve them (`metricsPort`). */
  readonly metrics?: XferMetrics;
  private scheduled = false;
  private closed = false;
  private seq = 0;

  constructor(
    readonly config: ServerConfig,
    protected readonly emit: (m: ChildMessage) => void,
    inspect?: (ev: InspectionEvent) => void,
    readonly platform: Platform = nodePlatform,
  ) {
    this.side = config.role;
    this.keepTimeInState = config.timeInState === true;
    this.manualLoop = config.loop === 'manual';
    this.handlesPerRequest = config.handlesPerRequest ?? 1;
    this.wantsRecords = config.metricsPort !== undefined || config.tracePath !== undefined || this.logTransitions;
    this.agent = new Agent(config.name, {
      backend: config.backend,
      progress: config.progress,
      ...(config.copyThreads ? { copyThreads: config.copyThreads } : {}),
      ...(config.chunkBytes ? { chunkBytes: config.chunkBytes } : {}),
    });
    // The sender's blocks are written only here (the KV fill before each post): their poison is checked
    // right before that fill. The receiver's are written by the peer: checked when allocated.
    this.pool = new BlockPool(this.agent, config.blockBytes, config.poolBlocks, { checkPoison: config.role === 'context' ? 'firstWrite' : 'allocate' });
    this.wiring = wiringFor(this.side, { handles: this.handlesPerRequest, semantics: config.semantics ?? this.agent.semantics });
    this.faults = new FaultPoints(this.side, (id) => this.requests.get(id)?.spec.faults ?? []);
    if (config.tracePath) this.trace = createWriteStream(config.tracePath, { flags: 'a' });
    if (config.metricsPort !== undefined) {
      const m = (this.metrics = new XferMetrics({ labels: { server: config.name } }));
      m.track(this.side, 'requests', () => this.requests.size);
      m.track(this.side, 'leases_quarantined', () => this.quarantine.entered - this.quarantine.releasedByProof - this.quarantine.releasedByFence);
      m.track(this.side, 'blocks_held', () => this.pool.stats().heldBlocks);
    }
    const machines = withVariants(ROLE_MACHINES[this.side] as Record<string, AnyStateMachine>, config.variants ?? []);
    // The host's callbacks are this class's methods, bound, not arrows written here: V8 keeps a closure's
    // optimized code only while a closure of it lives, so every server started after the last one was
    // collected compiled its arrows again (with all they inline) on the helper threads. A bound method
    // runs the method's own code, compiled once per process. PureHost takes route and onDone from
    // `calls` instead (see QuietCalls); ActorHost calls these.
    const common = {
      machines,
      delays: config.delays,
      route: this.routeAction.bind(this),
      onDone: this.actorDone.bind(this),
      onTransition: this.onTransition.bind(this),
      clock: platform.clock,
    };
    // Live actors when someone watches them (the inspector needs their inspection stream); otherwise
    // the same machines in reducer mode, several times cheaper per event.
    this.host = inspect || config.host === 'actors' ? new ActorHost({ ...common, idPrefix: this.side === 'context' ? 'ctx/' : 'gen/', recordEvents: config.tracePath !== undefined, ...(inspect ? { inspect } : {}) }) : new PureHost({ ...common, inPlace: true, nameOf: addressKeyOf, calls: this.wantsRecords || this.keepTimeInState ? new ServerBase.RecordingCalls(this) : new ServerBase.QuietCalls(this) });
    this.pure = this.host instanceof PureHost ? this.host : null;
    this.perform(this.wiring.start({ blocks: config.poolBlocks, slots: config.recvSlots }));
  }

  /** The host's `route`: an actor's action through its role's wiring table (PureHost hands back the actor's record as `owner`; live actors are looked up by name). */
  private routeAction(_h: unknown, actor: string, action: EmittedAction, owner?: unknown): void {
    const info = owner !== undefined ? (owner as ActorInfo) : this.infoOf(actor);
    const s = (++this.routed & (SCRATCH_RENEWAL - 1)) === 0 ? this.renewScratch() : this.scratch;
    const prev = s.sinkFrom;
    s.sinkFrom = info.entry;
    this.performing++;
    try {
      this.dispatchAction(this.sink, info.addr, action);
    } finally {
      this.performing--;
      this.scratch.sinkFrom = prev;
    }
  }

  /** The host's `onDone`: what an actor's final state does. */
  private actorDone(_h: unknown, actor: string, output: unknown, owner?: unknown): void {
    const prev = this.scratch.sinkFrom;
    this.scratch.sinkFrom = null;
    this.performing++;
    try {
      this.wiring.doneInto(this.sink, owner !== undefined ? (owner as ActorInfo).addr : this.addr(actor), output);
    } finally {
      this.performing--;
      this.scratch.sinkFrom = prev;
    }
  }

  /** A stimulus's events and effects, performed as the wiring names them (no list of effects built). */
  protected performInbound(s: Stimulus): void {
    const prev = this.scratch.sinkFrom;
    this.scratch.sinkFrom = null;
    this.performing++;
    try {
      this.wiring.inboundInto(this.sink, s);
    } finally {
      this.performing--;
      this.scratch.sinkFrom = prev;
    }
  }

  // ---- stimuli -------------------------------------------------------------------------------

  submit(given: RequestSpec): void {
    // The id as given. Internalizing it (V8's one string object per content, so that id comparisons are
    // pointer compares; ids from JSON arrive so already) cost more than it saved: single-threaded
    // instruction pairs 298,490/299,974 with it, 296,189/297,022 without (a dictionary object, a store
    // and Object.keys in V8's runtime per submit).
    const spec = { ...given };
    this.requests.set(spec.id, { spec, startedAt: this.platform.clock.now(), transitions: 0, corrupted: false, bytes: 0, reported: false });
    this.faults.submitted(spec.faults);
    this.stimulus({ kind: 'submit', request: spec.id, blocks: spec.blocks });
  }

  cancel(id: string): void {
    this.stimulus({ kind: 'cancel', request: id });
  }

  protected stimulus(s: Stimulus): void {
    this.performInbound(s);
    // Not from inside another effect: the host may be mid-step there, and a loop event sent then would
    // only be queued, so the step's after-work (the served-bytes check) would not follow it.
    if (!this.manualLoop && this.performing === 0) this.runRequest(requestOf(s));
    this.schedule();
  }

  /**
   * The automatic loop's first move after a stimulus: the actors of the request it concerns take their
   * loop steps now, round after round (each actor one step per round), until none takes one. A request
   * whose info just arrived creates, fills and posts its transfer at once, and one whose data just
   * landed is served while the bytes are still in cache, as a hand-written callback would do; the rest
   * wait for the loop. Only which ready actor goes first changes: every order is one the explorer
   * and the simulator (which run the loop by hand) take too.
   */
  private runRequest(id: string | undefined): void {
    if (id === undefined || this.inLoop) return;
    const e = this.requests.get(id);
    if (e === undefined || e.actors === undefined) return;
    this.inLoop = true;
    try {
      for (let round = 0; round < MAX_EAGER_ROUNDS; round++) {
        let took = false;
        // By index, the list read at each step: an actor spawned meanwhile (newInfo may replace the
        // list with a longer one) is offered in this round, as when the list was pushed onto.
        for (let k = 0; k < e.actors!.length; k++) {
          const info = e.actors![k]!;
          if (!this.ready.delete(info)) continue;
          if (this.offer(info)) took = true;
        }
        if (!took) break;
      }
    } finally {
      this.inLoop = false;
    }
  }
  private inLoop = false;

  /**
   * Conformance only: deliver one stimulus exactly as the loop or a peer would (a path generated from
   * the explored model drives the server step by step through this).
   */
  inject(s: Stimulus): void {
    if (s.kind !== 'loop') return this.stimulus(s);
    // A loop step goes the loop's way: what the server does after the step (the served-bytes check)
    // belongs to the same step, as in the explored model.
    this.loopStep(this.key(loopTarget(this.side, s.request, s.step)), s.request, s.step);
    this.schedule();
  }

  /**
   * Conformance only: when set, asynchronous native completions (a terminal status, a confirmed abort,
   * a fenced lease's quiescence) are handed here instead of being delivered, so a test decides when
   * each arrives — as the explored model does.
   */
  holdCompletions: ((what: { kind: 'native' | 'abort' | 'quiesced'; key: string; status?: string }, deliver: () => void) => void) | null = null;

  /** A completion of `kind` for the actor at `at`: delivered now, or held (its actor's name built only then). */
  protected complete(kind: 'native' | 'abort' | 'quiesced', at: Address, status: string | undefined, deliver: () => void): void {
    if (this.isClosed) return;
    if (this.holdCompletions) this.holdCompletions(status === undefined ? { kind, key: this.key(at) } : { kind, key: this.key(at), status }, deliver);
    else deliver();
  }

  /** Manual loop: run one iteration (the `only` filter is kept for callers of the old loop; it is ignored). */
  stepLoop(_only?: LoopStep): boolean {
    return this.iterate();
  }

  /**
   * One executor iteration: offer the loop's events (prefill done, a worker step, a status poll, a
   * worker pop, decoding) to the actors that changed since they were last offered them. Each actor
   * takes at most one loop step per iteration, so status polls interleave with worker steps as in the
   * real worker. Work is proportional to what changed, not to what is alive. With a `limit`, only that
   * many actors are offered and the rest of the iteration waits for the next call (the automatic loop
   * yields to the event loop between slices); the manual loop takes whole iterations.
   */
  protected iterate(limit = Infinity): boolean {
    if (this.batch.size === 0) {
      if (this.ready.size === 0) return false;
      // Two sets swapped per iteration: actors that change during this one wait in the other.
      const b = this.batch;
      this.batch = this.ready;
      this.ready = b;
    }
    let offered = 0;
    this.inLoop = true;
    try {
      for (let info = this.batch.shift(); info !== undefined; info = this.batch.shift()) {
        this.offer(info);
        if (++offered >= limit) break;
      }
    } finally {
      this.inLoop = false;
    }
    return this.batch.size > 0 || this.ready.size > 0;
  }

  /** Offer an actor its loop events in order until it takes one; true when it took one. */
  private offer(info: ActorInfo): boolean {
    const kinds = info.kinds;
    if (kinds === undefined) return false;
    const addr = info.addr as RequestAddress;
    const ref = info.ref;
    if (ref !== null) {
      // By reference (PureHost, which sets every actor's ref at its spawn): no lookup of the actor at all.
      const pure = this.pure!;
      const events = info.loopEvents!;
      // Only the events its configuration has a transition for (the rest would change nothing).
      const accepted = ref.compiled !== null && ref.alive ? ref.compiled.acceptedOf(ref.snap, events) : -1;
      for (let i = 0; i < kinds.length; i++) {
        if ((accepted & (1 << i)) === 0 || !pure.tryStepRef(ref, events[i]!)) continue;
        this.afterLoop(addr.request, kinds[i]!);
        return true;
      }
      return false;
    }
    // Live actors (ActorHost): by name.
    const name = this.nameOfInfo(info);
    for (const step of kinds) {
      const snap = this.host.actor(name);
      if (!snap || snap.status !== 'active') return false;
      // An event the actor's configuration has no transition for would change nothing: don't offer it.
      if (this.host.accepts && !this.host.accepts(name, LOOP_EVENTS[step].type)) continue;
      if (this.loopStep(name, addr.request, step)) return true;
    }
    return false;
  }

  /** Offer one loop event to the actor `name`; when the actor took it, the side's after-step work runs. */
  private loopStep(name: string, request: string, step: LoopKind): boolean {
    const before = this.changeMark(name);
    // The wiring's translation of a loop stimulus, without building it: `name` is loopTarget's actor
    // (the loop offers a step only to the role it targets), and the event is LOOP_EVENTS[step].
    this.host.send(name, LOOP_EVENTS[step]);
    if (this.changeMark(name) === before) return false;
    this.afterLoop(request, step);
    return true;
  }

  /** What changes when the actor's snapshot changes: its version where the host steps in place, else the snapshot object. */
  private changeMark(name: string): unknown {
    return this.host.version ? this.host.version(name) : this.host.actor(name);
  }

  /**
   * Actors waiting in the automatic loop's sets while no turn of it is scheduled: they would wait for
   * some unrelated stimulus to run the loop (0 under the manual loop, or when closed). The simulator
   * checks that this is 0 whenever a step has settled: the loop is woken by whatever made its work.
   */
  get strandedLoopWork(): number {
    if (this.manualLoop || this.closed || this.scheduled) return 0;
    return this.ready.size + this.batch.size;
  }

  /** Run the executor loop soon (an event may have made work). */
  schedule(): void {
    if (this.scheduled || this.closed || this.manualLoop) return;
    this.scheduled = true;
    this.platform.defer(this.loopTurn);
  }

  /**
   * One turn of the automatic loop, made once: an arrow written inside schedule() made V8 allocate a
   * context on every call of schedule(), already-scheduled or not, and it is called per stimulus.
   */
  private readonly loopTurn = this.turn.bind(this);
  private turn(): void {
    this.scheduled = false;
    if (this.closed) return;
    // A slice of the iteration, then back to the event loop: completions and notifications that
    // arrived meanwhile are taken between slices, so copies overlap the next fills and a request's
    // data is served soon after it landed (a whole iteration at 128 requests in flight handled them
    // in waves: every fill, then every copy, then every receipt, then every decode).
    if (this.iterate(LOOP_SLICE)) this.schedule();
  }

  // ---- effects -------------------------------------------------------------------------------

  /** Effects being performed (perform nests: an effect may deliver a stimulus). */
  private performing = 0;

  /** `from`: the entry of the request whose actor made these effects, if one (its deliveries find their actors there). */
  protected perform(effects: Effect[], from: RequestEntry | null = null): void {
    this.performing++;
    try {
      for (const e of effects) this.performOne(e, from);
    } finally {
      this.performing--;
    }
  }

  /**
   * What the server is in the middle of (the request whose actor's action is being performed, the actor
   * being spawned), kept apart from the server and renewed every SCRATCH_RENEWAL actions. These fields are
   * written with young objects several times per request; the server lives long and is promoted to V8's
   * old generation, where each such store took the write barrier stub (about 50 instructions). The
   * scratch object is replaced before it is old.
   */
  private scratch = new Scratch();
  private routed = 0;

  /** A new scratch object with the old one's values (safe mid-call: callers restore into `this.scratch`). */
  private renewScratch(): Scratch {
    return (this.scratch = Object.assign(new Scratch(), this.scratch));
  }

  /**
   * The sink the wiring writes into, one per server: a class made once (its code is shared by every
   * server), kept off the server's public surface, that calls the server's private methods below.
   */
  private static readonly Sink = class implements EffectSink {
    constructor(private readonly server: ServerBase) {}
    toRequest(role: Exclude<RequestRole, 'handle'>, request: string, event: MachineEvent): void {
      this.server.deliverToRequest(role, request, event);
    }
    toHandle(request: string, index: number, event: MachineEvent): void {
      this.server.deliverToHandle(request, index, event);
    }
    toServer(role: ServerRole, event: MachineEvent): void {
      this.server.deliverToServer(role, event);
    }
    to(address: Address, event: MachineEvent): void {
      this.server.deliverTo(address, event, this.server.scratch.sinkFrom);
    }
    effect(e: Effect): void {
      this.server.performOne(e, this.server.scratch.sinkFrom);
    }
  };
  private readonly sink: EffectSink = new ServerBase.Sink(this);

  /**
   * What PureHost calls on this server (PureHostOptions.calls), where nobody reads transitions: classes
   * made once, so that the host's calls are method calls V8 can inline (a bound method per server was a
   * value it could not see through). RecordingCalls observes with observeChange instead.
   */
  private static readonly QuietCalls = class implements PureHostCalls {
    constructor(protected readonly server: ServerBase) {}
    route(h: PureHost, actor: string, action: EmittedAction, owner: unknown): void {
      this.server.routeAction(h, actor, action, owner);
    }
    onDone(h: PureHost, actor: string, output: unknown, owner: unknown): void {
      this.server.actorDone(h, actor, output, owner);
    }
    ownerOf(name: string | null): unknown {
      return this.server.newInfo(name);
    }
    onChange(ref: ActorRef, event: EventObject, from: unknown, byTimer: boolean): void {
      this.server.observeQuietly(ref, event, from, byTimer);
    }
  };
  private static readonly RecordingCalls = class extends ServerBase.QuietCalls {
    override onChange(ref: ActorRef, event: EventObject, from: unknown, byTimer: boolean): void {
      this.server.observeChange(ref, event, from, byTimer);
    }
  };

  /** A delivery to an actor of a request (EffectSink.toRequest). */
  private deliverToRequest(role: Exclude<RequestRole, 'handle'>, request: string, event: MachineEvent): void {
    if (!this.sendByRef(this.entryOf(request, this.scratch.sinkFrom)?.infos?.get(role), event)) this.host.send(this.key(at.req(this.side, role, request)), event);
  }

  /** A delivery to a transfer handle of a request (EffectSink.toHandle). */
  private deliverToHandle(request: string, index: number, event: MachineEvent): void {
    if (!this.sendByRef(this.entryOf(request, this.scratch.sinkFrom)?.handleInfos?.[index], event)) this.host.send(this.key(at.req(this.side, 'handle', request, index)), event);
  }

  /** A delivery to one of the server's own actors (EffectSink.toServer). */
  private deliverToServer(role: ServerRole, event: MachineEvent): void {
    if (!this.sendByRef(this.serverInfo(role), event)) this.host.send(this.key(at.server(this.side, role)), event);
  }

  private deliverTo(to: Address, event: MachineEvent, from: RequestEntry | null): void {
    if (!this.sendByRef(this.infoAt(to, from), event)) this.host.send(this.key(to), event);
  }

  /** Send to a live actor by the host's reference (PureHost); false when there is none, and the caller sends by name. */
  private sendByRef(info: ActorInfo | undefined, event: MachineEvent): boolean {
    if (info === undefined || info.ref === null) return false;
    this.pure!.sendRef(info.ref, event);
    return true;
  }

  /** A live request's entry: `from` when it is that request's (the usual case: no lookup), else the table's. */
  private entryOf(request: string, from: RequestEntry | null): RequestEntry | undefined {
    return from !== null && from.spec.id === request ? from : this.requests.get(request);
  }

  private performOne(e: Effect, from: RequestEntry | null): void {
    switch (e.type) {
      case 'deliver':
        this.deliverTo(e.to, e.event, from);
        break;
      case 'spawn':
        this.spawn(e.at, e.input, from);
        break;
      case 'report':
        this.report(e.request, e.outcome, e.reason);
        break;
      case 'metric':
        this.metric(e.name);
        break;
      case 'pool.allocate':
        if (!this.pool.allocate(e.request, e.need, this.requests.get(e.request)?.spec.number ?? 0)) throw new Error(`admission granted ${e.need} blocks to ${e.request} but the pool has ${this.pool.stats().freeBlocks}`);
        break;
      case 'pool.free':
        this.pool.giveBack(e.request);
        this.forgetLease(e.request, from);
        this.schedule();
        break;
      case 'pool.retire':
        this.metrics?.metric(this.side, 'leaseRetired');
        this.counters.retiredLeases++;
        this.pool.retire(e.request);
        this.forgetLease(e.request, from);
        break;
      default:
        this.sideEffect(e);
    }
  }

  /** This side's own effects (native calls, channel sends). */
  protected abstract sideEffect(e: Effect): void;

  /**
   * `this.wiring.actionInto`, called from a method of each side's own class: a call site shared by both
   * sides met two dispatchers (one per side's table) and went megamorphic, a generic call each of the 22
   * actions per request, in a process that runs both (the bench, the simulator). Each side's site meets
   * its own.
   */
  protected abstract dispatchAction(s: EffectSink, from: Address, a: EmittedAction): void;

  /** Work a side does after a loop step its machine took (verification when serving; a fault's cancel). */
  protected afterLoop(_request: string, _step: LoopKind): void {}
  protected afterSpawn(_at: Address): void {}

  /** `from`: as with `perform`, the entry of the request whose actor asked for the spawn (its names are kept there). */
  private spawn(at: Address, input: unknown, from: RequestEntry | null): void {
    // PureHost does not look the name up at a spawn by reference: a second live actor at an address is refused here.
    if (this.pure !== null && this.infoAt(at, from)?.ref?.alive === true) throw new Error(`actor ${this.key(at, from)} already exists`);
    // Live actors are named at their spawn. PureHost's are spawned by address and named only if a name is
    // ever needed (a lookup by name, the trace, the transition log): the executor reaches them by reference.
    const name = this.pure === null ? this.key(at, from) : null;
    if (this.trace) this.trace.write(`${JSON.stringify({ seq: this.seq++, t: this.platform.clock.now(), kind: 'spawn', server: this.side, actor: (name ?? this.key(at, from)).slice(2), input })}\n`);
    // The host asks for the actor's record (ownerOf) during the spawn: it gets this address, not a parse of the name.
    const sc = this.scratch;
    sc.spawning = at;
    sc.spawningName = name;
    // The spawning actor's entry when it is this request's and still in the table (else the table's, as newInfo had it).
    sc.spawningEntry = !('request' in at) ? null : from !== null && from.spec.id === at.request && !from.reported ? from : (this.requests.get(at.request) ?? null);
    let ref: ActorRef | null = null;
    try {
      if (this.pure !== null) ref = this.pure.spawnAt(at, input, at.role);
      else this.host.spawn(name!, input);
    } finally {
      // (Into the scratch object of now: an action inside the spawn may have renewed it.)
      const sc2 = this.scratch;
      sc2.spawning = null;
      sc2.spawningName = null;
      sc2.spawningEntry = null;
    }
    // PureHost keeps the record as the actor's owner (no table of records by name here; read from the
    // reference, not from a field the spawn set: the actor's first step may have spawned others meanwhile).
    // Live actors are looked up by name.
    const info = ref !== null ? (ref.owner as ActorInfo) : this.infoOf(name!);
    info.ref = ref;
    this.link(info);
    if (offerable(info, ref)) this.ready.add(info);
    this.afterSpawn(at);
  }

  private metric(name: Extract<Effect, { type: 'metric' }>['name']): void {
    this.metrics?.metric(this.side, name);
    switch (name) {
      case 'quarantineEntered':
        this.quarantine.entered++;
        break;
      case 'quarantineReleasedByProof':
        this.quarantine.releasedByProof++;
        break;
      case 'quarantineReleasedByFence':
        this.quarantine.releasedByFence++;
        break;
      case 'errorResponse':
        this.counters.errorResponses++;
        break;
      case 'cancelRefused':
        this.counters.cancelRefused++;
        break;
      default:
        break;
    }
  }

  /** The lifecycle finished the request with a typed outcome: report it once and forget the request. */
  protected report(id: string, outcome: 'completed' | 'failed' | 'cancelled', reason: string): void {
    const e = this.requests.get(id);
    if (!e) return;
    this.requests.delete(id);
    e.reported = true;
    this.counters.reported++;
    // The outcome is the lifecycle's (served bytes that failed verification already made it 'failed',
    // reason 'corrupted'); `corrupted` is what the server observed, reported beside it.
    const corrupted = e.corrupted;
    this.metrics?.requestFinished(this.side, outcomeLabel(outcome, reason));
    this.emit({
      t: 'done',
      report: {
        id,
        role: this.side,
        finalState: this.finalState(id, e),
        outcome,
        reason,
        corrupted,
        bytes: e.bytes,
        logLines: e.transitions,
        transitions: e.transitions,
        startedAt: e.startedAt,
        endedAt: this.platform.clock.now(),
      },
    });
    this.afterReport(id, e);
  }

  /** Drop the machines of a finished request once each is finished (a side still draining stays). */
  private afterReport(id: string, e: RequestEntry): void {
    this.platform.defer(this.reap.bind(this, id, e));
  }

  /** Drop an actor after the step that finished with it (its blocks are back, or it reached its end). */
  private forget(name: string): void {
    this.platform.defer(this.removeNamed.bind(this, name));
  }

  /** Remove the actor of this name and drop its record (read first: PureHost lets go of it at removal). */
  private removeNamed(name: string): void {
    const info = this.infoNamed(name);
    this.host.remove(name);
    if (info !== undefined) this.drop(info);
  }

  /** `removeNamed` by the actor's record and reference (PureHost): no name looked up. */
  private removeByRef(info: ActorInfo, ref: ActorRef): void {
    this.pure!.removeRef(ref);
    this.drop(info);
  }

  /** `forget` of a request's lease, by its record where the host has references (no name built or looked up). */
  private forgetLease(request: string, from: RequestEntry | null): void {
    const info = this.infoAt({ side: this.side, role: 'lease', request }, from);
    if (info === undefined || info.ref === null) return this.forget(addressKey({ side: this.side, role: 'lease', request }));
    this.platform.defer(this.removeIfLinked.bind(this, info));
  }

  private removeIfLinked(info: ActorInfo): void {
    // Dropped meanwhile (its side finished after the report and was forgotten by name): nothing to do.
    if (info.ref !== null) this.removeByRef(info, info.ref);
  }

  /** `e`: the request's entry, whose actors' records and names were kept when they were spawned (none built again here). */
  protected reap(id: string, e?: RequestEntry): void {
    // Only the roles this side has: a name built and looked up for a role it never spawns found nothing, per request.
    for (const role of REAPED_ROLES[this.side]) {
      const info = e?.infos?.get(role);
      if (info !== undefined && info.ref !== null) this.reapRef(info);
      else this.reapNamed(e?.keys?.get(role) ?? addressKey({ side: this.side, role, request: id }));
    }
    const hs = HAS_HANDLES[this.side] ? this.handlesPerRequest : 0;
    for (let i = 0; i < hs; i++) {
      const info = e?.handleInfos?.[i];
      if (info !== undefined && info.ref !== null) this.reapRef(info);
      else this.reapNamed(e?.handleKeys?.[i] ?? addressKey({ side: this.side, role: 'handle', request: id, index: i }));
    }
  }

  /** Drop the actor of this name if it exists and is finished. */
  private reapNamed(name: string): void {
    if (this.host.has(name) && this.host.done(name)) this.removeNamed(name);
  }

  /** `reapNamed` by the actor's record and reference (PureHost). */
  private reapRef(info: ActorInfo): void {
    const ref = info.ref!;
    if (this.pure!.doneRef(ref)) this.removeByRef(info, ref);
  }

  /** The top-level state the request's lifecycle finished in (`e`: its entry, which kept the lifecycle's name). */
  protected finalState(id: string, e?: RequestEntry): string {
    const ref = e?.infos?.lifecycle?.ref;
    const lc = ref != null && ref.alive ? ref.snap : this.host.actor(e?.keys?.lifecycle ?? addressKey({ side: this.side, role: 'lifecycle', request: id }));
    if (!lc) return 'unknown';
    return typeof lc.value === 'string' ? lc.value : Object.keys(lc.value as object)[0]!;
  }

  /**
   * The actor name of an address. A live request's names are built once and kept with its entry; a
   * server actor's once per server. (Building them per delivery was a sizeable share of the
   * executor's allocation.)
   */
  protected key(a: Address, from: RequestEntry | null = null): string {
    if (!('request' in a)) return this.serverKeys.get(a.role) ?? this.cacheServerKey(a);
    const e = this.entryOf(a.request, from);
    if (e === undefined) return addressKey(a);
    if (a.index !== undefined) {
      const hs = e.handleKeys ?? (e.handleKeys = []);
      return hs[a.index] ?? (hs[a.index] = addressKey(a));
    }
    const keys = e.keys ?? (e.keys = new ByRole<string>());
    const known = keys.get(a.role);
    if (known !== undefined) return known;
    const k = addressKey(a);
    // (A role without a field in ByRole would get its name built again each time; none is addressed so.)
    keys.set(a.role, k);
    return k;
  }

  private readonly serverKeys = new Map<string, string>();
  private cacheServerKey(a: Address): string {
    const k = addressKey(a);
    this.serverKeys.set(a.role, k);
    return k;
  }

  /** The live actor at an address, by its record; undefined when it has none (not spawned, or dropped). */
  private infoAt(a: Address, from: RequestEntry | null): ActorInfo | undefined {
    if (!('request' in a)) return this.serverInfo(a.role);
    const e = this.entryOf(a.request, from);
    if (e === undefined) return undefined;
    return a.index !== undefined ? e.handleInfos?.[a.index] : e.infos?.get(a.role);
  }

  /** Make a spawned actor's record findable by address (infoAt). */
  private link(info: ActorInfo): void {
    const a = info.addr;
    if (!('request' in a)) {
      const i = this.serverInfos.findIndex((x) => x.addr.role === a.role);
      if (i >= 0) this.serverInfos[i] = info;
      else this.serverInfos.push(info);
    } else if (info.entry !== null) {
      // A first handle's list is made with it (a store into [] grew it: a builtin call per request).
      if (a.index !== undefined) {
        if (info.entry.handleInfos === undefined && a.index === 0) info.entry.handleInfos = [info];
        else (info.entry.handleInfos ??= [])[a.index] = info;
      }
      else (info.entry.infos ??= new ByRole<ActorInfo>()).set(a.role, info);
    }
  }

  private unlink(info: ActorInfo): void {
    const a = info.addr;
    if (!('request' in a)) {
      const i = this.serverInfos.indexOf(info);
      if (i >= 0) this.serverInfos.splice(i, 1);
    } else if (info.entry !== null) {
      if (a.index !== undefined) {
        const hs = info.entry.handleInfos;
        if (hs !== undefined && hs[a.index] === info) hs[a.index] = undefined;
      } else if (info.entry.infos?.get(a.role) === info) info.entry.infos.set(a.role, undefined);
    }
  }

  /** The server's own actors (two or three): a scan comparing interned role names, no table. */
  private readonly serverInfos: ActorInfo[] = [];
  private serverInfo(role: string): ActorInfo | undefined {
    const infos = this.serverInfos;
    for (let i = 0; i < infos.length; i++) if (infos[i]!.addr.role === role) return infos[i];
    return undefined;
  }

  private addr(name: string): Address {
    return this.infoOf(name).addr;
  }

  /** The last actor looked up: a transition's record, its effects and its done come one after another. */
  private lastName = '';
  private lastInfo: ActorInfo | null = null;

  /** A live actor's record by name (ActorHost), made at its first mention. */
  private infoOf(name: string): ActorInfo {
    if (name === this.lastName) return this.lastInfo!;
    let i = this.actorInfo.get(name);
    if (i === undefined) this.actorInfo.set(name, (i = this.newInfo(name)));
    this.lastName = name;
    this.lastInfo = i;
    return i;
  }

  /** The record of an actor being spawned (PureHost keeps it as the actor's owner; ActorHost's go in `actorInfo`). */
  private newInfo(name: string | null): ActorInfo {
    const sc = this.scratch;
    const spawning = name === sc.spawningName && sc.spawning !== null;
    if (!spawning && name === null) throw new Error('an actor without a name outside a spawn');
    const addr = spawning ? sc.spawning! : parseAddress(name!);
    const f = this.roleFacts(addr.role, 'request' in addr);
    const entry = !('request' in addr) ? null : spawning ? sc.spawningEntry : (this.requests.get(addr.request) ?? null);
    const i: ActorInfo = { name, addr, kinds: f.kinds, loopEvents: f.loopEvents, key: NO_KEY, at: 0, byKey: null, entry, q0: 0, q1: 0, ref: null };
    // A new list while short (see appended); runRequest reads it anew at each index.
    if (i.entry !== null && i.kinds !== undefined) i.entry.actors = appended(i.entry.actors, i);
    return i;
  }

  /** An actor's name, built the first time it is needed for one spawned by address (PureHost's, shared with it while it lives). */
  private nameOfInfo(info: ActorInfo): string {
    return info.name ?? (info.name = info.ref !== null ? this.pure!.nameOf(info.ref) : addressKey(info.addr));
  }

  /** The record of the actor of this name, if it is live (read before the host removes it: PureHost then lets go of it). */
  private infoNamed(name: string): ActorInfo | undefined {
    if (this.pure !== null) return this.pure.refOf(name)?.owner as ActorInfo | undefined;
    return this.actorInfo.get(name);
  }

  /**
   * What every actor of a role shares: its loop events and its wiring table, found once per role (a lookup
   * of the side's tables by a role that changes from call to call went through V8's megamorphic cache).
   * `inRequest`: the role is a request's (a server actor of the same name is offered no loop events).
   */
  private roleFacts(role: string, inRequest: boolean): RoleFacts {
    // A scan comparing interned role names (a side has a handful of roles): no hashing per spawn.
    const facts = inRequest ? this.requestRoles : this.serverRoles;
    for (let i = 0; i < facts.length; i++) if (facts[i]!.role === role) return facts[i]!;
    const f: RoleFacts = { role, kinds: inRequest ? LOOP_KINDS[this.side][role] : undefined, loopEvents: inRequest ? LOOP_EVENT_LISTS[this.side][role] : undefined };
    facts.push(f);
    return f;
  }
  private readonly requestRoles: RoleFacts[] = [];
  private readonly serverRoles: RoleFacts[] = [];

  /** Forget a live actor's record and take it out of the ready sets (the caller knows it is not dropped yet; a later actor of the same name gets a new one). */
  private drop(info: ActorInfo): void {
    this.ready.delete(info);
    this.batch.delete(info);
    this.unlink(info);
    // Empty under PureHost (records live as the host's owners): no lookup then.
    if (this.actorInfo.size !== 0 && info.name !== null) this.actorInfo.delete(info.name);
    // (Null first: a name that may be null compared with a string took V8's generic StrictEqual builtin.)
    if (info.name !== null && info.name === this.lastName) (this.lastName = ''), (this.lastInfo = null);
    // A dropped record may still be held (a stale ready-queue slot, a deferred call): it lets go of its
    // request and its actor, so a record that reached the old generation keeps no young objects alive.
    info.entry = null;
    info.ref = null;
  }

  private onTransition(r: TransitionRecord): void {
    const info = r.owner !== undefined ? (r.owner as ActorInfo) : this.infoOf(r.actor);
    // The compiled stepper hands the configuration's key precomputed; live actors need it built.
    this.transitioned(info, r.machine, r.event, r.event.type.startsWith('xstate.after'), r.toKey ?? valueKeyOf(r.to), r.status, r, offerable(info, null));
  }

  /**
   * PureHost's observer (onChange): the actor's record is its owner, its key is its configuration's; a
   * transition record is built only for whoever reads one (metrics, trace, transition log).
   */
  private observeChange(ref: ActorRef, event: EventObject, from: unknown, byTimer: boolean): void {
    const snap = ref.snap;
    const info = ref.owner as ActorInfo;
    const compiled = ref.compiled;
    const key = compiled !== null ? compiled.configOf(snap).valueKey : valueKeyOf(snap.value);
    this.transitioned(info, ref.machine.id, event, byTimer, key, snap.status, this.wantsRecords ? transitionRecord(ref, event, from as never, this.nameOfInfo(info)) : null, offerable(info, ref));
  }

  /** Metrics, a trace or the transition log read transition records; without them none is built. */
  private readonly wantsRecords: boolean;

  /**
   * `observeChange` where nobody reads transitions (no metrics, trace, transition log or time-in-state
   * histograms: the servers' default): what the server itself needs of a change, with nothing passed
   * on. The actor waits in the ready set if its configuration takes a loop event, a deadline's own step
   * wakes the loop, and `noteConfig` does the rest (test/sim/simulate.test.ts runs the same seeds
   * through both observers).
   */
  private observeQuietly(ref: ActorRef, _event: EventObject, _from: unknown, byTimer: boolean): void {
    const info = ref.owner as ActorInfo;
    const snap = ref.snap;
    const compiled = ref.compiled;
    if (compiled === null) {
      if (offerable(info, ref)) this.ready.add(info);
      if (byTimer) this.schedule();
      this.noteConfig(info, valueKeyOf(snap.value), snap.status === 'active');
      return;
    }
    // What `offerable` and `noteConfig` decide, read off the configuration once: its loop-event bits
    // (cached per configuration and list) and its key. The actor observed is the one just stepped, so
    // it is alive; one that is not active takes no loop event. The cache is read here, beside acceptedOf's
    // own read of it: moving both into one method that this calls measured about 2,600 instructions per
    // request more (bench burst --only instructions --baseline-build, three rounds), as noteConfig below.
    const cfg = compiled.configOf(snap);
    const active = snap.status === 'active';
    const events = info.loopEvents;
    if (active && events !== undefined && (cfg.acceptedList === events ? cfg.acceptedBits : compiled.acceptedOf(snap, events)) !== 0) this.ready.add(info);
    if (byTimer) this.schedule();
    const key = cfg.valueKey;
    // noteConfig's active case written out: calling it here (V8 inlines it) measured about 2,000
    // instructions per request more, as many as this observer saves (docs/performance.md, 39th session).
    if (!active) return this.noteConfig(info, key, false);
    const prevKey = info.key;
    if (prevKey !== key && prevKey !== NO_KEY && info.entry !== null) info.entry.transitions++;
    info.key = key;
  }

  /**
   * What both observers do with the configuration an actor is now in: a change counts as one of its
   * request's transitions, and an actor that finished after its request was reported (it failed closed
   * while draining) is dropped now.
   */
  private noteConfig(info: ActorInfo, key: string, active: boolean): void {
    const prevKey = info.key;
    if (prevKey !== key && prevKey !== NO_KEY && info.entry !== null) info.entry.transitions++;
    if (active) {
      info.key = key;
      return;
    }
    info.key = NO_KEY;
    const addr = info.addr;
    if ('request' in addr && !this.requests.has(addr.request)) this.forget(this.nameOfInfo(info));
  }

  /**
   * `byTimer`: the event is a deadline's (told by the host: the event's type, read here from events of
   * every shape, was a megamorphic load per transition). `r`: the transition's record, where one was
   * built (always when `wantsRecords`). `waits`: what `offerable` said of the actor (it waits in the
   * ready set).
   */
  private transitioned(info: ActorInfo, machine: string, event: EventObject, byTimer: boolean, key: string, status: string, r: TransitionRecord | null, waits: boolean): void {
    if (waits) this.ready.add(info);
    // A deadline fired on its own: the loop may have work (a worker step, a poll).
    if (byTimer) this.schedule();
    if (r !== null) this.metrics?.transition(r);
    const prevKey = info.key;
    if (prevKey === key && status === 'active' && this.trace === undefined) return;
    // The clock is read only for the histograms and the trace, when someone keeps them.
    const now = this.keepTimeInState || this.trace ? this.platform.clock.now() : 0;
    if (prevKey !== NO_KEY && prevKey !== key) {
      if (this.keepTimeInState) {
        const byKey = info.byKey ?? (info.byKey = this.histogramsOf(machine));
        let h = byKey.get(prevKey);
        if (h === undefined) byKey.set(prevKey, (h = new Histogram()));
        h.record(now - info.at);
      }
      if (this.logTransitions) this.emit({ t: 'log', line: `${this.side} ${this.nameOfInfo(info).slice(2)}: ${prevKey} --${event.type}--> ${key}` });
    }
    this.noteConfig(info, key, status === 'active');
    if (status === 'active' && prevKey !== key) info.at = now;
    if (this.trace && r !== null) this.trace.write(`${JSON.stringify({ seq: this.seq++, t: now, kind: 'transition', server: this.side, actor: this.nameOfInfo(info).slice(2), machine: r.machine, event: r.event, from: r.from, to: r.to })}\n`);
  }

  private histogramsOf(machine: string): Map<string, Histogram> {
    let byKey = this.timeInState.get(machine);
    if (byKey === undefined) this.timeInState.set(machine, (byKey = new Map()));
    return byKey;
  }

  // ---- reading -------------------------------------------------------------------------------

  /** The snapshot of one of this server's actors (tests and the simulator read; the server never decides on it). */
  snapshot(at: Address): AnyMachineSnapshot | undefined {
    return this.host.actor(addressKey(at));
  }

  stats(): ServerStats {
    const timeInState: ServerStats['timeInState'] = {};
    for (const [machine, byKey] of this.timeInState) for (const [k, h] of byKey) timeInState[`${machine}:${k}`] = [Number(h.quantile(0.5).toFixed(3)), Number(h.quantile(0.99).toFixed(3)), h.count];
    const cpu = process.cpuUsage();
    return {
      role: this.side,
      pool: this.pool.stats(),
      quarantine: { ...this.quarantine },
      stuck: [...this.requests.keys()],
      timeInState,
      cpuUserMs: cpu.user / 1000,
      cpuSystemMs: cpu.system / 1000,
      integrity: this.integrity(),
      memory: { liveRequests: this.requests.size, actors: this.host.names().length, rssMB: Math.round(process.memoryUsage().rss / 1048576) },
      faultsFired: { ...this.faults.fired },
    };
  }

  /** Run-time integrity counters: every one of them is corruption the server detected. */
  protected integrity(): NonNullable<ServerStats['integrity']> {
    return { poisonBroken: this.pool.poisonBroken, receiptMismatches: 0, servedMismatches: 0 };
  }

  /** Leases still quarantined or fencing (they resolve by proof, fence or retirement within bounded time). */
  pendingLeases(): number {
    return this.pool.stats().heldBlocks > 0 ? this.host.names().filter((n) => n.endsWith('.lease')).length : 0;
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.host.stopAll();
    this.trace?.end();
    this.agent.close();
  }

  get isClosed(): boolean {
    return this.closed;
  }
}
