import { assign } from 'xstate';
import { generationReceiveMachine } from '../generationReceive.js';

/**
 * generationReceive queued-erase (BASE, bug class B2'): a cancel of a request still in the receiver's
 * queue erased the (request, promise) pair, destroying the promise unfulfilled ("Broken promise").
 */
export const queuedEraseMachine = generationReceiveMachine.provide({
  actions: { resolveQueuedCancel: assign({ promise: 'broken' as const }) },
});
