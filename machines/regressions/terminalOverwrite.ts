import { requestLifecycleMachine } from '../requestLifecycle.js';
import { patchStates } from './patch.js';

/**
 * requestLifecycle terminal overwrite (bug class B8): the status checker set the success state
 * unconditionally after a successful get(), overwriting the DISAGG_TRANS_ERROR the timeout (or the
 * worker) had already set — a cancelled request then proceeds as if its KV cache had arrived.
 */
export const terminalOverwriteMachine = patchStates(requestLifecycleMachine, 'requestLifecycle.terminalOverwrite', [
  {
    path: ['DISAGG_TRANS_ERROR'],
    update: (node) => ({
      ...node,
      on: { ...(node.on as object), RECV_COMPLETE: 'DISAGG_GENERATION_TRANS_COMPLETE', SEND_COMPLETE: 'DISAGG_CONTEXT_COMPLETE' },
    }),
  },
]);
