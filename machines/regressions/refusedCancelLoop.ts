import { generationReceiveMachine } from '../generationReceive.js';
import { patchStates } from './patch.js';

/**
 * generationReceive refused-cancel retry loop (bug class B4): once the worker owns the request, a cancel
 * is refused with "Cannot cancel request" and the executor retries it every iteration; the worker's
 * waits have no deadline, so the loop ends only if the peer finishes — a peer that stalls never does.
 */
const refuse = (node: Record<string, unknown>) => {
  const { after: _dropped, ...rest } = node;
  return { ...rest, on: { ...(node.on as object), CANCEL: { actions: { type: 'cancelRefused', params: ({ context }: { context: { requestId: string } }) => ({ requestId: context.requestId }) } } } };
};

export const refusedCancelLoopMachine = patchStates(generationReceiveMachine, 'generationReceive.refusedCancelLoop', [
  { path: ['worker', 'awaitingSlot'], update: refuse },
  { path: ['worker', 'awaitingReady'], update: refuse },
  { path: ['worker', 'receiving'], update: refuse },
]).provide({ actions: { cancelRefused: () => {} } } as never);
