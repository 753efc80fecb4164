import { describe, expect, it } from 'vitest';
import { assign, setup } from 'xstate';
import type { Clock } from '../../src/core/clock.js';
import { ActorHost } from '../../src/engine/host.js';
import { TestClock } from './testClock.js';
import type { TransitionRecord } from '../../src/engine/host.js';
import type { EmittedAction } from '../../src/explore/world.js';

/** Waits for two deadlines (a short and a long one) and says which fired; BUMP assigns, NOPE is taken nowhere. */
const waiter = setup({
  types: { context: {} as { bumps: number } },
  actions: { timedOut: (_, _p: { which: string }) => {} },
  delays: { short: 10, long: 20 },
}).createMachine({
  id: 'waiter',
  context: { bumps: 0 },
  initial: 'waiting',
  states: {
    waiting: {
      on: { BUMP: { actions: assign({ bumps: ({ context }) => context.bumps + 1 }) }, STOP: 'stopped' },
      after: { short: { actions: { type: 'timedOut', params: { which: 'short' } } }, long: { target: 'late', actions: { type: 'timedOut', params: { which: 'long' } } } },
    },
    late: {},
    stopped: {},
  },
});

function hostWith(clock?: Clock) {
  const routed: string[] = [];
  const transitions: TransitionRecord[] = [];
  const host = new ActorHost({
    machines: { w: waiter },
    route: (_h, actor: string, a: EmittedAction) => routed.push(`${actor} ${a.type} ${String(a.params?.which)}`),
    onTransition: (r) => transitions.push(r),
    ...(clock ? { clock } : {}),
  });
  return { host, routed, transitions };
}

describe('ActorHost (live xstate actors)', () => {
  it('an event no transition takes is no transition: the observer hears only of changed snapshots', () => {
    const { host, transitions } = hostWith();
    host.spawn('a.w', undefined);
    expect(transitions.map((t) => t.event.type)).toEqual(['xstate.init']);
    // xstate notifies its subscribers of this event too, with the snapshot it had: not passed on (an
    // executor on live actors put the actor back in its loop's ready set on each, and its automatic loop
    // offered it the same events forever).
    host.send('a.w', { type: 'NOPE' });
    expect(transitions.length).toBe(1);
    // A taken transition that changes only the context is one.
    host.send('a.w', { type: 'BUMP' });
    expect(transitions.map((t) => t.event.type)).toEqual(['xstate.init', 'BUMP']);
    host.stopAll();
  });

  it('with a clock: the deadlines are on one clock timer, fire in due order, and their actions are routed before the clock returns', () => {
    const clock = new TestClock();
    const { host, routed, transitions } = hostWith(clock);
    host.spawn('a.w', undefined);
    host.spawn('b.w', undefined);
    // Four deadlines armed, one clock timer (armed again only when an earlier deadline comes first).
    expect(host.armedDeadlines).toBe(4);
    expect(clock.setCalls).toBe(1);
    host.send('b.w', { type: 'STOP' });
    expect(host.armedDeadlines).toBe(2);
    clock.advance(10);
    // Routed synchronously, within the clock's callback: no microtask waited for.
    expect(routed).toEqual(['a.w timedOut short']);
    clock.advance(10);
    expect(routed).toEqual(['a.w timedOut short', 'a.w timedOut long']);
    expect(host.actor('a.w')?.value).toBe('late');
    expect(host.armedDeadlines).toBe(0);
    // The deadline's own step reached the observer as a deadline's (the executor wakes its loop on those).
    expect(transitions.filter((t) => t.actor === 'a.w').map((t) => t.event.type.startsWith('xstate.after'))).toEqual([false, true]);
    host.stopAll();
  });
});
