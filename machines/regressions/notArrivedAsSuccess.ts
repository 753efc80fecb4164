import { generationReceiveMachine } from '../generationReceive.js';

/**
 * generationReceive not-arrived-as-success (BASE, bug class B6): the sync-notification wait returned
 * void on terminate, so a wait that ended without the notification was treated as data received and a
 * partially written buffer was copied out as success.
 */
export const notArrivedAsSuccessMachine = generationReceiveMachine.provide({
  guards: { syncArrived: () => true },
});
