import { assign } from 'xstate';
import { contextSendMachine } from '../contextSend.js';

/**
 * contextSend v1 (BASE, bug class B2): the cancelled branch erased the response and let its promise go
 * out of scope unfulfilled; the status checker then saw `std::future_error: Broken promise`, a generic,
 * unattributed error. Derived from the production machine by replacing only the publish step.
 */
export const contextSendV1Machine = contextSendMachine.provide({
  actions: {
    publishOutcome: assign(({ context }) => ({ promise: context.outcome === 'succeeded' ? ('value' as const) : ('broken' as const) })),
  },
});
