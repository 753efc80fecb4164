import { contextSendMachine } from '../contextSend.js';
import { generationReceiveMachine } from '../generationReceive.js';
import { peerSessionMachine } from '../peerSession.js';
import { requestLifecycleMachine } from '../requestLifecycle.js';
import { patchStates } from './patch.js';

type Node = Record<string, unknown>;
const on = (node: Node) => (node.on ?? {}) as Record<string, unknown>;

/**
 * Regressions of the whole protocol, each derived from a production machine by a small named diff.
 * They are explored in the composed world (both sides) and must each be caught by a consequence
 * invariant (the memory model, outcomes, retries), not by a flag they set.
 */

/**
 * Our own bug (issue 9): a fence of a request that has not started sending is acknowledged at once,
 * and the request info that arrived early is kept — so when the request starts later it writes into
 * blocks the fence freed, which by then belong to another request.
 */
export const fenceBeforeTransferMachine = patchStates(peerSessionMachine, 'peerSession.fenceBeforeTransfer', [
  {
    path: ['open'],
    update: (node) => {
      const fence = on(node).FENCE as Node[];
      // Last branch (not started): acknowledge, but neither drop the info nor tombstone the request.
      return { ...node, on: { ...on(node), FENCE: [...fence.slice(0, -1), { actions: [{ type: 'ackFence', params: ({ event }: { event: { request: string } }) => ({ request: event.request }) }] }] } };
    },
  },
]);

/**
 * vLLM #56104: the first handle to fail ends the request's transfer — failure reported, the fence
 * answered from that handle alone — while its sibling handles are still writing.
 */
export const siblingHandleStillWritingMachine = patchStates(contextSendMachine, 'contextSend', [
  {
    path: ['sender', 'sending'],
    update: (node) => {
      const settled = on(node).TRANSFERS_SETTLED as Node[];
      // The "one of several failed" branch goes straight to unwinding, as if every handle had settled.
      const failedBranch = settled[2]!;
      const early = { ...failedBranch, target: 'unwinding', actions: [(failedBranch.actions as unknown[])[0], 'settle', { type: 'decide', params: { outcome: 'failed' } }] };
      return { ...node, on: { ...on(node), TRANSFERS_SETTLED: [settled[0], settled[1], early, settled[3]] } };
    },
  },
]);

/**
 * SGLang #36707: the fence (abort) acknowledgement goes out while an errored or cancelled transfer of
 * the request is still unresolved — acknowledged on receipt instead of from every handle's quiescence.
 */
export const ackWithUnresolvedErrorMachine = patchStates(contextSendMachine, 'contextSend', [
  {
    path: ['sender', 'sending'],
    update: (node) => {
      const fence = on(node).FENCE as Node;
      return { ...node, on: { ...on(node), FENCE: { ...fence, actions: [...(fence.actions as unknown[]), { type: 'ackFence', params: ({ context }: { context: { requestId: string } }) => ({ requestId: context.requestId }) }] } } };
    },
  },
  {
    path: ['sender', 'cancellingTransfers'],
    update: (node) => ({ ...node, on: { ...on(node), FENCE: { actions: ['markFenced', { type: 'ackFence', params: ({ context }: { context: { requestId: string } }) => ({ requestId: context.requestId }) }] } } }),
  },
]);

/**
 * vLLM #52234: a stale reference used after the blocks were reused — a request info that arrives after
 * the peer fenced the request (duplicated or overtaken on the channel) is kept as if fresh, and the
 * request later writes with it into blocks that now belong to another allocation.
 */
export const staleReferenceMachine = patchStates(peerSessionMachine, 'peerSession.staleReference', [
  {
    path: ['open'],
    update: (node) => {
      const info = on(node).INFO as Node[];
      const started = on(node).REQUEST_STARTED as Node[];
      // Late infos are not checked against the fence, and a stored info wins over the tombstone.
      return { ...node, on: { ...on(node), INFO: info.slice(1), REQUEST_STARTED: [started[1], started[0], ...started.slice(2)] } };
    },
  },
]);

/** The executor's cancel retry: a deadline (or cancel) keeps the request in transmission and re-sends the cancel every loop iteration. */
const retryingLifecycle = (id: string, inProgress: 'DISAGG_CONTEXT_TRANS_IN_PROGRESS' | 'DISAGG_GENERATION_TRANS_IN_PROGRESS') =>
  patchStates(requestLifecycleMachine, id, [
    {
      path: [inProgress],
      update: (node) => ({
        ...node,
        on: {
          ...on(node),
          LOOP_TICK: { guard: ({ context }: { context: { errorReason: string } }) => context.errorReason !== 'none', actions: { type: 'cancelSide', params: ({ context }: { context: { requestId: string } }) => ({ requestId: context.requestId }) } },
        },
        // The timeout flag is set and the cancel sent; the request stays active until the side resolves it.
        after: { kvTransferTimeout: { actions: [{ type: 'noteError', params: { reason: 'timedOut' } }, { type: 'cancelSide', params: ({ context }: { context: { requestId: string } }) => ({ requestId: context.requestId }) }] } },
      }),
    },
  ]);

export const retryingGenerationLifecycleMachine = retryingLifecycle('requestLifecycle.retryingCancel', 'DISAGG_GENERATION_TRANS_IN_PROGRESS');
export const retryingContextLifecycleMachine = retryingLifecycle('requestLifecycle.retryingCancelContext', 'DISAGG_CONTEXT_TRANS_IN_PROGRESS');

/** generationReceive refusing a cancel once the worker owns the request ("Cannot cancel request"), deadlines kept. */
export const refusingReceiveMachine = patchStates(
  generationReceiveMachine,
  'generationReceive.refusingCancel',
  ['awaitingSlot', 'awaitingReady', 'receiving'].map((s) => ({
    path: ['worker', s],
    update: (node: Node) => ({ ...node, on: { ...on(node), CANCEL: { actions: { type: 'cancelRefused', params: ({ context }: { context: { requestId: string } }) => ({ requestId: context.requestId }) } } } }),
  })),
).provide({ actions: { cancelRefused: () => {} } } as never);

/**
 * TensorRT-LLM v3 as the seed ships it (seed-pr13495.txt): the sender refuses to cancel its current
 * request (the one being sent) and keeps its session; the executor retries the cancel every iteration
 * until the transfer resolves on its own.
 */
export const trtllmV3SendMachine = patchStates(contextSendMachine, 'contextSend', [
  {
    path: ['sender', 'sending'],
    update: (node) => ({ ...node, on: { ...on(node), CANCEL: { actions: { type: 'cancelRefused', params: ({ context }: { context: { requestId: string } }) => ({ requestId: context.requestId }) } } } }),
  },
]).provide({ actions: { cancelRefused: () => {} } } as never);

/**
 * The contract between the sides, broken: contextSend sends "not ready" on any failure the peer asked
 * about — also after its writes were posted. The generation side frees its blocks on not-ready (it is
 * the proof that no write was posted), so a write still in flight lands in freed memory.
 */
export const notReadyAfterWriteMachine = patchStates(contextSendMachine, 'contextSend', [
  {
    path: ['sender', 'unwinding', 'signal'],
    update: (node) => {
      const step = on(node).WORKER_STEP as Node;
      const actions = step.actions as unknown[];
      return {
        ...node,
        on: {
          ...on(node),
          WORKER_STEP: {
            ...step,
            actions: [
              { type: 'signalPeer', params: ({ context }: { context: { requestId: string; peerAsked: boolean; outcome: string } }) => ({ requestId: context.requestId, notReady: context.peerAsked && context.outcome !== 'succeeded' }) },
              ...actions.slice(1),
            ],
          },
        },
      };
    },
  },
]);
