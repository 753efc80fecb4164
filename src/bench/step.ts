import type { AnyStateMachine, EventObject } from 'xstate';
import { contextSendMachine, generationReceiveMachine, transferHandleMachine } from '../../machines/index.js';
import { burstDelays } from '../executor/config.js';
import { PureHost } from '../engine/pureHost.js';
import { CompiledStepper } from '../step/compiled.js';
import type { Stepper } from '../step/stepper.js';
import { xstateStepper } from '../step/xstate.js';

export const description = 'one machine step: xstate transition() (the oracle) vs the compiled plans (generated code, and interpreted), on request lifecycles of three machines; and the same steps through the executor\'s host';

/** One request's worth of steps: an actor start and the events that take it to its final state. */
const SCRIPTS: Array<{ role: string; machine: AnyStateMachine; input: unknown; events: EventObject[] }> = [
  {
    role: 'handle',
    machine: transferHandleMachine,
    input: { handleId: 'h', semantics: { canAbortInFlight: false, releaseInFlightQuiesces: false } },
    events: [{ type: 'POST' }, { type: 'STATUS', status: 'DONE' } as EventObject, { type: 'RELEASE_RESULT', accepted: true, quiesced: true } as EventObject],
  },
  {
    role: 'recv',
    machine: generationReceiveMachine,
    input: { requestId: 'r' },
    events: [{ type: 'WORKER_POP' }, { type: 'SLOT_GRANTED' }, { type: 'READY_SIGNAL', ready: true } as EventObject, { type: 'CANCEL_UNKNOWN' }, { type: 'SYNC_WAIT_ENDED', arrived: true } as EventObject, { type: 'STATUS_POLL' }],
  },
  {
    role: 'send',
    machine: contextSendMachine,
    input: { requestId: 'r' },
    events: [{ type: 'REQUEST_INFO' }, { type: 'TRANSFERS_SETTLED', outcome: 'succeeded', quiesced: true } as EventObject, ...Array.from({ length: 5 }, () => ({ type: 'WORKER_STEP' })), { type: 'STATUS_POLL' }],
  },
];

/** Microseconds per step (starts count as steps), over `rounds` runs of every script. */
function measure(stepper: Stepper, rounds: number): number {
  let steps = 0;
  const t0 = performance.now();
  for (let r = 0; r < rounds; r++) {
    for (const s of SCRIPTS) {
      let snap = stepper.initial(s.machine, s.input).snap;
      for (const e of s.events) snap = stepper.step(s.machine, snap, e).snap;
      if (snap.status !== 'done') throw new Error(`bench step: ${s.machine.id} did not finish under ${stepper.name}`);
      steps += s.events.length + 1;
    }
  }
  return ((performance.now() - t0) * 1000) / steps;
}

/** The same, stepped in place as the executor does (CompiledMachine.stepInPlace on a snapshot of its own). */
function measureInPlace(compiled: CompiledStepper, rounds: number): number {
  let steps = 0;
  const t0 = performance.now();
  for (let r = 0; r < rounds; r++) {
    for (const s of SCRIPTS) {
      const cm = compiled.compile(s.machine);
      const snap = cm.own(cm.initial(s.input).snap);
      for (const e of s.events) cm.stepInPlace(snap, e);
      if (snap.status !== 'done') throw new Error(`bench step: ${s.machine.id} did not finish in place`);
      steps += s.events.length + 1;
    }
  }
  return ((performance.now() - t0) * 1000) / steps;
}

/**
 * The same, through the executor's host as the servers configure it (PureHost: compiled, in place,
 * an onChange observer, an owner record per actor, deadlines armed on its heap), with a route and an
 * observer that do nothing: what the host adds per step before any wiring or effect. Each actor is
 * spawned by name, sent its events by name, and removed.
 */
function measureHost(rounds: number): number {
  let routed = 0;
  const host = new PureHost({
    // The host finds an actor's machine by the role at the end of its name (`r1.handle`).
    machines: Object.fromEntries(SCRIPTS.map((s) => [s.role, s.machine])),
    delays: burstDelays(600_000),
    route: () => void routed++,
    onChange: () => {},
    inPlace: true,
    ownerOf: (name) => ({ name }),
  });
  let id = 0;
  let steps = 0;
  const t0 = performance.now();
  for (let r = 0; r < rounds; r++) {
    for (const s of SCRIPTS) {
      const name = `r${id++}.${s.role}`;
      host.spawn(name, s.input);
      for (const e of s.events) host.send(name, e);
      if (!host.done(name)) throw new Error(`bench step: ${s.machine.id} did not finish in the host`);
      host.remove(name);
      steps += s.events.length + 1;
    }
  }
  const us = ((performance.now() - t0) * 1000) / steps;
  host.stopAll();
  if (routed === 0) throw new Error('bench step: the host routed no effect');
  return us;
}

export async function runBench({ json }: { json: boolean; args: string[] }): Promise<number> {
  const compiled = new CompiledStepper();
  // The same plans run by the interpreter instead of generated code (the executor's mode before generation).
  const interpreted = new CompiledStepper({ generate: false });
  // Warm up, then alternate A B A B and keep the medians.
  measure(xstateStepper, 300);
  measure(compiled, 3000);
  measureInPlace(interpreted, 3000);
  measureInPlace(compiled, 3000);
  measureHost(3000);
  const xs: number[] = [];
  const cs: number[] = [];
  const is: number[] = [];
  const ps: number[] = [];
  const hs: number[] = [];
  for (let i = 0; i < 3; i++) {
    xs.push(measure(xstateStepper, 1000));
    cs.push(measure(compiled, 10_000));
    is.push(measureInPlace(interpreted, 10_000));
    ps.push(measureInPlace(compiled, 10_000));
    hs.push(measureHost(10_000));
  }
  const med = (v: number[]) => [...v].sort((a, b) => a - b)[1]!;
  const result = {
    xstateUsPerStep: Number(med(xs).toFixed(3)),
    compiledUsPerStep: Number(med(cs).toFixed(3)),
    speedup: Number((med(xs) / med(cs)).toFixed(1)),
    interpretedInPlaceUsPerStep: Number(med(is).toFixed(3)),
    inPlaceUsPerStep: Number(med(ps).toFixed(3)),
    inPlaceSpeedup: Number((med(cs) / med(ps)).toFixed(2)),
    generatedSpeedup: Number((med(is) / med(ps)).toFixed(2)),
    hostUsPerStep: Number(med(hs).toFixed(3)),
    hostAddsUsPerStep: Number((med(hs) - med(ps)).toFixed(3)),
  };
  if (json) console.log(JSON.stringify(result));
  else {
    console.log('per machine step (starts included), median of 3, same snapshots, effects and timer operations:');
    console.log(`  xstate transition()   ${result.xstateUsPerStep} µs`);
    console.log(`  compiled plans        ${result.compiledUsPerStep} µs`);
    console.log(`  speedup               ${result.speedup}×`);
    console.log(`  plans interpreted, in place  ${result.interpretedInPlaceUsPerStep} µs   (the executor's mode before generated code)`);
    console.log(`  compiled, in place    ${result.inPlaceUsPerStep} µs   (${result.inPlaceSpeedup}× the compiled step: the executor's mode, generated code, no snapshot or context copy per step; ${result.generatedSpeedup}× the interpreted plans)`);
    console.log(`  through the host      ${result.hostUsPerStep} µs   (PureHost as the servers run it, route and observer doing nothing: +${result.hostAddsUsPerStep} µs per step)`);
  }
  return 0;
}
