import { transferHandleMachine } from '../transferHandle.js';
import { patchStates } from './patch.js';

/**
 * transferHandle release-is-quiescence (bug class B5 via S6): a cancel releases the in-flight handle at
 * once and treats the accepted release as proof that the buffers are quiet. Under NIXL over UCX the
 * release returns success in microseconds while the data keeps landing.
 */
export const releaseIsQuiescenceMachine = patchStates(transferHandleMachine, 'transferHandle.releaseIsQuiescence', [
  {
    path: ['inProgress'],
    update: (node) => ({
      ...node,
      on: {
        ...(node.on as object),
        CANCEL: { target: 'releasing', actions: [{ type: 'markWanted', params: { outcome: 'cancelled' } }, { type: 'markTerminal', params: { outcome: null } }] },
      },
    }),
  },
]);
