import { generationReceiveMachine } from '../generationReceive.js';
import { onNotReady, patchStates } from './patch.js';

/**
 * generationReceive not-ready slot leak (BASE, signature #6 of bug class B7): on the sender's not-ready
 * signal the worker returned early without handing its receive slot back; with a pool of one slot every
 * later receive waits forever.
 */
export const notReadySlotLeakMachine = patchStates(generationReceiveMachine, 'generationReceive.notReadySlotLeak', [
  onNotReady({ target: 'done', actions: [{ type: 'finish', params: { outcome: 'failed', proof: 'notReadyBeforeWrite' } }, 'publishOutcome'] }),
]);
