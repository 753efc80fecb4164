import { assign, setup } from 'xstate';
import type { IgnorePolicy, PromiseState, StateMeta, TransferOutcome } from './common.js';
import { DEFAULT_DELAYS } from './common.js';

/**
 * One request on the context (prefill) side: the sender worker's bookkeeping for it (ready-map entry,
 * cancelled-set entry, current request, transfer session, the promise) and the status checker's view
 * of its future, as two parallel regions.
 *
 * Every way out — success, failure, cancel, timeout — unwinds in separate worker steps: signal the peer,
 * move the response out, erase the bookkeeping, clear the current request, and only then publish the
 * outcome (TensorRT-LLM's v3 ordering). Separate steps let the explorer run the status checker between
 * any two of them, which is how the v1 and v2 regressions are caught.
 */
export interface ContextSendInput {
  requestId: string;
}

export interface ContextSendContext {
  requestId: string;
  /** The response (request + promise) is in the sender's ready map. */
  inReadyMap: boolean;
  /** The request id is in the cancelled set (a cancel was accepted before the peer asked). */
  cancelMarked: boolean;
  /** The request is the worker's current request. */
  isCurrent: boolean;
  /** A transfer session (peer connections, remaining-count) exists for the request. */
  sessionOpen: boolean;
  /** The generation peer has asked for this request's KV cache (RequestAndBufferInfo arrived). */
  peerAsked: boolean;
  /** Why the request is unwinding; 'pending' until decided. */
  outcome: TransferOutcome | 'pending';
  promise: PromiseState;
  /** Whether the transfer handles proved quiescence; null when no transfer was ever started. */
  handlesQuiesced: boolean | null;
}

export type ContextSendEvent =
  | { type: 'REQUEST_INFO' }
  | { type: 'CANCEL' }
  | { type: 'TRANSFERS_SETTLED'; outcome: 'succeeded' | 'failed' | 'cancelled' | 'timedOut'; quiesced: boolean }
  /** The sender worker thread takes its next step. */
  | { type: 'WORKER_STEP' }
  /** The status checker polls this request's future. */
  | { type: 'STATUS_POLL' };

export interface ContextSendOutput {
  requestId: string;
  outcome: TransferOutcome;
  /** True when nothing can still touch the source blocks (no transfer, or every handle proved quiescent). */
  quiesced: boolean;
}

const worker: StateMeta = { localProgress: ['WORKER_STEP'] };
type Decided = TransferOutcome;

export const contextSendMachine = setup({
  types: {
    input: {} as ContextSendInput,
    context: {} as ContextSendContext,
    events: {} as ContextSendEvent,
    output: {} as ContextSendOutput,
  },
  actions: {
    // ---- effects the engine implements ----
    /** Engine: send the ready signal (true: data follows) to every peer connection of the request. */
    sendReadySignal: (_: unknown, _params: { requestId: string; ready: boolean }) => {},
    /** Engine: create and post the request's transfer handles (WRITE into the peer's advertised blocks). */
    startTransfers: (_: unknown, _params: { requestId: string }) => {},
    /** Engine: cancel the request's transfer handles (each drains, then releases). */
    cancelTransfers: (_: unknown, _params: { requestId: string }) => {},
    /** Engine: report the observed future to the executor (request state 22 or -1). */
    reportOutcome: (_: unknown, _params: { requestId: string; outcome: TransferOutcome; promise: PromiseState }) => {},

    // ---- bookkeeping, one assign per worker step so each can be provided separately ----
    openSession: assign({ isCurrent: true, sessionOpen: true, peerAsked: true }),
    markCancelled: assign({ cancelMarked: true }),
    notePeerAsked: assign({ peerAsked: true }),
    decide: assign((_, params: { outcome: Decided }) => ({ outcome: params.outcome })),
    settle: assign((_, params: { quiesced: boolean }) => ({ handlesQuiesced: params.quiesced })),
    /** Step 1 bookkeeping: the not-ready signal (if the peer asked) has been sent. */
    recordSignal: assign({}),
    /** Step 2: move the response (request + promise) out of the ready map. */
    moveResponseOut: assign({ inReadyMap: false }),
    /** Step 3: erase the cancelled-set entry, the remaining count and the transfer session. */
    eraseBookkeeping: assign({ cancelMarked: false, sessionOpen: false }),
    /** Step 4: clear the current request. */
    clearCurrentRequest: assign({ isCurrent: false }),
    /** Step 5: fulfil the moved-out promise — a value, or an explicit request-attributed error. */
    publishOutcome: assign(({ context }) => ({ promise: context.outcome === 'succeeded' ? 'value' : 'error' }) as const),
    /** Engine: the not-ready signal (only when the peer asked and no data will follow). */
    signalPeer: (_: unknown, _params: { requestId: string; notReady: boolean }) => {},
  },
  guards: {
    futureReady: ({ context }) => context.promise !== 'pending',
    transfersSucceeded: (_, params: { outcome: string }) => params.outcome === 'succeeded',
  },
  delays: {
    kvTransferTimeout: DEFAULT_DELAYS.kvTransferTimeout,
    cancelResolveTimeout: DEFAULT_DELAYS.cancelResolveTimeout,
  },
}).createMachine({
  id: 'contextSend',
  type: 'parallel',
  context: ({ input }) => ({
    requestId: input?.requestId ?? 'r',
    inReadyMap: true,
    cancelMarked: false,
    isCurrent: false,
    sessionOpen: false,
    peerAsked: false,
    outcome: 'pending',
    promise: 'pending',
    handlesQuiesced: null,
  }),
  states: {
    sender: {
      initial: 'queued',
      states: {
        queued: {
          meta: { description: 'in the ready map, waiting for the generation peer to ask' },
          on: {
            REQUEST_INFO: {
              target: 'sending',
              actions: [
                'openSession',
                { type: 'sendReadySignal', params: ({ context }) => ({ requestId: context.requestId, ready: true }) },
                { type: 'startTransfers', params: ({ context }) => ({ requestId: context.requestId }) },
              ],
            },
            CANCEL: { target: 'cancelMarked', actions: 'markCancelled' },
          },
          after: { kvTransferTimeout: { target: 'unwinding', actions: { type: 'decide', params: { outcome: 'timedOut' } } } },
        },
        cancelMarked: {
          meta: { description: 'cancel accepted while queued; resolved when the peer asks or by deadline' },
          on: {
            REQUEST_INFO: { target: 'unwinding', actions: ['notePeerAsked', { type: 'decide', params: { outcome: 'cancelled' } }] },
            CANCEL: {},
          },
          // TensorRT-LLM left this as a TODO: a peer that never asks must not keep the entry forever.
          after: { cancelResolveTimeout: { target: 'unwinding', actions: { type: 'decide', params: { outcome: 'cancelled' } } } },
        },
        sending: {
          meta: { description: 'current request; its transfer handles are posted' },
          on: {
            TRANSFERS_SETTLED: [
              {
                guard: { type: 'transfersSucceeded', params: ({ event }) => ({ outcome: event.outcome }) },
                target: 'unwinding',
                actions: [{ type: 'settle', params: ({ event }) => ({ quiesced: event.quiesced }) }, { type: 'decide', params: { outcome: 'succeeded' } }],
              },
              {
                target: 'unwinding',
                actions: [{ type: 'settle', params: ({ event }) => ({ quiesced: event.quiesced }) }, { type: 'decide', params: { outcome: 'failed' } }],
              },
            ],
            CANCEL: {
              target: 'cancellingTransfers',
              actions: [{ type: 'decide', params: { outcome: 'cancelled' } }, { type: 'cancelTransfers', params: ({ context }) => ({ requestId: context.requestId }) }],
            },
          },
          after: {
            kvTransferTimeout: {
              target: 'cancellingTransfers',
              actions: [{ type: 'decide', params: { outcome: 'timedOut' } }, { type: 'cancelTransfers', params: ({ context }) => ({ requestId: context.requestId }) }],
            },
          },
        },
        cancellingTransfers: {
          // No deadline of its own: the handles' drain and release deadlines bound this wait, and leaving
          // before they settle would free the request while a handle still references it (S1).
          meta: { localProgress: ['TRANSFERS_SETTLED'], description: 'handles cancelled; waiting until each is drained and released' } satisfies StateMeta,
          on: {
            TRANSFERS_SETTLED: { target: 'unwinding', actions: { type: 'settle', params: ({ event }) => ({ quiesced: event.quiesced }) } },
            CANCEL: {},
          },
        },
        unwinding: {
          initial: 'signal',
          on: { CANCEL: {} },
          states: {
            signal: {
              meta: { ...worker, description: 'send not-ready to the peer if it asked and no data follows' },
              on: {
                WORKER_STEP: {
                  target: 'moveOut',
                  actions: [
                    {
                      type: 'signalPeer',
                      params: ({ context }) => ({ requestId: context.requestId, notReady: context.peerAsked && context.outcome !== 'succeeded' && context.handlesQuiesced === null }),
                    },
                    'recordSignal',
                  ],
                },
              },
            },
            moveOut: { meta: { ...worker, description: 'move the response (request + promise) out of the ready map' }, on: { WORKER_STEP: { target: 'erase', actions: 'moveResponseOut' } } },
            erase: { meta: { ...worker, description: 'erase the cancelled-set entry, remaining count and session' }, on: { WORKER_STEP: { target: 'clearCurrent', actions: 'eraseBookkeeping' } } },
            clearCurrent: { meta: { ...worker, description: 'clear the current request' }, on: { WORKER_STEP: { target: 'publish', actions: 'clearCurrentRequest' } } },
            publish: { meta: { ...worker, description: 'fulfil the moved-out promise: value or explicit error' }, on: { WORKER_STEP: { target: '#contextSend.sender.finished', actions: 'publishOutcome' } } },
          },
        },
        finished: { type: 'final', meta: { description: 'the worker holds nothing of the request any more' } },
      },
    },
    future: {
      initial: 'pending',
      states: {
        pending: {
          meta: { localProgress: ['STATUS_POLL'], description: "the status checker's future; polled each executor iteration" },
          on: {
            STATUS_POLL: {
              guard: 'futureReady',
              target: 'observed',
              actions: {
                type: 'reportOutcome',
                params: ({ context }) => ({
                  requestId: context.requestId,
                  outcome: context.outcome === 'pending' ? 'failed' : context.outcome,
                  promise: context.promise,
                }),
              },
            },
          },
        },
        observed: { type: 'final', meta: { description: 'the checker reaped the future and reported the outcome' } },
      },
    },
  },
  output: ({ context }) => ({
    requestId: context.requestId,
    outcome: context.outcome === 'pending' ? 'failed' : context.outcome,
    quiesced: context.handlesQuiesced !== false,
  }),
});

export const contextSendIgnores: IgnorePolicy<ContextSendEvent['type']> = {
  REQUEST_INFO: { where: 'elsewhere', why: 'a duplicate or late request info for a request already being served or unwound is dropped' },
  CANCEL: { where: ['sender.finished', 'future'], why: 'a cancel after the outcome is published changes nothing (the published error or value stands)' },
  TRANSFERS_SETTLED: { where: 'elsewhere', why: 'handles exist only while sending or cancelling' },
  WORKER_STEP: { where: 'elsewhere', why: 'the worker has a step to take only while unwinding' },
  STATUS_POLL: { where: 'elsewhere', why: 'the checker polls the future; only the future region answers, and only until observed' },
};