import { assign } from 'xstate';
import { generationReceiveMachine } from '../generationReceive.js';
import { onNotReady, patchStates } from './patch.js';

/**
 * generationReceive worker-sets-state (BASE, bug classes B8/B10): on the sender's not-ready signal the
 * receiver worker thread wrote DISAGG_TRANS_ERROR into the request itself, then returned normally so the
 * promise got a value; the status checker later reported success for the same request. Request state
 * changed off the executor thread, outside any rank-agreed set, and the outcome was reported twice.
 */
export const workerSetsStateMachine = patchStates(generationReceiveMachine, 'generationReceive.workerSetsState', [
  onNotReady({
    target: 'done',
    actions: [
      { type: 'finish', params: { outcome: 'failed', proof: 'notReadyBeforeWrite' } },
      { type: 'releaseSlot', params: ({ context }: { context: { requestId: string } }) => ({ requestId: context.requestId, proof: 'notReadyBeforeWrite' }) },
      assign({ slot: 'released' }),
      { type: 'reportOutcome', params: ({ context }: { context: { requestId: string } }) => ({ requestId: context.requestId, outcome: 'failed', promise: 'error' }) },
      assign({ promise: 'value' }),
    ],
  }),
]);
