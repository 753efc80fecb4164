import { assign, setup } from 'xstate';
import type { IgnorePolicy, PromiseState, TransferResult, QuiescenceProof, RemoteRef, StateMeta, TransferOutcome } from './common.js';
import { DEFAULT_DELAYS, resultOf } from './common.js';

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
  /** How many transfer handles the request's transfer uses (one per remote rank); default 1. */
  handles?: number;
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
  /** N: the handles the transfer creates. */
  handleCount: number;
  /** Handles that reported TRANSFERS_SETTLED so far, and whether every one of them was quiesced / succeeded. */
  settledCount: number;
  settledQuiesced: boolean;
  settledOk: boolean;
  /** The peer's descriptors of the blocks to write (from its request info); null until asked, dropped when fenced. */
  remote: RemoteRef | null;
  /** The generation peer fenced this request: no transfer may start, and it waits for our acknowledgement. */
  fenced: boolean;
}

export type ContextSendEvent =
  | { type: 'REQUEST_INFO'; remote?: RemoteRef }
  | { type: 'CANCEL' }
  /**
   * One transfer handle finished (its output). The request's transfers are settled once all `handles`
   * reported; the first failure cancels the siblings but unwinds only after every one settled (vLLM #56104).
   */
  | { type: 'TRANSFERS_SETTLED'; outcome: 'succeeded' | 'failed' | 'cancelled' | 'timedOut'; quiesced: boolean; index?: number }
  /** The generation peer fenced the request (its blocks will be reused once we acknowledge). */
  | { type: 'FENCE' }
  /**
   * The generation peer cancelled the request before asking for it (it never sent, and never will send,
   * a request info): nothing will be written, so there is nothing to wait for.
   */
  | { type: 'PEER_CANCEL' }
  /** The sender worker thread takes its next step. */
  | { type: 'WORKER_STEP' }
  /** The status checker polls this request's future. */
  | { type: 'STATUS_POLL' };

export interface ContextSendOutput {
  requestId: string;
  outcome: TransferOutcome;
  /** True when nothing can still touch the source blocks (no transfer, or every handle proved quiescent). */
  quiesced: boolean;
  /** Which proof the source blocks have: no transfer ever started, terminal statuses, or none. */
  proof: QuiescenceProof | null;
}

const worker: StateMeta = { localProgress: ['WORKER_STEP'] };
const reqIdOf = ({ context }: { context: ContextSendContext }) => ({ requestId: context.requestId });
const handlesOf = ({ context }: { context: ContextSendContext }) => ({ requestId: context.requestId, handles: context.handleCount });
const counted = {
  type: 'countSettled',
  params: ({ event }: { event: ContextSendEvent }) => {
    const e = event as { quiesced?: boolean; outcome?: string };
    return { quiesced: e.quiesced === true, outcome: e.outcome ?? 'failed' };
  },
} as const;
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
    /** Engine: create and post the request's `handles` transfer handles (WRITE into the peer's advertised blocks). */
    startTransfers: (_: unknown, _params: { requestId: string; handles: number; remote: RemoteRef | null }) => {},
    /** Engine: cancel the request's transfer handles (each drains, then releases). */
    cancelTransfers: (_: unknown, _params: { requestId: string; handles: number }) => {},
    /** Engine: acknowledge the peer's fence: every handle of the request is quiescent or was never created. */
    ackFence: (_: unknown, _params: { requestId: string }) => {},
    /** Engine: report the observed future to the executor (request state 22 or -1). */
    reportOutcome: (_: unknown, _params: { requestId: string; outcome: TransferOutcome; promise: PromiseState; result: TransferResult }) => {},

    // ---- bookkeeping, one assign per worker step so each can be provided separately ----
    openSession: assign(({ event }) => ({ isCurrent: true, sessionOpen: true, peerAsked: true, remote: (event as { remote?: RemoteRef }).remote ?? null })),
    markFenced: assign({ fenced: true, remote: null }),
    countSettled: assign(({ context }, params: { quiesced: boolean; outcome: string }) => ({
      settledCount: context.settledCount + 1,
      settledQuiesced: context.settledQuiesced && params.quiesced,
      settledOk: context.settledOk && params.outcome === 'succeeded',
    })),
    markCancelled: assign({ cancelMarked: true }),
    notePeerAsked: assign({ peerAsked: true }),
    decide: assign((_, params: { outcome: Decided }) => ({ outcome: params.outcome })),
    /** Every handle settled: the request's handles are quiescent only if each one proved it. */
    settle: assign(({ context }) => ({ handlesQuiesced: context.settledQuiesced })),
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
    signalPeer: (_: unknown, _params: { requestId: string; notReady: boolean; stopped?: boolean }) => {},
  },
  guards: {
    futureReady: ({ context }) => context.promise !== 'pending',
    /** This report is the last of the N handles. */
    lastHandle: ({ context }) => context.settledCount + 1 >= context.handleCount,
    /** The last handle reported and every handle succeeded. */
    lastAllSucceeded: ({ context }, params: { outcome: string }) => context.settledCount + 1 >= context.handleCount && context.settledOk && params.outcome === 'succeeded',
    /** The last handle reported, the peer fenced, and every handle proved quiescence: the fence can be acknowledged. */
    lastAndFenceAckable: ({ context }, params: { quiesced: boolean }) => context.settledCount + 1 >= context.handleCount && context.fenced && context.settledQuiesced && params.quiesced,
    /** No handle exists or every one proved quiescence (handlesQuiesced null: never created). */
    quiescentOrNever: ({ context }) => context.handlesQuiesced !== false,
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
    handleCount: Math.max(1, input?.handles ?? 1),
    settledCount: 0,
    settledQuiesced: true,
    settledOk: true,
    remote: null,
    fenced: false,
  }),
  states: {
    sender: {
      initial: 'queued',
      // A fence of a request that is unwinding or finished: every handle already settled (or none was
      // created), so the acknowledgement is the fact the handles proved; without proof, never acknowledged.
      on: {
        FENCE: [{ guard: 'quiescentOrNever', actions: ['markFenced', { type: 'ackFence', params: reqIdOf }] }, { actions: 'markFenced' }],
      },
      states: {
        queued: {
          meta: { description: 'in the ready map, waiting for the generation peer to ask' },
          on: {
            REQUEST_INFO: {
              target: 'sending',
              actions: [
                'openSession',
                { type: 'sendReadySignal', params: ({ context }) => ({ requestId: context.requestId, ready: true }) },
                { type: 'startTransfers', params: ({ context, event }) => ({ requestId: context.requestId, handles: context.handleCount, remote: (event as { remote?: RemoteRef }).remote ?? null }) },
              ],
            },
            CANCEL: { target: 'cancelMarked', actions: 'markCancelled' },
            // The peer will never ask: resolve now rather than at kvTransferTimeout.
            PEER_CANCEL: { target: 'unwinding', actions: { type: 'decide', params: { outcome: 'cancelled' } } },
            // Fenced before any transfer: the transfer becomes impossible, and nothing was ever created.
            FENCE: { target: 'unwinding', actions: ['markFenced', { type: 'decide', params: { outcome: 'cancelled' } }, { type: 'ackFence', params: reqIdOf }] },
          },
          after: { kvTransferTimeout: { target: 'unwinding', actions: { type: 'decide', params: { outcome: 'timedOut' } } } },
        },
        cancelMarked: {
          meta: { description: 'cancel accepted while queued; resolved when the peer asks or by deadline' },
          on: {
            REQUEST_INFO: { target: 'unwinding', actions: ['notePeerAsked', { type: 'decide', params: { outcome: 'cancelled' } }] },
            CANCEL: {},
            FENCE: { target: 'unwinding', actions: ['markFenced', { type: 'decide', params: { outcome: 'cancelled' } }, { type: 'ackFence', params: reqIdOf }] },
            // The peer will never ask: resolve now rather than at cancelResolveTimeout.
            PEER_CANCEL: { target: 'unwinding', actions: { type: 'decide', params: { outcome: 'cancelled' } } },
          },
          // TensorRT-LLM left this as a TODO: a peer that never asks must not keep the entry forever.
          after: { cancelResolveTimeout: { target: 'unwinding', actions: { type: 'decide', params: { outcome: 'cancelled' } } } },
        },
        sending: {
          meta: { description: 'current request; its transfer handles are posted' },
          on: {
            TRANSFERS_SETTLED: [
              {
                guard: { type: 'lastAllSucceeded', params: ({ event }) => ({ outcome: event.outcome }) },
                target: 'unwinding',
                actions: [counted, 'settle', { type: 'decide', params: { outcome: 'succeeded' } }],
              },
              { guard: 'lastHandle', target: 'unwinding', actions: [counted, 'settle', { type: 'decide', params: { outcome: 'failed' } }] },
              // One handle of several failed: the request has failed, but its siblings may still write —
              // cancel them and unwind only once every one settled (vLLM #56104).
              {
                guard: ({ event }) => event.outcome !== 'succeeded',
                target: 'cancellingTransfers',
                actions: [counted, { type: 'decide', params: { outcome: 'failed' } }, { type: 'cancelTransfers', params: handlesOf }],
              },
              { actions: counted },
            ],
            CANCEL: {
              target: 'cancellingTransfers',
              actions: [{ type: 'decide', params: { outcome: 'cancelled' } }, { type: 'cancelTransfers', params: handlesOf }],
            },
            // Fenced while transferring: stop the handles; the acknowledgement waits until all N settled.
            FENCE: {
              target: 'cancellingTransfers',
              actions: ['markFenced', { type: 'decide', params: { outcome: 'cancelled' } }, { type: 'cancelTransfers', params: handlesOf }],
            },
          },
          after: {
            kvTransferTimeout: {
              target: 'cancellingTransfers',
              actions: [{ type: 'decide', params: { outcome: 'timedOut' } }, { type: 'cancelTransfers', params: handlesOf }],
            },
          },
        },
        cancellingTransfers: {
          // No deadline of its own: the handles' drain and release deadlines bound this wait, and leaving
          // before they settle would free the request while a handle still references it (S1).
          meta: { localProgress: ['TRANSFERS_SETTLED'], description: 'handles cancelled; waiting until each is drained and released' } satisfies StateMeta,
          on: {
            TRANSFERS_SETTLED: [
              {
                guard: { type: 'lastAndFenceAckable', params: ({ event }) => ({ quiesced: event.quiesced }) },
                target: 'unwinding',
                actions: [counted, 'settle', { type: 'ackFence', params: reqIdOf }],
              },
              { guard: 'lastHandle', target: 'unwinding', actions: [counted, 'settle'] },
              { actions: counted },
            ],
            CANCEL: {},
            FENCE: { actions: 'markFenced' },
          },
        },
        unwinding: {
          initial: 'signal',
          on: { CANCEL: {} },
          states: {
            signal: {
              meta: { ...worker, description: 'tell the peer if it asked and no data will come: not-ready (no transfer was ever started) or stopped (every handle quiescent)' },
              on: {
                WORKER_STEP: {
                  target: 'moveOut',
                  actions: [
                    {
                      type: 'signalPeer',
                      params: ({ context }) => ({
                        requestId: context.requestId,
                        notReady: context.peerAsked && context.outcome !== 'succeeded' && context.handlesQuiesced === null,
                        // Stopped before the data was complete, every handle proven quiescent: the peer is
                        // told (control message `stopped`), or it would wait out its transfer deadline. A
                        // fenced request was already answered by the fence acknowledgement.
                        stopped: context.peerAsked && context.outcome !== 'succeeded' && context.handlesQuiesced === true && !context.fenced,
                      }),
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
                  result: resultOf(context.promise, context.outcome),
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
    proof: context.handlesQuiesced === null ? 'neverExposed' : context.handlesQuiesced ? 'terminalStatus' : null,
  }),
});

export const contextSendIgnores: IgnorePolicy<ContextSendEvent['type']> = {
  REQUEST_INFO: { where: 'elsewhere', why: 'a duplicate or late request info for a request already being served or unwound is dropped' },
  CANCEL: { where: ['sender.finished', 'future'], why: 'a cancel after the outcome is published changes nothing (the published error or value stands)' },
  TRANSFERS_SETTLED: { where: 'elsewhere', why: 'handles exist only while sending or cancelling' },
  FENCE: { where: ['future'], why: 'handled everywhere: before a transfer it makes the transfer impossible; after, it is acknowledged from the handles’ proof' },
  PEER_CANCEL: { where: 'elsewhere', why: 'the peer cancels only a request it never asked for, so it finds it queued or cancel-marked; elsewhere (a duplicate, or after a fence) it is already unwinding' },
  WORKER_STEP: { where: 'elsewhere', why: 'the worker has a step to take only while unwinding' },
  STATUS_POLL: { where: 'elsewhere', why: 'the checker polls the future; only the future region answers, and only until observed' },
};