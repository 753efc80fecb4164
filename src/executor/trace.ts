import { readFileSync } from 'node:fs';
import type { AnyMachineSnapshot, AnyStateMachine, EventObject } from 'xstate';
import { initialTransition } from 'xstate';
import { blockLeaseMachine } from '../../machines/index.js';
import { ROLE_MACHINES } from '../core/wiring.js';
import { pureTransition, requestOf, roleOf } from '../explore/world.js';

/**
 * Conformance checking of field logs: a trace (JSON lines of every actor's creation and transitions,
 * as `xferstate burst --trace` writes) is replayed through the production machines, and every recorded
 * transition the machines would not take is reported. Beyond each actor's own transitions, it checks
 * that the trace is whole (every server's part is closed by an `end` record with its record count, `seq`
 * has no gaps, no line is torn), that every actor's history is complete (spawn, xstate.init, … a state
 * at rest) unless its process was killed, that each record's `from` is the state the actor was in, and
 * one order across actors: a request's blocks are never freed or fenced while its receiver still waits
 * for data that can land in them.
 */
export type TraceRecord =
  | { seq: number; t: number; kind: 'spawn'; server: string; actor: string; input: unknown }
  | { seq: number; t: number; kind: 'transition'; server: string; actor: string; machine: string; event: EventObject; from: unknown; to: unknown };

/**
 * Written by the burst harness around each server process's records: which process they came from and
 * how it ended. A part of a process that was killed ('killed', 'died') may stop mid-history.
 */
export type TraceMarker =
  | { kind: 'begin'; process: string; server: string }
  | { kind: 'end'; process: string; server: string; records: number; ended: 'finished' | 'killed' | 'died'; torn?: boolean };

export interface TraceViolation {
  line: number;
  actor: string;
  event: string;
  from: unknown;
  recorded: unknown;
  allowed: unknown;
}

/** What is wrong beyond a forbidden transition: the kinds a tampered or cut trace shows. */
export type TraceProblemKind = 'from' | 'history' | 'truncated' | 'sequence' | 'order';

export interface TraceProblem {
  line: number;
  kind: TraceProblemKind;
  actor?: string;
  message: string;
}

export interface TraceCheck {
  records: number;
  actors: number;
  transitions: number;
  violations: TraceViolation[];
  /** Lines that could not be understood (not JSON, unknown machine, no spawn record). */
  malformed: Array<{ line: number; reason: string }>;
  problems: TraceProblem[];
}

/** True when a check found nothing wrong. */
export const conforms = (r: TraceCheck) => r.violations.length === 0 && r.malformed.length === 0 && r.problems.length === 0;

/** Every production machine either server runs, by machine id. */
const MACHINES: Record<string, AnyStateMachine> = Object.fromEntries(
  [...Object.values(ROLE_MACHINES.context), ...Object.values(ROLE_MACHINES.generation)].map((m: AnyStateMachine) => [m.id, m]),
);

/**
 * An actor's history may end here: the machine is done, or every active leaf is a final state (the
 * lifecycle ends in e.g. DISAGG_CONTEXT_COMPLETE.released), or a lease is back in the pool ('free'),
 * or the actor is the server's own (it lives as long as its process).
 */
function atRest(name: string, machine: AnyStateMachine | undefined, s: AnyMachineSnapshot): boolean {
  // A server's own actors (@server.session, .admission, .slots, .fences) live as long as the process.
  if (name.startsWith('@server.')) return true;
  if (s.status === 'done' || (machine === blockLeaseMachine && s.value === 'free')) return true;
  const leaves = (s as unknown as { _nodes: Array<{ type: string }> })._nodes.filter((n) => n.type === 'atomic' || n.type === 'final');
  return leaves.length > 0 && leaves.every((n) => n.type === 'final');
}

/** Lease states whose blocks may hold a write in flight; leaving them for 'free', or fencing, needs the receiver done. */
const LEASE_HELD = new Set(['exposed', 'quarantined', 'fencing']);
/** Receiver worker states in which the sender may still write into the request's blocks. */
const RECEIVING = new Set(['awaitingReady', 'receiving']);

interface ActorState {
  /** How reports name it: process:actor (or server:actor in a trace without begin/end records). */
  name: string;
  actor: string;
  line: number;
  machine?: AnyStateMachine;
  snapshot?: AnyMachineSnapshot;
  input: unknown;
}

interface Part {
  process: string;
  server: string | null;
  beginLine: number;
  records: number;
  /** Per server: a trace without begin/end records may interleave several servers' numbering. */
  lastSeq: Map<string, number>;
  ended: TraceMarker & { kind: 'end' } | null;
  actors: Map<string, ActorState>;
}

const same = (a: unknown, b: unknown) => JSON.stringify(a) === JSON.stringify(b);
const show = (v: unknown) => (typeof v === 'string' ? v : JSON.stringify(v));

export function checkTraceText(text: string): TraceCheck {
  const out: TraceCheck = { records: 0, actors: 0, transitions: 0, violations: [], malformed: [], problems: [] };
  const lines = text.split('\n');
  // A file that does not end in a newline was cut inside its last record.
  const torn = text.length > 0 && !text.endsWith('\n');
  if (!torn) lines.pop();
  const parts: Part[] = [];
  let part: Part | null = null;
  let unmarked = false;
  const problem = (line: number, kind: TraceProblemKind, message: string, actor?: string) => out.problems.push({ line, kind, message, ...(actor ? { actor } : {}) });

  const closePart = (p: Part, line: number) => {
    if (!p.ended) {
      if (p.server !== null) problem(line, 'truncated', `the records of ${p.process} (from line ${p.beginLine}) have no end record: the file was cut short`);
      return;
    }
    if (p.ended.records !== p.records) problem(line, 'truncated', `${p.process} has ${p.records} records, its end record says ${p.ended.records}`);
    // A killed process stops wherever it was; a finished one leaves every actor at rest.
    if (p.ended.ended !== 'finished') return;
    for (const a of p.actors.values()) {
      const name = a.name;
      if (a.snapshot && atRest(a.actor, a.machine, a.snapshot)) continue;
      const where = a.snapshot ? `ends in ${show(a.snapshot.value)}` : 'has no transition';
      problem(a.line, 'history', `${name} ${where}, not at rest, although ${p.process} finished: its last records are missing`, name);
    }
  };

  lines.forEach((raw, i) => {
    const line = i + 1;
    if (raw.trim() === '') return;
    let rec: TraceRecord | TraceMarker;
    try {
      rec = JSON.parse(raw) as TraceRecord | TraceMarker;
    } catch {
      if (torn && i === lines.length - 1) problem(line, 'truncated', 'the last line is cut off: the file was truncated');
      else out.malformed.push({ line, reason: 'not JSON' });
      return;
    }
    if (rec === null || typeof rec !== 'object') return void out.malformed.push({ line, reason: 'not a record' });
    if (rec.kind === 'begin') {
      if (part) closePart(part, line);
      part = { process: String(rec.process), server: String(rec.server), beginLine: line, records: 0, lastSeq: new Map(), ended: null, actors: new Map() };
      parts.push(part);
      return;
    }
    if (rec.kind === 'end') {
      if (!part || part.process !== rec.process || part.ended) return void out.malformed.push({ line, reason: `end record for ${rec.process} without its begin record` });
      part.ended = rec;
      return;
    }
    if (!part || part.ended) {
      // Records outside any begin/end pair: a trace not written by burst --trace, or a begin line deleted.
      if (!unmarked) problem(line, 'truncated', 'records without a begin record: cannot tell whether the trace is whole');
      unmarked = true;
      part = { process: 'unmarked', server: null, beginLine: line, records: 0, lastSeq: new Map(), ended: null, actors: new Map() };
      parts.push(part);
    }
    const p: Part = part;
    out.records++;
    p.records++;
    if (typeof rec.seq === 'number') {
      const last = p.lastSeq.get(rec.server);
      if (last !== undefined && rec.seq !== last + 1) {
        problem(line, 'sequence', rec.seq > last + 1 ? `seq jumps from ${last} to ${rec.seq}: ${rec.seq - last - 1} record(s) missing` : `seq ${rec.seq} after ${last}: records out of order`);
      }
      p.lastSeq.set(rec.server, rec.seq);
    }
    const id = `${rec.server}:${rec.actor}`;
    const key = p.server === null ? id : `${p.process}:${rec.actor}`;
    if (rec.kind === 'spawn') {
      if (p.actors.has(id)) problem(line, 'history', `${key} spawned twice`, key);
      p.actors.set(id, { line, input: rec.input, name: key, actor: rec.actor });
      out.actors++;
      return;
    }
    if (rec.kind !== 'transition') return void out.malformed.push({ line, reason: `unknown record kind` });
    const a = p.actors.get(id);
    if (!a) return void out.malformed.push({ line, reason: `no spawn record for ${key}` });
    const machine = MACHINES[rec.machine];
    if (!machine) return void out.malformed.push({ line, reason: `unknown machine '${rec.machine}'` });
    a.line = line;
    if (!a.snapshot) {
      a.machine = machine;
      a.snapshot = initialTransition(machine, a.input as never)[0] as AnyMachineSnapshot;
      // The first record after the spawn is the actor's initial state (event xstate.init). Without it,
      // the record is still checked from the initial state, so that one gap is reported once.
      if (rec.event?.type !== 'xstate.init') problem(line, 'history', `${key}'s first transition is ${rec.event?.type}, not xstate.init: its first records are missing`, key);
      else {
        out.transitions++;
        if (rec.from !== null) problem(line, 'from', `${key} on xstate.init: trace says from ${show(rec.from)}, an actor starts from nothing (null)`, key);
        if (!same(a.snapshot.value, rec.to)) out.violations.push({ line, actor: key, event: rec.event.type, from: null, recorded: rec.to, allowed: a.snapshot.value });
        return;
      }
    }
    out.transitions++;
    const before = a.snapshot;
    if (!same(rec.from, before.value)) problem(line, 'from', `${key} on ${rec.event?.type}: trace says from ${show(rec.from)}, the actor was in ${show(before.value)}`, key);
    const [next] = pureTransition(a.machine!, before, rec.event);
    if (!same(next.value, rec.to)) {
      out.violations.push({ line, actor: key, event: rec.event?.type, from: before.value, recorded: rec.to, allowed: next.value });
      return;
    }
    a.snapshot = next;
    if (a.machine === blockLeaseMachine) checkLeaseOrder(p, rec.server, rec.actor, before, next, line, key, problem);
  });
  if (part) closePart(part, lines.length);
  return out;
}

/** A lease left holding its blocks (to 'free', or to 'fencing') while the same request's receiver still waited for data. */
function checkLeaseOrder(p: Part, server: string, actor: string, before: AnyMachineSnapshot, next: AnyMachineSnapshot, line: number, key: string, problem: (line: number, kind: TraceProblemKind, message: string, actor?: string) => void): void {
  const from = String(before.value);
  const to = String(next.value);
  if (!LEASE_HELD.has(from) || (to !== 'free' && !(to === 'fencing' && from !== 'fencing'))) return;
  const request = requestOf(actor);
  if (request === undefined || roleOf(actor) !== 'lease') return;
  const recv = p.actors.get(`${server}:${request}.recv`)?.snapshot;
  const worker = (recv?.value as { worker?: unknown } | undefined)?.worker;
  if (typeof worker === 'string' && RECEIVING.has(worker)) {
    problem(line, 'order', `${key} went ${from} → ${to} while ${request}.recv was still ${worker}: a write can still land in those blocks`, key);
  }
}

export function checkTraceFile(path: string): TraceCheck {
  return checkTraceText(readFileSync(path, 'utf8'));
}
