import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { assign, cancel, raise, setup } from 'xstate';
import type { EventObject } from 'xstate';
import { contextSendMachine, generationReceiveMachine, transferHandleMachine } from '../../machines/index.js';
import { Deadlines } from '../../src/engine/deadlines.js';
import type { ActorRef, PureHostCalls, PureHostOptions } from '../../src/engine/pureHost.js';
import type { EmittedAction } from '../../src/explore/world.js';
import { PureHost } from '../../src/engine/pureHost.js';
import type { Stepper } from '../../src/step/stepper.js';
import { xstateStepper } from '../../src/step/xstate.js';
import { CompiledStepper } from '../../src/step/compiled.js';
import type { Clock } from '../../src/core/clock.js';
import { TestClock } from './testClock.js';


describe('Deadlines (one clock timer per host)', () => {
  it('fires in due order, ties in arming order, and never fires a cancelled deadline', () => {
    const clock = new TestClock();
    const d = new Deadlines(clock);
    const fired: string[] = [];
    d.arm(30, () => fired.push('c'));
    const b = d.arm(20, () => fired.push('b'));
    d.arm(10, () => fired.push('a1'));
    d.arm(10, () => fired.push('a2'));
    d.arm(Infinity, () => fired.push('never'));
    d.cancel(b);
    expect(d.live).toBe(3);
    clock.advance(15);
    expect(fired).toEqual(['a1', 'a2']);
    clock.advance(100);
    expect(fired).toEqual(['a1', 'a2', 'c']);
    expect(d.live).toBe(0);
  });

  it('fires exactly the deadlines not cancelled, in (due, arming) order, over random arm/cancel/advance sequences', () => {
    // Cancel removes from the middle of the heap: the order must stay a heap's, and nothing cancelled may fire.
    const op = fc.oneof(
      fc.record({ k: fc.constant('arm' as const), delay: fc.integer({ min: 0, max: 50 }) }),
      fc.record({ k: fc.constant('cancel' as const), which: fc.nat() }),
      fc.record({ k: fc.constant('advance' as const), ms: fc.integer({ min: 0, max: 30 }) }),
    );
    fc.assert(
      fc.property(fc.array(op, { maxLength: 200 }), (ops) => {
        const clock = new TestClock();
        const d = new Deadlines(clock);
        const fired: number[] = [];
        const armed: { id: number; due: number; h: ReturnType<Deadlines['arm']> }[] = [];
        const expected: number[] = [];
        let next = 0;
        let now = 0;
        const due = (until: number) => {
          // Reference: every armed deadline due by `until`, by (due, arming order).
          armed.sort((a, b) => a.due - b.due || a.id - b.id);
          while (armed.length > 0 && armed[0]!.due <= until) expected.push(armed.shift()!.id);
        };
        for (const o of ops) {
          if (o.k === 'arm') {
            const id = next++;
            armed.push({ id, due: now + o.delay, h: d.arm(o.delay, () => fired.push(id)) });
          } else if (o.k === 'cancel' && armed.length > 0) {
            const [x] = armed.splice(o.which % armed.length, 1);
            d.cancel(x!.h);
          } else if (o.k === 'advance') {
            now += o.ms;
            due(now);
            clock.advance(o.ms);
          }
          expect(d.live).toBe(armed.length);
        }
        expect(fired).toEqual(expected);
      }),
      { numRuns: 300 },
    );
  });

  it('arms one deadline object again and again: after a cancel, after it fired, and while it is armed', () => {
    const clock = new TestClock();
    const d = new Deadlines(clock);
    const fired: number[] = [];
    const fire = () => fired.push(clock.now());
    const other = d.arm(25, () => fired.push(-1));
    const x = d.arm(10, fire);
    d.cancel(x);
    d.armAs(x, 20, fire); // after a cancel
    d.armAs(x, 30, fire); // while armed: replaces the earlier due time, fires once
    expect(d.live).toBe(2);
    expect(d.entries).toBe(2);
    clock.advance(25);
    expect(fired).toEqual([-1]);
    clock.advance(5);
    expect(fired).toEqual([-1, 30]);
    d.armAs(x, 5, fire); // after it fired
    clock.advance(10);
    expect(fired).toEqual([-1, 30, 35]);
    d.cancel(other); // fired already: nothing to cancel
    expect(d.live).toBe(0);
    expect(d.entries).toBe(0);
  });

  it('keeps memory proportional to live deadlines when most are cancelled', () => {
    const clock = new TestClock();
    const d = new Deadlines(clock);
    for (let i = 0; i < 10_000; i++) d.cancel(d.arm(60_000 + i, () => {}));
    expect(d.live).toBe(0);
    expect(d.entries).toBe(0);
    // One list per delay: 10,000 distinct delays armed and cancelled leave no more than the spare lists.
    expect(d.listCount).toBeLessThanOrEqual(16);
  });

  it('keeps (due, arming) order when the clock goes back between arms (a wall clock may)', () => {
    // Each delay's list is appended to while time does not go back; an earlier due time is put in order.
    let t = 1_000;
    const timers: { due: number; fn: () => void }[] = [];
    const clock: Clock = {
      now: () => t,
      setTimeout: (fn, ms) => {
        const h = { due: t + ms, fn };
        timers.push(h);
        return h;
      },
      clearTimeout: (h) => void timers.splice(timers.indexOf(h as never), 1),
    };
    const d = new Deadlines(clock);
    const fired: string[] = [];
    d.arm(10, () => fired.push('a')); // due 1010
    t = 995;
    d.arm(10, () => fired.push('b')); // due 1005: before a, in the same list
    d.arm(10, () => fired.push('c')); // due 1005: after b (armed later)
    t = 1_020;
    while (timers.length > 0) timers.shift()!.fn();
    expect(fired).toEqual(['b', 'c', 'a']);
  });
});

/** Drive one transfer handle and one receiver through a fixed script; return everything observable. */
function script(stepper: Stepper | undefined): { log: string[]; setCalls: number } {
  const clock = new TestClock();
  const log: string[] = [];
  const host: PureHost = new PureHost({
    machines: { handle: transferHandleMachine, recv: generationReceiveMachine, send: contextSendMachine },
    delays: { kvTransferTimeout: 100, drainTimeout: 50, cancelResolveTimeout: 70 },
    clock,
    ...(stepper ? { stepper } : {}),
    route: (h, actor, a) => {
      log.push(`${actor} ${a.type} ${JSON.stringify(a.params)}`);
      if (a.type === 'releaseHandle') h.send(actor, { type: 'RELEASE_RESULT', accepted: true, quiesced: false });
    },
    onDone: (_h, actor, output) => log.push(`${actor} done ${JSON.stringify(output)}`),
    onTransition: (r) => log.push(`${r.actor}: ${JSON.stringify(r.from)} --${r.event.type}--> ${JSON.stringify(r.to)}`),
  });
  host.spawn('r1.handle', { handleId: 'h1', semantics: { canAbortInFlight: false, releaseInFlightQuiesces: false } });
  host.send('r1.handle', { type: 'POST' });
  host.spawn('r1.recv', { requestId: 'r1' });
  host.send('r1.recv', { type: 'WORKER_POP' });
  host.spawn('r2.send', { requestId: 'r2' });
  host.send('r2.send', { type: 'CANCEL' });
  log.push(`in: ${host.in('r1.recv', { worker: 'awaitingSlot' })} ${host.in('r1.recv', 'worker.awaitingSlot')} ${host.in('r1.recv', { worker: 'receiving' })} ${host.in('r1.handle', 'inProgress')}`);
  clock.advance(100); // handle: kvTransferTimeout → draining; recv: timeout → done; send: cancel resolved at 70
  log.push(`armed ${host.armedDeadlines}`);
  clock.advance(60); // handle: drainTimeout → releasing → released
  for (let i = 0; i < 6; i++) host.send('r2.send', { type: 'WORKER_STEP' });
  host.send('r2.send', { type: 'STATUS_POLL' });
  host.send('r1.recv', { type: 'STATUS_POLL' });
  log.push(`armed ${host.armedDeadlines} done ${host.done('r1.handle')} ${host.done('r1.recv')} ${host.done('r2.send')}`);
  host.stopAll();
  return { log, setCalls: clock.setCalls };
}

describe('PureHost over a Stepper and a Clock', () => {
  it('tryStep delivers only to an active actor that accepts the event, and says whether it changed', () => {
    const sent: string[] = [];
    const host = new PureHost({ machines: { handle: transferHandleMachine }, clock: new TestClock(), inPlace: true, route: (_h, actor, a) => sent.push(`${actor} ${a.type}`) });
    const semantics = { canAbortInFlight: false, releaseInFlightQuiesces: false };
    host.spawn('r1.handle', { handleId: 'h1', semantics });
    expect(host.tryStep('r9.handle', { type: 'POST' })).toBe(false); // no such actor
    const v = host.version('r1.handle');
    expect(host.tryStep('r1.handle', { type: 'WORKER_POP' })).toBe(false); // no transition for it: not delivered
    expect(host.version('r1.handle')).toBe(v);
    expect(host.tryStep('r1.handle', { type: 'POST' })).toBe(true);
    expect(sent).toEqual(['r1.handle postTransfer']);
    expect(host.in('r1.handle', 'inProgress')).toBe(true);
    host.stopAll();
  });

  it('tryStep does not step an actor whose guards are all closed for the event (the loop\'s idle polls)', () => {
    const gate = setup({ types: { context: {} as { open: boolean }, events: {} as { type: 'POLL' } | { type: 'OPEN' } } }).createMachine({
      id: 'gate',
      context: { open: false },
      initial: 'shut',
      states: { shut: { on: { POLL: { guard: ({ context }) => context.open, target: 'passed' }, OPEN: { actions: assign({ open: true }) } } }, passed: {} },
    });
    const host = new PureHost({ machines: { gate }, clock: new TestClock(), inPlace: true, route: () => {} });
    host.spawn('r1.gate', undefined);
    const cm = (host.stepper as CompiledStepper).compile(gate as never);
    let steps = 0;
    const real = cm.stepInPlace.bind(cm);
    cm.stepInPlace = (snap, event) => (steps++, real(snap, event));
    expect(host.tryStep('r1.gate', { type: 'POLL' })).toBe(false);
    expect(steps).toBe(0); // the guard is closed: no step at all
    host.send('r1.gate', { type: 'OPEN' });
    expect(host.tryStep('r1.gate', { type: 'POLL' })).toBe(true);
    expect(steps).toBe(2);
    expect(host.in('r1.gate', 'passed')).toBe(true);
    host.stopAll();
  });

  it('keeps each of an actor\'s timer ids apart, however many it arms: a cancelled one never fires, the rest fire once each', () => {
    // Four ids armed in one step, so the host's list of them passes through every size it special-cases.
    const ids = ['a', 'b', 'c', 'd'] as const;
    type Fired = { type: 'FIRED'; id: string };
    const alarms = setup({ types: { events: {} as Fired | { type: 'STOP'; id: string } | { type: 'AGAIN' } } }).createMachine({
      id: 'alarms',
      initial: 'on',
      states: {
        on: {
          entry: ids.map((id, i) => raise({ type: 'FIRED', id }, { id, delay: 10 * (i + 1) })),
          on: {
            FIRED: { actions: { type: 'rang', params: ({ event }) => ({ id: event.id }) } },
            STOP: [
              { guard: ({ event }) => event.id === 'a', actions: cancel('a') },
              { guard: ({ event }) => event.id === 'b', actions: cancel('b') },
              { guard: ({ event }) => event.id === 'c', actions: cancel('c') },
              { guard: ({ event }) => event.id === 'd', actions: cancel('d') },
            ],
            AGAIN: { target: 'on', reenter: true },
          },
        },
      },
    });
    for (const stopped of ids) {
      const clock = new TestClock();
      const rang: string[] = [];
      const host = new PureHost({ machines: { alarms }, clock, inPlace: true, route: (_h, _actor, a) => rang.push((a.params as { id: string }).id) });
      host.spawn('r1.alarms', undefined);
      host.send('r1.alarms', { type: 'STOP', id: stopped });
      clock.advance(100);
      expect(rang, `cancelled ${stopped}`).toEqual(ids.filter((id) => id !== stopped));
      // Armed again (the re-entry arms each id anew): the same records serve, and each fires once more.
      rang.length = 0;
      host.send('r1.alarms', { type: 'AGAIN' });
      host.send('r1.alarms', { type: 'STOP', id: stopped });
      clock.advance(100);
      expect(rang, `cancelled ${stopped} again`).toEqual(ids.filter((id) => id !== stopped));
      host.stopAll();
    }
  });

  it('reaches actors by reference exactly as by name, and a reference kept past remove resolves by name', () => {
    const semantics = { canAbortInFlight: true, releaseInFlightQuiesces: false };
    const run = (byRef: boolean) => {
      const log: string[] = [];
      const host: PureHost = new PureHost({
        machines: { handle: transferHandleMachine },
        clock: new TestClock(),
        inPlace: true,
        // An effect that sends to another actor mid-step: that event waits behind the step, by name or by reference.
        route: (h, actor, a) => {
          log.push(`${actor} ${a.type}`);
          if (a.type === 'postTransfer') h.send(actor === 'r1.handle' ? 'r2.handle' : 'r1.handle', { type: 'CANCEL' });
        },
        onTransition: (r) => log.push(`${r.actor}: ${JSON.stringify(r.from)} --${r.event.type}--> ${JSON.stringify(r.to)}`),
      });
      const a = host.spawnRef('r1.handle', { handleId: 'h1', semantics });
      const b = host.spawnRef('r2.handle', { handleId: 'h2', semantics }, 'handle');
      const send = (ref: typeof a, e: { type: string }) => (byRef ? host.sendRef(ref, e) : host.send(ref.name, e));
      const tryStep = (ref: typeof a, e: { type: string }) => (byRef ? host.tryStepRef(ref, e) : host.tryStep(ref.name, e));
      log.push(`try ${tryStep(a, { type: 'WORKER_POP' })}`);
      send(a, { type: 'POST' });
      log.push(`try ${tryStep(b, { type: 'POST' })}`);
      send(b, { type: 'STATUS', status: 'DONE' } as never);
      host.remove('r1.handle');
      send(a, { type: 'POST' }); // removed: nothing happens
      log.push(`try ${tryStep(a, { type: 'POST' })}`);
      const a2 = host.spawnRef('r1.handle', { handleId: 'h1b', semantics });
      send(a, { type: 'POST' }); // the old reference now names the new actor
      log.push(`in ${host.in('r1.handle', 'inProgress')} ${a2 === a}`);
      host.stopAll();
      return log;
    };
    const byName = run(false);
    expect(run(true)).toEqual(byName);
    expect(byName).toContain('try false');
    expect(byName).toContain('in true false');
    expect(byName.filter((l) => l === 'r1.handle postTransfer')).toHaveLength(2);
  });

  it('finds actors spawned by reference by name, whatever the order of spawns and removals, and refuses a second live actor of a name', () => {
    const semantics = { canAbortInFlight: true, releaseInFlightQuiesces: false };
    fc.assert(
      fc.property(fc.array(fc.tuple(fc.constantFrom('ref', 'ref', 'name', 'remove', 'removeRef', 'removeRef', 'lookup'), fc.integer({ min: 0, max: 3 })), { maxLength: 40 }), (ops) => {
        const host = new PureHost({ machines: { handle: transferHandleMachine }, clock: new TestClock(), inPlace: true, route: () => {} });
        // The model: which names are live, and the reference each was spawned as (null: spawned by name).
        const live = new Map<string, ReturnType<PureHost['spawnRef']> | null>();
        const check = () => {
          for (let j = 0; j <= 3; j++) expect(host.has(`r${j}.handle`)).toBe(live.has(`r${j}.handle`));
          expect(host.names().sort()).toEqual([...live.keys()].sort());
          for (const [n, ref] of live) if (ref) expect(host.refOf(n)).toBe(ref);
        };
        for (const [op, i] of ops) {
          const name = `r${i}.handle`;
          if (op === 'ref' || op === 'name') {
            if (live.has(name)) {
              // A second actor of a live name: refused at once by name (spawn looks it up).
              if (op === 'name') expect(() => host.spawn(name, { handleId: `h${i}`, semantics })).toThrow(/already exists/);
              continue;
            }
            if (op === 'ref') live.set(name, host.spawnRef(name, { handleId: `h${i}`, semantics }, 'handle'));
            else (host.spawn(name, { handleId: `h${i}`, semantics }), live.set(name, null));
          } else if (op === 'remove') {
            host.remove(name);
            live.delete(name);
          } else if (op === 'removeRef') {
            // By reference, with no lookup by name (the executor's way): several spawned by reference may be waiting unindexed.
            const ref = live.get(name);
            if (ref) (host.removeRef(ref), live.delete(name));
          } else check();
        }
        check();
        host.stopAll();
        expect(host.names()).toEqual([]);
      }),
      { numRuns: 500, examples: [[[['ref', 0], ['ref', 1], ['ref', 2], ['removeRef', 0], ['removeRef', 2]]]] },
    );
    // spawnRef does not look the name up: a duplicate is refused at the next lookup by name.
    const host = new PureHost({ machines: { handle: transferHandleMachine }, clock: new TestClock(), inPlace: true, route: () => {} });
    host.spawnRef('r1.handle', { handleId: 'h1', semantics });
    host.spawnRef('r1.handle', { handleId: 'h1', semantics });
    expect(() => host.has('r1.handle')).toThrow(/actor r1.handle already exists/);
  });

  it('removes by reference as by name: only the live actor it was spawned as, once; its deadlines end and its record lets go', () => {
    const semantics = { canAbortInFlight: true, releaseInFlightQuiesces: false };
    const clock = new TestClock();
    const seen: string[] = [];
    const host = new PureHost({ machines: { handle: transferHandleMachine }, clock, inPlace: true, route: () => {}, ownerOf: (n) => ({ n }), onChange: (ref, e) => seen.push(`${ref.name} ${e.type}`) });
    const a = host.spawnRef('r1.handle', { handleId: 'h1', semantics });
    host.sendRef(a, { type: 'POST' });
    expect(host.armedDeadlines).toBeGreaterThan(0);
    expect(host.doneRef(a)).toBe(false);
    host.removeRef(a);
    expect(host.has('r1.handle')).toBe(false);
    expect(host.armedDeadlines).toBe(0);
    expect(host.doneRef(a)).toBe(false);
    expect(a.snap.status).toBe('stopped');
    expect(a.owner).toBeUndefined();
    // A new actor of the same name is not touched by the old reference's removal.
    const b = host.spawnRef('r1.handle', { handleId: 'h1b', semantics });
    host.removeRef(a);
    expect(host.has('r1.handle')).toBe(true);
    host.sendRef(b, { type: 'CANCEL' });
    expect(host.doneRef(b)).toBe(host.done('r1.handle'));
    expect(seen[0]).toBe('r1.handle xstate.init');
    expect(seen).toContain('r1.handle POST');
    host.stopAll();
  });

  it('compiles every role at construction and refuses a role it was not given, by name or by key', () => {
    const semantics = { canAbortInFlight: true, releaseInFlightQuiesces: false };
    expect(() => new PureHost({ machines: { handle: undefined as never }, route: () => {} })).toThrow(/no machine for role 'handle'/);
    const host = new PureHost({ machines: { handle: transferHandleMachine }, clock: new TestClock(), inPlace: true, route: () => {}, nameOf: String });
    expect(() => host.spawnAt(1, { handleId: 'h1', semantics }, 'lease')).toThrow(/no machine for role 'lease'/);
    expect(() => host.spawn('r1.lease', {})).toThrow(/no machine for role 'lease'/);
    // Nothing was half-made: the handle role still spawns, and no actor was left behind.
    expect(host.names()).toEqual([]);
    host.spawnAt(2, { handleId: 'h2', semantics }, 'handle');
    expect(host.names()).toEqual(['2']);
    host.stopAll();
  });

  it('names an actor spawned by key only when a name is needed: a lookup by name, or its reference used after it was removed', () => {
    const semantics = { canAbortInFlight: true, releaseInFlightQuiesces: false };
    const named: string[] = [];
    const routed: string[] = [];
    const nameOf = (key: unknown) => {
      named.push(String(key));
      return `r${String(key)}.handle`;
    };
    expect(() => new PureHost({ machines: { handle: transferHandleMachine }, clock: new TestClock(), inPlace: true, route: () => {} }).spawnAt(1, { handleId: 'h1', semantics }, 'handle')).toThrow(/needs the nameOf option/);
    const host = new PureHost({ machines: { handle: transferHandleMachine }, clock: new TestClock(), inPlace: true, route: (_h, actor, a) => routed.push(`${actor}|${a.type}`), ownerOf: (n) => ({ n }), nameOf });
    const a = host.spawnAt(1, { handleId: 'h1', semantics }, 'handle');
    const b = host.spawnAt(2, { handleId: 'h2', semantics }, 'handle');
    expect(a.owner).toEqual({ n: null });
    host.sendRef(a, { type: 'POST' });
    host.sendRef(b, { type: 'POST' });
    // Stepped, routed and its deadlines armed by reference: no name built ('' where the route is told one).
    expect(named).toEqual([]);
    expect(routed.length).toBeGreaterThan(0);
    expect(routed.every((r) => r.startsWith('|'))).toBe(true);
    // A lookup by name names every actor waiting for the table, once.
    expect(host.in('r2.handle', 'inProgress')).toBe(true);
    expect(named.sort()).toEqual(['1', '2']);
    expect(host.nameOf(a)).toBe('r1.handle');
    expect(named).toHaveLength(2);
    // Removed, then replaced under the same key: the old reference resolves to the new actor by name.
    host.removeRef(a);
    const c = host.spawnAt(1, { handleId: 'h1c', semantics }, 'handle');
    host.sendRef(a, { type: 'POST' });
    expect(c.snap.value).toBe('inProgress');
    host.stopAll();
  });

  it('delivers a queued event sent by reference to the actor now of that name when the referenced one was removed meanwhile', () => {
    const semantics = { canAbortInFlight: true, releaseInFlightQuiesces: false };
    let a: ActorRef | null = null;
    let b: ActorRef | null = null;
    const host: PureHost = new PureHost({
      machines: { handle: transferHandleMachine },
      clock: new TestClock(),
      inPlace: true,
      route: (h, actor) => {
        // While r2's step is drained: an event for r1 by reference is queued, then r1 is replaced.
        if (actor !== 'r2.handle' || b !== null) return;
        (h as PureHost).sendRef(a!, { type: 'POST' });
        (h as PureHost).removeRef(a!);
        b = (h as PureHost).spawnRef('r1.handle', { handleId: 'h1b', semantics });
      },
    });
    a = host.spawnRef('r1.handle', { handleId: 'h1', semantics });
    const x = host.spawnRef('r2.handle', { handleId: 'h2', semantics });
    host.sendRef(x, { type: 'POST' });
    expect(b).not.toBeNull();
    expect(host.in('r1.handle', 'inProgress')).toBe(true);
    expect(b!.snap.value).toBe('inProgress');
    host.stopAll();
  });

  it('runs each event queued in a drain once, in order, over drains of every size and past several renewals of the queue', () => {
    // A TICK makes its actor ask (route) for `k` ECHOes to a sink, queued behind it in the same drain;
    // the sink reports each ECHO's number as it steps. Drains of 1 to 40 events, small after large, so
    // the queue array grows, is reused with fewer slots filled, and is replaced (every 256 drains).
    const machine = setup({
      types: {} as { context: { n: number }; events: { type: 'TICK'; k: number } | { type: 'ECHO'; seq: number } },
      actions: { fanout: (_: unknown, _p: { k: number }) => {}, seen: (_: unknown, _p: { seq: number }) => {} },
    }).createMachine({
      context: { n: 0 },
      on: {
        TICK: { actions: [assign({ n: ({ context }) => context.n + 1 }), { type: 'fanout', params: ({ event }) => ({ k: event.k }) }] },
        ECHO: { actions: [assign({ n: ({ context }) => context.n + 1 }), { type: 'seen', params: ({ event }) => ({ seq: event.seq }) }] },
      },
    });
    const seen: number[] = [];
    let sent = 0;
    let sink: ActorRef | null = null;
    const host: PureHost = new PureHost({
      machines: { source: machine, sink: machine },
      clock: new TestClock(),
      inPlace: true,
      route: (h, _actor, a) => {
        const p = a.params as { k?: number; seq?: number };
        if (a.type === 'fanout') for (let i = 0; i < p.k!; i++) (h as PureHost).sendRef(sink!, { type: 'ECHO', seq: sent++ });
        else if (a.type === 'seen') seen.push(p.seq!);
      },
    });
    const source = host.spawnRef('s.source', {});
    sink = host.spawnRef('s.sink', {});
    const sizes = Array.from({ length: 700 }, (_, i) => ((i * 37) % 40) + 1);
    for (const k of sizes) {
      const before = seen.length;
      host.sendRef(source, { type: 'TICK', k });
      // The drain ran all of its queued events before the send returned, and none of an earlier drain again.
      expect(seen.length - before).toBe(k);
    }
    expect(seen).toEqual(Array.from({ length: sent }, (_, i) => i));
    expect(sink.snap.context).toEqual({ n: sent });
    host.stopAll();
  });

  it('calls an owner object (calls) as it calls the function options: the same owners, observations, routes and ends, in order, as methods of that object', () => {
    const semantics = { canAbortInFlight: true, releaseInFlightQuiesces: false };
    // One scenario: a handle posted, a terminal status, its release accepted (done), and a second handle
    // left to its deadlines. Each callback logs what it got; owners are numbered by the log's length.
    const scenario = (opts: Partial<PureHostOptions>, log: string[]): void => {
      const clock = new TestClock();
      const host = new PureHost({ machines: { handle: transferHandleMachine }, clock, inPlace: true, nameOf: (k) => `${String(k)}.handle`, ...opts });
      const a = host.spawnAt('r1', { handleId: 'h1', semantics }, 'handle');
      host.sendRef(a, { type: 'POST' });
      host.sendRef(a, { type: 'STATUS', status: 'DONE' });
      host.sendRef(a, { type: 'RELEASE_RESULT', accepted: true, quiesced: true });
      const b = host.spawnAt('r2', { handleId: 'h2', semantics }, 'handle');
      host.sendRef(b, { type: 'POST' });
      clock.advance(60_000);
      host.stopAll();
    };
    const fnLog: string[] = [];
    scenario(
      {
        ownerOf: (n) => `owner${fnLog.push(`ownerOf ${n}`)}`,
        onChange: (ref, e, _from, byTimer) => void fnLog.push(`change ${String(ref.owner)} ${e.type} ${byTimer} ${JSON.stringify(ref.snap.value)}`),
        route: (_h, actor, a, owner) => void fnLog.push(`route ${actor} ${a.type} ${String(owner)}`),
        onDone: (_h, actor, output, owner) => void fnLog.push(`done ${actor} ${JSON.stringify(output)} ${String(owner)}`),
      },
      fnLog,
    );
    class Calls implements PureHostCalls {
      readonly log: string[] = [];
      ownerOf(n: string | null): unknown {
        return `owner${this.log.push(`ownerOf ${n}`)}`;
      }
      onChange(ref: ActorRef, e: EventObject, _from: unknown, byTimer: boolean): void {
        this.log.push(`change ${String(ref.owner)} ${e.type} ${byTimer} ${JSON.stringify(ref.snap.value)}`);
      }
      route(_h: PureHost, actor: string, a: EmittedAction, owner: unknown): void {
        this.log.push(`route ${actor} ${a.type} ${String(owner)}`);
      }
      onDone(_h: PureHost, actor: string, output: unknown, owner: unknown): void {
        this.log.push(`done ${actor} ${JSON.stringify(output)} ${String(owner)}`);
      }
    }
    const calls = new Calls();
    scenario({ calls }, calls.log);
    expect(fnLog.filter((l) => l.startsWith('done')).length).toBeGreaterThan(0);
    expect(fnLog.some((l) => / true /.test(l))).toBe(true);
    expect(calls.log).toEqual(fnLog);
    // Given calls, the function options are not called.
    const ignored: string[] = [];
    const again = new Calls();
    scenario({ calls: again, route: () => void ignored.push('route'), onChange: () => void ignored.push('change'), ownerOf: () => ignored.push('ownerOf'), onDone: () => void ignored.push('done') }, again.log);
    expect(ignored).toEqual([]);
    expect(again.log).toEqual(fnLog);
    // Without onChange, onTransition observes; without route or calls, the host is refused.
    const records: string[] = [];
    scenario({ route: () => {}, onTransition: (r) => void records.push(`${r.actor} ${r.event.type}`) }, []);
    expect(records[0]).toBe('r1.handle xstate.init');
    expect(() => new PureHost({ machines: { handle: transferHandleMachine } })).toThrow(/needs the route option or calls/);
  });

  it("tells onChange which steps are a deadline's own event: its timer firing, or fire(), never an event sent by name", () => {
    const semantics = { canAbortInFlight: true, releaseInFlightQuiesces: false };
    const clock = new TestClock();
    const seen: string[] = [];
    const host = new PureHost({ machines: { handle: transferHandleMachine }, clock, inPlace: true, route: () => {}, ownerOf: (n) => ({ n }), onChange: (ref, e, _from, byTimer) => seen.push(`${e.type.startsWith('xstate.after') ? 'deadline' : e.type} ${byTimer}`) });
    const a = host.spawnRef('r1.handle', { handleId: 'h1', semantics });
    host.sendRef(a, { type: 'POST' });
    const armed = host.armedDeadlines;
    expect(armed).toBeGreaterThan(0);
    clock.advance(60_000);
    expect(seen[0]).toBe('xstate.init false');
    expect(seen[1]).toBe('POST false');
    const fired = seen.filter((l) => l.startsWith('deadline'));
    expect(fired.length).toBeGreaterThan(0);
    expect(fired.every((l) => l === 'deadline true')).toBe(true);
    expect(seen.filter((l) => !l.startsWith('deadline')).every((l) => l.endsWith('false'))).toBe(true);
    // The same event type sent by name is not a deadline firing.
    const b = host.spawnRef('r2.handle', { handleId: 'h2', semantics });
    host.sendRef(b, { type: 'POST' });
    const timerType = b.timers!.find((t) => t.list !== null)!.event.type;
    seen.length = 0;
    host.send('r2.handle', { type: timerType });
    expect(seen).toEqual(['deadline false']);
    host.stopAll();
  });

  it('the compiled stepper (default) gives the same transitions, effects, deadlines and outputs as xstate', () => {
    const compiled = script(undefined);
    const oracle = script(xstateStepper);
    expect(compiled.log).toEqual(oracle.log);
    expect(compiled.log).toContain('r1.handle done {"handleId":"h1","outcome":"timedOut","quiesced":false,"leaked":false}');
    expect(compiled.log).toContain('in: true true false true');
    expect(compiled.log.at(-1)).toBe('armed 0 done true true true');
  });

  it('arms deadlines on the injected clock, not per deadline', () => {
    // Five deadlines armed over the script; the host re-arms its one clock timer only when the earliest changes.
    const { log, setCalls } = script(undefined);
    expect(log.filter((l) => l.includes('xstate.after')).length).toBeGreaterThanOrEqual(3);
    expect(setCalls).toBeLessThan(8);
  });
});
