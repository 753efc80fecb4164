import { generationReceiveMachine } from '../generationReceive.js';
import { patchStates } from './patch.js';

/**
 * generationReceive not-ready slot leak (BASE, signature #6 of bug class B7): on the sender's not-ready
 * signal the worker returned early without handing its receive slot back; with a pool of one slot every
 * later receive waits forever.
 */
export const notReadySlotLeakMachine = patchStates(generationReceiveMachine, 'generationReceive.notReadySlotLeak', [
  {
    path: ['worker', 'awaitingReady'],
    update: (node) => {
      const on = node.on as Record<string, unknown>;
      const ready = on.READY_SIGNAL as Array<Record<string, unknown>>;
      return {
        ...node,
        on: {
          ...on,
          READY_SIGNAL: [ready[0], { target: 'done', actions: [{ type: 'finish', params: { outcome: 'failed', proof: 'notReadyBeforeWrite' } }, 'publishOutcome'] }],
        },
      };
    },
  },
]);
