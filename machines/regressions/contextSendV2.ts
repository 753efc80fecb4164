import { assign } from 'xstate';
import { contextSendMachine } from '../contextSend.js';

/**
 * contextSend v2 (bug class B3, "future ready too early"): the cancellation error was set on the promise
 * when the not-ready signal went out — before the response left the ready map, before the cancelled-set
 * entry and session were erased and the current request cleared. The status checker could observe the
 * error and hand the request to termination while the worker still held its bookkeeping.
 */
export const contextSendV2Machine = contextSendMachine.provide({
  actions: {
    recordSignal: assign(({ context }) => (context.outcome === 'succeeded' ? {} : { promise: 'error' as const })),
    publishOutcome: assign(({ context }) => (context.outcome === 'succeeded' ? { promise: 'value' as const } : {})),
  },
});
