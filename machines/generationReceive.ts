import { assign, setup } from 'xstate';
import type { IgnorePolicy, PromiseState, TransferResult, QuiescenceProof, StateMeta, TransferOutcome } from './common.js';
import { DEFAULT_DELAYS, resultOf } from './common.js';

/**
 * One request on the generation (decode) side: queued for the receiver worker → owned by the worker →
 * receive slot granted and request info sent (the slot is now advertised to a remote writer) → waiting
 * for the ready signal (tri-state: ready, not-ready, not-arrived) → receiving → the sync notification
 * arrived → received. A second region is the status checker's view of the future.
 *
 * A deadline drives cancellation in every waiting state. Queued requests are resolved with an explicit
 * error (never an abandoned promise); owned ones stop waiting in one transition and hand their slot back
 * with the proof they have — or without, which sends it to quarantine. No refused-cancel retry loop.
 */
export interface GenerationReceiveInput {
  requestId: string;
}

export type SlotState = 'none' | 'requested' | 'held' | 'released';

export interface GenerationReceiveContext {
  requestId: string;
  slot: SlotState;
  outcome: TransferOutcome | 'pending';
  promise: PromiseState;
  /** How the slot (advertised to the remote writer) may be reused; null = no proof → quarantine. */
  proof: QuiescenceProof | null;
  /** The sync notification arrived before the ready signal did. */
  syncSeen: boolean;
}

export type GenerationReceiveEvent =
  /** The receiver worker pops the request from its queue. */
  | { type: 'WORKER_POP' }
  /** The receive-buffer pool granted a slot. */
  | { type: 'SLOT_GRANTED' }
  /** The sender's ready signal arrived: true = data follows, false = explicit not-ready before any write. */
  | { type: 'READY_SIGNAL'; ready: boolean }
  /** The ready-signal wait ended without a signal (terminated): not-arrived is neither ready nor not-ready. */
  | { type: 'READY_WAIT_ENDED' }
  /** The sync-notification wait ended; `arrived` tells whether the notification really came. */
  | { type: 'SYNC_WAIT_ENDED'; arrived: boolean }
  /**
   * The sync notification arrived and the server checked the blocks against what it names: `ok` = every
   * byte is this request's data for this allocation. The machine decides what that proves.
   */
  | { type: 'SYNC_VERIFIED'; ok: boolean }
  /**
   * The sender stopped the request's transfer before its data was complete and every handle of it is
   * quiescent (control message `stopped`): no data is coming, and no write can still land.
   */
  | { type: 'PEER_STOPPED' }
  | { type: 'CANCEL' }
  | { type: 'STATUS_POLL' };

export interface GenerationReceiveOutput {
  requestId: string;
  outcome: TransferOutcome;
  proof: QuiescenceProof | null;
}

const finish = (outcome: TransferOutcome, proof: QuiescenceProof | null) => ({ type: 'finish', params: { outcome, proof } }) as const;

export const generationReceiveMachine = setup({
  types: {
    input: {} as GenerationReceiveInput,
    context: {} as GenerationReceiveContext,
    events: {} as GenerationReceiveEvent,
    output: {} as GenerationReceiveOutput,
  },
  actions: {
    /** Engine: ask the receive-buffer pool for a slot (granted later with SLOT_GRANTED). */
    requestSlot: (_: unknown, _params: { requestId: string }) => {},
    /** Engine: withdraw a pending slot request so a late grant cannot leak. */
    withdrawSlotRequest: (_: unknown, _params: { requestId: string }) => {},
    /** Engine: send RequestAndBufferInfo (the slot's descriptor) to every context counterpart. */
    sendRequestInfo: (_: unknown, _params: { requestId: string }) => {},
    /** Engine: give the slot back to the pool — reusable with proof, quarantined without. */
    releaseSlot: (_: unknown, _params: { requestId: string; proof: QuiescenceProof | null }) => {},
    /**
     * Engine: tell the context peer the request was cancelled here before its request info was sent: it
     * will never be asked for, so the peer need not wait out its transfer deadline (control message `cancel`).
     */
    tellPeerCancelled: (_: unknown, _params: { requestId: string }) => {},
    /** Engine: report the observed future to the executor (request state 12 or -1). */
    reportOutcome: (_: unknown, _params: { requestId: string; outcome: TransferOutcome; promise: PromiseState; result: TransferResult }) => {},
    markSlotRequested: assign({ slot: 'requested' as SlotState }),
    markSlotHeld: assign({ slot: 'held' as SlotState }),
    finish: assign((_, params: { outcome: TransferOutcome; proof: QuiescenceProof | null }) => ({ outcome: params.outcome, proof: params.proof })),
    /** A cancel (or deadline) of a request still in the worker's queue: an explicit error, never a dropped promise. */
    resolveQueuedCancel: assign({ promise: 'error' as PromiseState }),
    noteSync: assign({ syncSeen: true }),
    publishOutcome: assign(({ context }) => ({ promise: (context.outcome === 'succeeded' ? 'value' : 'error') as PromiseState })),
  },
  guards: {
    futureReady: ({ context }) => context.promise !== 'pending',
    /** S7: only a notification that really arrived counts as data received. */
    syncArrived: (_, params: { arrived: boolean }) => params.arrived,
    signalReady: (_, params: { ready: boolean }) => params.ready,
    sawSync: ({ context }) => context.syncSeen,
    readyAfterSync: ({ context }, params: { ready: boolean }) => params.ready && context.syncSeen,
  },
  delays: {
    kvTransferTimeout: DEFAULT_DELAYS.kvTransferTimeout,
  },
}).createMachine({
  id: 'generationReceive',
  type: 'parallel',
  context: ({ input }) => ({
    requestId: input?.requestId ?? 'r',
    slot: 'none',
    outcome: 'pending',
    promise: 'pending',
    proof: null,
    syncSeen: false,
  }),
  states: {
    worker: {
      initial: 'queued',
      states: {
        queued: {
          meta: { description: "in the receiver worker's queue" } satisfies StateMeta,
          on: {
            WORKER_POP: { target: 'awaitingSlot', actions: ['markSlotRequested', { type: 'requestSlot', params: ({ context }) => ({ requestId: context.requestId }) }] },
            CANCEL: { target: 'done', actions: [finish('cancelled', 'neverExposed'), 'resolveQueuedCancel', { type: 'tellPeerCancelled', params: ({ context }) => ({ requestId: context.requestId }) }] },
          },
          after: { kvTransferTimeout: { target: 'done', actions: [finish('timedOut', 'neverExposed'), 'resolveQueuedCancel'] } },
        },
        awaitingSlot: {
          meta: { description: 'owned by the worker; waiting for a receive slot' } satisfies StateMeta,
          on: {
            SLOT_GRANTED: { target: 'awaitingReady', actions: ['markSlotHeld', { type: 'sendRequestInfo', params: ({ context }) => ({ requestId: context.requestId }) }] },
            CANCEL: {
              target: 'unwinding',
              actions: [
                finish('cancelled', 'neverExposed'),
                { type: 'withdrawSlotRequest', params: ({ context }) => ({ requestId: context.requestId }) },
                { type: 'tellPeerCancelled', params: ({ context }) => ({ requestId: context.requestId }) },
              ],
            },
          },
          after: {
            kvTransferTimeout: { target: 'unwinding', actions: [finish('timedOut', 'neverExposed'), { type: 'withdrawSlotRequest', params: ({ context }) => ({ requestId: context.requestId }) }] },
          },
        },
        awaitingReady: {
          meta: { description: 'request info sent (slot advertised); waiting for the ready signal' } satisfies StateMeta,
          on: {
            READY_SIGNAL: [
              // The data and its sync notification already arrived (they overtook the ready signal).
              { guard: { type: 'readyAfterSync', params: ({ event }) => ({ ready: event.ready }) }, target: 'unwinding', actions: finish('succeeded', 'terminalAndSync') },
              { guard: { type: 'signalReady', params: ({ event }) => ({ ready: event.ready }) }, target: 'receiving' },
              // Explicit not-ready before any write: the only proof that frees the slot without data.
              { target: 'unwinding', actions: finish('failed', 'notReadyBeforeWrite') },
            ],
            // The sync notification travels on another channel than the ready signal and can overtake it.
            SYNC_WAIT_ENDED: { guard: { type: 'syncArrived', params: ({ event }) => ({ arrived: event.arrived }) }, actions: 'noteSync' },
            // Verified data that overtook the ready signal is remembered; wrong data is never served.
            SYNC_VERIFIED: [
              { guard: { type: 'syncArrived', params: ({ event }) => ({ arrived: event.ok }) }, actions: 'noteSync' },
              { target: 'unwinding', actions: finish('failed', null) },
            ],
            // Not arrived ≠ not ready: the sender may still write, so no proof (S7, S5) — unless its data
            // and sync notification already came.
            READY_WAIT_ENDED: [
              { guard: 'sawSync', target: 'unwinding', actions: finish('failed', 'terminalAndSync') },
              { target: 'unwinding', actions: finish('failed', null) },
            ],
            // The sender stopped (it may overtake the ready signal): its handles are quiescent, a proof.
            PEER_STOPPED: { target: 'unwinding', actions: finish('failed', 'peerFenced') },
            CANCEL: [
              { guard: 'sawSync', target: 'unwinding', actions: finish('cancelled', 'terminalAndSync') },
              { target: 'unwinding', actions: finish('cancelled', null) },
            ],
          },
          after: {
            kvTransferTimeout: [
              { guard: 'sawSync', target: 'unwinding', actions: finish('timedOut', 'terminalAndSync') },
              { target: 'unwinding', actions: finish('timedOut', null) },
            ],
          },
        },
        receiving: {
          meta: { description: 'ready signal received; waiting for the sync notification that follows the data' } satisfies StateMeta,
          on: {
            SYNC_WAIT_ENDED: [
              { guard: { type: 'syncArrived', params: ({ event }) => ({ arrived: event.arrived }) }, target: 'unwinding', actions: finish('succeeded', 'terminalAndSync') },
              { target: 'unwinding', actions: finish('failed', null) },
            ],
            // Wrong bytes (stale or foreign writer): fail, and keep the blocks quarantined (no proof).
            SYNC_VERIFIED: [
              { guard: { type: 'syncArrived', params: ({ event }) => ({ arrived: event.ok }) }, target: 'unwinding', actions: finish('succeeded', 'terminalAndSync') },
              { target: 'unwinding', actions: finish('failed', null) },
            ],
            // No sync will come: the sender stopped, its handles quiescent (the fact a fence acknowledgement states).
            PEER_STOPPED: { target: 'unwinding', actions: finish('failed', 'peerFenced') },
            CANCEL: { target: 'unwinding', actions: finish('cancelled', null) },
          },
          after: { kvTransferTimeout: { target: 'unwinding', actions: finish('timedOut', null) } },
        },
        unwinding: {
          meta: { description: 'hand the slot back, then publish (transient)' } satisfies StateMeta,
          // Slot first, publish last (S3): once the future is ready nothing of the request is left here.
          always: {
            target: 'done',
            actions: [
              {
                type: 'releaseSlot',
                params: ({ context }) => ({ requestId: context.requestId, proof: context.slot === 'held' ? context.proof : 'neverExposed' }),
              },
              assign({ slot: 'released' as SlotState }),
              'publishOutcome',
            ],
          },
        },
        done: { type: 'final', meta: { description: 'the worker holds nothing of the request any more' } },
      },
    },
    future: {
      initial: 'pending',
      states: {
        pending: {
          meta: { localProgress: ['STATUS_POLL'], description: "the status checker's future" } satisfies StateMeta,
          on: {
            STATUS_POLL: {
              guard: 'futureReady',
              target: 'observed',
              actions: {
                type: 'reportOutcome',
                params: ({ context }) => ({ requestId: context.requestId, outcome: context.outcome === 'pending' ? 'failed' : context.outcome, promise: context.promise, result: resultOf(context.promise, context.outcome) }),
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
    proof: context.proof,
  }),
});

export const generationReceiveIgnores: IgnorePolicy<GenerationReceiveEvent['type']> = {
  WORKER_POP: { where: 'elsewhere', why: 'the worker pops a request once' },
  SLOT_GRANTED: { where: 'elsewhere', why: 'the pool grants only pending slot requests; a request withdraws its request before leaving awaitingSlot' },
  READY_SIGNAL: { where: 'elsewhere', why: 'a ready signal after the wait ended (late or duplicated) is dropped; the slot stays quarantined until proof' },
  READY_WAIT_ENDED: { where: 'elsewhere', why: 'only a pending ready-signal wait can end' },
  SYNC_VERIFIED: { where: 'elsewhere', why: 'a notification after the worker decided is proof for the quarantined lease, delivered to the lease' },
  SYNC_WAIT_ENDED: { where: 'elsewhere', why: 'a notification is awaited (or remembered) only while receiving or awaiting the ready signal; a late one is proof for the quarantined slot, handled by the pool' },
  PEER_STOPPED: { where: 'elsewhere', why: 'a stopped sender matters only while the worker waits for data; once it decided, its proof (or quarantine) stands' },
  CANCEL: { where: ['worker.unwinding', 'worker.done', 'future'], why: 'a cancel after the worker decided the outcome changes nothing' },
  STATUS_POLL: { where: 'elsewhere', why: 'only the future region answers the checker, and only until observed' },
};