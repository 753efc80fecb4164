import type { AnyStateMachine, InspectionEvent, StateValue } from 'xstate';
import { RingBuffer } from './buffer.js';
import { activeStateIds } from './dot.js';

/**
 * The inspector's view of the actors it has seen, fed by two sources that carry the same facts:
 * xstate's own inspection events (in-process `inspect` observer) and @statelyai/inspect wire messages
 * (a WebSocket from another process). Both are normalised here into one actor table.
 */

/** A message in @statelyai/inspect's wire format (0.7.x). Only these three types are ever forwarded. */
export interface StatelyInspectionMessage {
  type: '@xstate.actor' | '@xstate.event' | '@xstate.snapshot';
  sessionId: string;
  rootId?: string;
  parentId?: string;
  name?: string;
  /** The machine config as a JSON string (functions become `{type: name}`), on `@xstate.actor`. */
  definition?: string;
  snapshot?: { value?: StateValue; status?: string; [k: string]: unknown };
  event?: { type: string; [k: string]: unknown };
  sourceId?: string;
  createdAt?: string;
  id?: string | null;
  _version?: string;
}

export type Ingested = { src: 'xstate'; ev: InspectionEvent; t: number } | { src: 'wire'; msg: StatelyInspectionMessage; t: number };

export interface TimelineEntry {
  seq: number;
  /** ms since the epoch, when the inspector received it. */
  t: number;
  /** `event`: the actor received an event; `state`: its state value changed. */
  kind: 'event' | 'state';
  event: string;
  /** For events: who sent it (actor name), when known. */
  source?: string;
  /** For state changes: the new state, serialized. */
  state?: string;
  /** For state changes: the actor's status when it is no longer active (done, stopped, error). */
  status?: string;
}

export interface ActorSummary {
  id: string;
  name: string;
  /** Request the actor belongs to: the name up to its last dot (`r1.send` → `r1`), else the name. */
  request: string;
  machineId: string | null;
  /** Diagram key to draw it with (see /api/machines), or null when the logic is not a state machine. */
  diagram: string | null;
  parentId: string | null;
  status: string;
  state: string | null;
  activeIds: string[];
  createdAt: number;
  /** Last state change (value or status). */
  changedAt: number;
  /** Events received over its lifetime. */
  events: number;
  /** Timeline entries no longer held (the ring buffer keeps the last N). */
  overwritten: number;
  /** Its blocks are held back from reuse: quarantined, fencing, or failed closed. */
  quarantined: boolean;
}

interface ActorRecord extends ActorSummary {
  value: StateValue | null;
  machine: AnyStateMachine | null;
  timeline: RingBuffer<TimelineEntry>;
}

/** How the table finds a diagram key for a machine (identity, config, id) — supplied by the server. */
export interface DiagramResolver {
  forMachine(machine: AnyStateMachine): string;
  forDefinition(machineId: string, definition: string | undefined): string | null;
  machineFor(key: string): AnyStateMachine | null;
}

const QUARANTINE_STATES = ['quarantined', 'fencing', 'failedClosed', 'retired'];

export class ActorTable {
  private readonly actors = new Map<string, ActorRecord>();
  private seq = 0;
  evicted = 0;
  received = 0;

  constructor(
    private readonly diagrams: DiagramResolver,
    private readonly opts: { timelinePerActor: number; maxActors: number },
    private readonly onChange: (actorId: string, entry: TimelineEntry | null) => void,
  ) {}

  get size(): number {
    return this.actors.size;
  }

  summaries(): ActorSummary[] {
    return [...this.actors.values()].map(summary);
  }

  summary(id: string): ActorSummary | null {
    const a = this.actors.get(id);
    return a ? summary(a) : null;
  }

  timeline(id: string): { entries: TimelineEntry[]; total: number; overwritten: number } | null {
    const a = this.actors.get(id);
    return a ? { entries: a.timeline.toArray(), total: a.timeline.total, overwritten: a.timeline.overwritten } : null;
  }

  apply(item: Ingested): void {
    this.received++;
    if (item.src === 'xstate') this.applyXstate(item.ev, item.t);
    else this.applyWire(item.msg, item.t);
  }

  private applyXstate(ev: InspectionEvent, t: number): void {
    const a = this.ensureFromRef(ev.actorRef, t);
    if (ev.type === '@xstate.event') {
      const src = ev.sourceRef ? this.nameOfRef(ev.sourceRef) : undefined;
      this.event(a, ev.event.type, src, t);
    } else if (ev.type === '@xstate.snapshot') {
      const s = ev.snapshot as { value?: StateValue; status?: string };
      this.snapshot(a, s.value ?? null, s.status ?? 'active', ev.event.type, t);
    }
  }

  private applyWire(m: StatelyInspectionMessage, t: number): void {
    if (typeof m.sessionId !== 'string') return;
    let a = this.actors.get(m.sessionId);
    if (!a) {
      let machineId: string | null = null;
      if (m.definition) {
        try {
          const id = (JSON.parse(m.definition) as { id?: unknown }).id;
          if (typeof id === 'string') machineId = id;
        } catch {
          // A definition cut at the depth limit may not parse; the actor is listed without a diagram.
        }
      }
      const name = m.name && m.name !== machineId ? m.name : `${machineId ?? 'actor'} ${m.sessionId}`;
      a = this.create(m.sessionId, name, m.parentId ?? null, t, null, machineId, machineId ? this.diagrams.forDefinition(machineId, m.definition) : null);
    }
    if (m.type === '@xstate.actor' && m.snapshot) this.snapshot(a, m.snapshot.value ?? null, m.snapshot.status ?? 'active', 'xstate.init', t);
    else if (m.type === '@xstate.event' && m.event) this.event(a, m.event.type, m.sourceId ? (this.actors.get(m.sourceId)?.name ?? m.sourceId) : undefined, t);
    else if (m.type === '@xstate.snapshot' && m.snapshot) this.snapshot(a, m.snapshot.value ?? null, m.snapshot.status ?? 'active', m.event?.type ?? '', t);
  }

  private ensureFromRef(ref: InspectionEvent['actorRef'], t: number): ActorRecord {
    const existing = this.actors.get(ref.sessionId);
    if (existing) return existing;
    const logic = (ref as unknown as { logic?: unknown }).logic;
    const machine = isMachine(logic) ? logic : null;
    const parent = (ref as unknown as { _parent?: { sessionId: string } })._parent;
    return this.create(ref.sessionId, this.nameOfRef(ref), parent?.sessionId ?? null, t, machine, machine?.id ?? null, machine ? this.diagrams.forMachine(machine) : null);
  }

  private nameOfRef(ref: InspectionEvent['actorRef']): string {
    const r = ref as unknown as { options?: { systemId?: string }; id?: string; sessionId: string };
    return r.options?.systemId ?? (r.id && r.id !== r.sessionId ? r.id : r.sessionId);
  }

  private create(id: string, name: string, parentId: string | null, t: number, machine: AnyStateMachine | null, machineId: string | null, diagram: string | null): ActorRecord {
    if (this.actors.size >= this.opts.maxActors) this.evictOne();
    const dot = name.lastIndexOf('.');
    const rec: ActorRecord = {
      id,
      name,
      request: dot > 0 ? name.slice(0, dot) : name,
      machineId,
      diagram,
      parentId,
      status: 'active',
      state: null,
      activeIds: [],
      createdAt: t,
      changedAt: t,
      events: 0,
      overwritten: 0,
      quarantined: false,
      value: null,
      machine: machine ?? (diagram ? this.diagrams.machineFor(diagram) : null),
      timeline: new RingBuffer<TimelineEntry>(this.opts.timelinePerActor),
    };
    this.actors.set(id, rec);
    this.onChange(id, null);
    return rec;
  }

  /** The oldest stopped or done actor; if every actor is still active, the oldest one. */
  private evictOne(): void {
    let victim: string | undefined;
    for (const [id, a] of this.actors) {
      if (a.status !== 'active') {
        victim = id;
        break;
      }
    }
    victim ??= this.actors.keys().next().value;
    if (victim !== undefined) {
      this.actors.delete(victim);
      this.evicted++;
    }
  }

  private event(a: ActorRecord, type: string, source: string | undefined, t: number): void {
    a.events++;
    const entry: TimelineEntry = { seq: ++this.seq, t, kind: 'event', event: type, ...(source ? { source } : {}) };
    a.timeline.push(entry);
    a.overwritten = a.timeline.overwritten;
    this.onChange(a.id, entry);
  }

  private snapshot(a: ActorRecord, value: StateValue | null, status: string, cause: string, t: number): void {
    const state = value === null ? null : typeof value === 'string' ? value : JSON.stringify(value);
    if (state === a.state && status === a.status) return;
    a.value = value;
    a.state = state;
    a.status = status;
    a.changedAt = t;
    a.activeIds = a.machine ? activeStateIds(a.machine, value) : a.machineId ? activeStateIds(a.machineId, value) : [];
    a.quarantined = a.activeIds.some((id) => QUARANTINE_STATES.includes(id.slice(id.lastIndexOf('.') + 1)));
    const entry: TimelineEntry = { seq: ++this.seq, t, kind: 'state', event: cause, state: state ?? '', ...(status !== 'active' ? { status } : {}) };
    a.timeline.push(entry);
    a.overwritten = a.timeline.overwritten;
    this.onChange(a.id, entry);
  }
}

function isMachine(logic: unknown): logic is AnyStateMachine {
  return typeof logic === 'object' && logic !== null && 'root' in logic && 'id' in logic && 'config' in logic;
}

function summary(a: ActorRecord): ActorSummary {
  const { value: _v, machine: _m, timeline: _t, ...rest } = a;
  return { ...rest, activeIds: [...a.activeIds] };
}
