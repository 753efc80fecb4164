import { readFileSync } from 'node:fs';
import type { AnyMachineSnapshot, AnyStateMachine, EventObject } from 'xstate';
import { initialTransition } from 'xstate';
import type { AnyStateMachine as Machine } from 'xstate';
import { ROLE_MACHINES } from '../core/wiring.js';
import { pureTransition } from '../explore/world.js';

/**
 * Conformance checking of field logs: a trace (JSON lines of every actor's creation and transitions,
 * as `xferstate burst --trace` writes) is replayed through the production machines, and every recorded
 * transition the machines would not take is reported.
 */
export type TraceRecord =
  | { seq: number; t: number; kind: 'spawn'; server: string; actor: string; input: unknown }
  | { seq: number; t: number; kind: 'transition'; server: string; actor: string; machine: string; event: EventObject; from: unknown; to: unknown };

export interface TraceViolation {
  line: number;
  actor: string;
  event: string;
  from: unknown;
  recorded: unknown;
  allowed: unknown;
}

export interface TraceCheck {
  records: number;
  actors: number;
  transitions: number;
  violations: TraceViolation[];
  /** Lines that could not be understood (not JSON, unknown machine, no spawn record). */
  malformed: Array<{ line: number; reason: string }>;
}

/** Every production machine either server runs, by machine id. */
const MACHINES: Record<string, AnyStateMachine> = Object.fromEntries(
  [...Object.values(ROLE_MACHINES.context), ...Object.values(ROLE_MACHINES.generation)].map((m: Machine) => [m.id, m]),
);

export function checkTraceText(text: string): TraceCheck {
  const out: TraceCheck = { records: 0, actors: 0, transitions: 0, violations: [], malformed: [] };
  const actors = new Map<string, { machine?: AnyStateMachine; snapshot?: AnyMachineSnapshot; input: unknown }>();
  text.split('\n').forEach((raw, i) => {
    const line = i + 1;
    if (raw.trim() === '') return;
    let rec: TraceRecord;
    try {
      rec = JSON.parse(raw) as TraceRecord;
    } catch {
      out.malformed.push({ line, reason: 'not JSON' });
      return;
    }
    out.records++;
    const key = `${rec.server}:${rec.actor}`;
    if (rec.kind === 'spawn') {
      actors.set(key, { input: rec.input });
      out.actors++;
      return;
    }
    if (rec.kind !== 'transition') return void out.malformed.push({ line, reason: `unknown record kind` });
    const a = actors.get(key);
    if (!a) return void out.malformed.push({ line, reason: `no spawn record for ${key}` });
    const machine = MACHINES[rec.machine];
    if (!machine) return void out.malformed.push({ line, reason: `unknown machine '${rec.machine}'` });
    if (!a.snapshot) {
      // The first record of an actor is its initial state (event xstate.init).
      a.machine = machine;
      a.snapshot = initialTransition(machine, a.input as never)[0] as AnyMachineSnapshot;
      if (rec.event.type === 'xstate.init') {
        out.transitions++;
        if (JSON.stringify(a.snapshot.value) !== JSON.stringify(rec.to)) out.violations.push({ line, actor: key, event: rec.event.type, from: null, recorded: rec.to, allowed: a.snapshot.value });
        return;
      }
    }
    out.transitions++;
    const before = a.snapshot!;
    const [next] = pureTransition(a.machine!, before, rec.event);
    if (JSON.stringify(next.value) !== JSON.stringify(rec.to)) {
      out.violations.push({ line, actor: key, event: rec.event.type, from: before.value, recorded: rec.to, allowed: next.value });
      return;
    }
    a.snapshot = next;
  });
  return out;
}

export function checkTraceFile(path: string): TraceCheck {
  return checkTraceText(readFileSync(path, 'utf8'));
}
