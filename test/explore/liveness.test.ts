import { describe, expect, it } from 'vitest';
import { blockLeaseMachine, contextSendMachine, generationReceiveMachine, refusedCancelLoopMachine, requestLifecycleMachine, transferHandleMachine } from '../../machines/index.js';
import { statesWithoutDeadline } from '../../src/explore/liveness.js';

const PRODUCTION = [transferHandleMachine, contextSendMachine, generationReceiveMachine, requestLifecycleMachine, blockLeaseMachine];

describe('L1: every waiting state has a deadline or local progress', () => {
  it.each(PRODUCTION.map((m) => [m.id, m] as const))('%s', (_id, m) => {
    expect(statesWithoutDeadline(m)).toEqual([]);
  });

  it('flags the refused-cancel retry loop, whose worker waits have no deadline', () => {
    const states = statesWithoutDeadline(refusedCancelLoopMachine).map((w) => w.state.split('.').slice(-1)[0]);
    expect(states.sort()).toEqual(['awaitingReady', 'awaitingSlot', 'receiving']);
  });
});
