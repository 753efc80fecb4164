import { assign, setup } from 'xstate';
import type { IgnorePolicy, QuiescenceProof, StateMeta } from './common.js';
import { DEFAULT_DELAYS } from './common.js';

/**
 * The LlmRequestState view of one request, in either role, under TensorRT-LLM's state names.
 *
 * Terminal states (DISAGG_CONTEXT_COMPLETE, DISAGG_TRANS_ERROR, GENERATION_COMPLETE) are absorbing: a
 * late success never overwrites an error (S8). Entering one does not free anything: resources are
 * freed only once the transfer side reports it is quiescent (S4), with the proof it has; a side that
 * never becomes quiescent makes the request fail closed (its blocks are quarantined, not freed).
 * The request is finished (tag `finished`) once its resources were freed or quarantined; the terminal
 * state it finished in stays visible as the top-level state.
 *
 * The generation server verifies the blocks it serves when decoding starts and reports the result
 * (SERVED_VERIFIED); a failed check ends the request in DISAGG_TRANS_ERROR with reason 'corrupted'. The
 * outcome is decided here, so the explorer and conformance see it; servers only report it.
 */
export type RequestRole = 'context' | 'generation';

export interface RequestLifecycleInput {
  requestId: string;
  role: RequestRole;
}

export interface RequestLifecycleContext {
  requestId: string;
  role: RequestRole;
  /** The transfer side (contextSend / generationReceive) has finished and its future was reaped. */
  sideQuiescent: boolean;
  /** Whether the side proved that no transfer can still touch the request's blocks. */
  sideProof: boolean;
  /** Which proof the side has (what freeResources hands the lease); null = none (quarantine). */
  sideHow: QuiescenceProof | null;
  /** Why the request ended in error, for the error response ('corrupted': its served blocks failed verification). */
  errorReason: 'none' | 'cancelled' | 'timedOut' | 'transferFailed' | 'corrupted';
  /**
   * The transfer side was started (CONTEXT_DONE, SCHEDULED). Then the request holds its blocks (it left
   * the admission queue) and the context peer session knows it: `freeResources` and `requestFinished`
   * say so, and the wiring tells admission and the session only about a request that never started.
   */
  sideStarted: boolean;
}

export type RequestLifecycleEvent =
  /** Context side: prefill finished; respondAndSendAsync. */
  | { type: 'CONTEXT_DONE' }
  /** Generation side: the scheduler admitted the request and allocated its KV blocks. */
  | { type: 'SCHEDULED' }
  | { type: 'SEND_COMPLETE' }
  | { type: 'SEND_FAILED'; reason: 'cancelled' | 'timedOut' | 'transferFailed' }
  | { type: 'RECV_COMPLETE' }
  | { type: 'RECV_FAILED'; reason: 'cancelled' | 'timedOut' | 'transferFailed' }
  | { type: 'DECODE_START' }
  /**
   * Generation side: the server verified the blocks it now serves to decode (right after DECODE_START,
   * in the same step): `ok` is whether every block still holds exactly this request's bytes.
   */
  | { type: 'SERVED_VERIFIED'; ok: boolean }
  | { type: 'DECODE_DONE' }
  /** A user (or router) cancel. */
  | { type: 'CANCEL' }
  /**
   * The transfer side finished and its future was reaped; `proof` tells whether its blocks are quiescent
   * and `how` which proof it has (default 'terminalStatus' when proof is true).
   */
  | { type: 'SIDE_QUIESCENT'; proof: boolean; how?: QuiescenceProof | null };

const reqId = ({ context }: { context: RequestLifecycleContext }) => ({ requestId: context.requestId });

/** The release half of every terminal state: wait for the side, then free (or quarantine) exactly once. */
const releaseAfterQuiescence = (outcome: RequestOutcome | 'byReason') => ({
  initial: 'awaitingQuiescence',
  states: {
    awaitingQuiescence: {
      meta: { description: 'terminal; waiting for the transfer side to be quiescent before freeing' } satisfies StateMeta,
      always: { guard: 'sideQuiescent', target: 'released' },
      on: {
        SIDE_QUIESCENT: {
          target: 'released',
          actions: { type: 'noteQuiescent', params: ({ event }: { event: { type: 'SIDE_QUIESCENT'; proof: boolean; how?: QuiescenceProof | null } }) => howOf(event) },
        },
      },
      after: { quiescenceTimeout: { target: 'failedClosed' } },
    },
    released: {
      type: 'final',
      tags: ['finished'],
      meta: { description: 'resources freed once, with the side’s proof' } satisfies StateMeta,
      entry: [
        { type: 'freeResources', params: ({ context }: { context: RequestLifecycleContext }) => ({ requestId: context.requestId, proof: context.sideProof, release: context.sideProof ? context.sideHow : null, sideStarted: context.sideStarted }) },
        { type: 'requestFinished', params: ({ context }: { context: RequestLifecycleContext }) => finishedParams(context, outcome) },
      ],
    },
    /** The side never became quiescent: keep the blocks out of the pool (quarantine) rather than free them. */
    failedClosed: {
      type: 'final',
      tags: ['finished'],
      meta: { description: 'the side never became quiescent: blocks go to quarantine, not the pool' } satisfies StateMeta,
      entry: [
        { type: 'freeResources', params: ({ context }: { context: RequestLifecycleContext }) => ({ requestId: context.requestId, proof: false, release: null, sideStarted: context.sideStarted }) },
        { type: 'requestFinished', params: ({ context }: { context: RequestLifecycleContext }) => finishedParams(context, outcome) },
      ],
    },
  },
}) as const;

/** The side's proof as the lifecycle keeps it: a boolean (legacy callers) and which proof it is. */
const howOf = (event: { proof: boolean; how?: QuiescenceProof | null }) => ({ proof: event.proof, how: event.proof ? (event.how ?? 'terminalStatus') : null });

/** The user-facing outcome of a finished request: typed, decided here (servers only report it). */
export type RequestOutcome = 'completed' | 'failed' | 'cancelled';
const finishedParams = (context: RequestLifecycleContext, outcome: RequestOutcome | 'byReason') => ({
  requestId: context.requestId,
  outcome: outcome !== 'byReason' ? outcome : context.errorReason === 'cancelled' ? ('cancelled' as const) : ('failed' as const),
  reason: context.errorReason,
  sideStarted: context.sideStarted,
});

export const requestLifecycleMachine = setup({
  types: {
    input: {} as RequestLifecycleInput,
    context: {} as RequestLifecycleContext,
    events: {} as RequestLifecycleEvent,
  },
  actions: {
    /** Engine: respondAndSendAsync — start the contextSend actor for the request. */
    startContextSend: (_: unknown, _params: { requestId: string }) => {},
    /** Engine: requestAndReceiveAsync — start the generationReceive actor for the request. */
    startGenerationReceive: (_: unknown, _params: { requestId: string }) => {},
    /**
     * Engine (generation role): tell the context peer the request was cancelled before this side ever
     * asked for it, so the peer need not wait out its transfer deadline (control message `cancel`).
     */
    tellPeerCancelled: (_: unknown, _params: { requestId: string }) => {},
    /** Engine: forward a cancel (user or deadline) to the transfer side. */
    cancelSide: (_: unknown, _params: { requestId: string }) => {},
    /**
     * Engine: free the request's KV blocks — reusable with proof, quarantined without. Runs exactly once.
     * `sideStarted` false: the request may still wait in the admission queue (withdraw it there).
     */
    freeResources: (_: unknown, _params: { requestId: string; proof: boolean; release: QuiescenceProof | null; sideStarted: boolean }) => {},
    /**
     * Engine: report the request's typed outcome to the user (exactly once, when it is finished).
     * `sideStarted` false: no transfer side ever ran (the context peer session learns it from this).
     */
    requestFinished: (_: unknown, _params: { requestId: string; outcome: RequestOutcome; reason: RequestLifecycleContext['errorReason']; sideStarted: boolean }) => {},
    noteStarted: assign({ sideStarted: true }),
    /** Engine: send the error response for the request. */
    respondError: (_: unknown, _params: { requestId: string; reason: string }) => {},
    noteQuiescent: assign((_, params: { proof: boolean; how: QuiescenceProof | null }) => ({ sideQuiescent: true, sideProof: params.proof, sideHow: params.how })),
    noteError: assign((_, params: { reason: RequestLifecycleContext['errorReason'] }) => ({ errorReason: params.reason })),
  },
  guards: {
    isContext: ({ context }) => context.role === 'context',
    sideQuiescent: ({ context }) => context.sideQuiescent,
    /** The served-bytes check failed: decoding from these blocks would return another request's data. */
    servedCorrupt: ({ event }) => event.type === 'SERVED_VERIFIED' && !event.ok,
  },
  delays: {
    kvTransferTimeout: DEFAULT_DELAYS.kvTransferTimeout,
    quiescenceTimeout: DEFAULT_DELAYS.quiescenceTimeout,
  },
}).createMachine({
  id: 'requestLifecycle',
  context: ({ input }) => ({
    requestId: input?.requestId ?? 'r',
    role: input?.role ?? 'context',
    sideQuiescent: false,
    sideProof: false,
    sideHow: null,
    errorReason: 'none',
    sideStarted: false,
  }),
  initial: 'init',
  // A side that finishes early (e.g. before its outcome is reported) is remembered in any state.
  on: {
    SIDE_QUIESCENT: { actions: { type: 'noteQuiescent', params: ({ event }) => howOf(event) } },
  },
  states: {
    init: {
      meta: { description: 'transient: enter the role’s first state' } satisfies StateMeta,
      always: [{ guard: 'isContext', target: 'CONTEXT_INIT' }, { target: 'DISAGG_GENERATION_INIT' }],
    },
    CONTEXT_INIT: {
      meta: { localProgress: ['CONTEXT_DONE'], description: 'prefill running' } satisfies StateMeta,
      on: {
        CONTEXT_DONE: { target: 'DISAGG_CONTEXT_TRANS_IN_PROGRESS', actions: ['noteStarted', { type: 'startContextSend', params: reqId }] },
        // Nothing was sent and no side exists: the error is final and trivially quiescent.
        CANCEL: { target: 'DISAGG_TRANS_ERROR', actions: [{ type: 'noteError', params: { reason: 'cancelled' } }, assign({ sideQuiescent: true, sideProof: true, sideHow: 'neverExposed' as const })] },
      },
    },
    DISAGG_CONTEXT_TRANS_IN_PROGRESS: {
      meta: { description: 'KV send pending or in flight (21)' } satisfies StateMeta,
      on: {
        SEND_COMPLETE: 'DISAGG_CONTEXT_COMPLETE',
        SEND_FAILED: { target: 'DISAGG_TRANS_ERROR', actions: { type: 'noteError', params: ({ event }) => ({ reason: event.reason }) } },
        CANCEL: { actions: { type: 'cancelSide', params: reqId } },
      },
      after: {
        kvTransferTimeout: { target: 'DISAGG_TRANS_ERROR', actions: [{ type: 'noteError', params: { reason: 'timedOut' } }, { type: 'cancelSide', params: reqId }] },
      },
    },
    DISAGG_CONTEXT_COMPLETE: { ...releaseAfterQuiescence('completed') },
    DISAGG_GENERATION_INIT: {
      meta: { description: 'waiting to be scheduled (8)' } satisfies StateMeta,
      on: {
        SCHEDULED: { target: 'DISAGG_GENERATION_TRANS_IN_PROGRESS', actions: ['noteStarted', { type: 'startGenerationReceive', params: reqId }] },
        // Never asked for: the context peer is told, or it would wait out its transfer deadline.
        CANCEL: {
          target: 'DISAGG_TRANS_ERROR',
          actions: [{ type: 'noteError', params: { reason: 'cancelled' } }, assign({ sideQuiescent: true, sideProof: true, sideHow: 'neverExposed' as const }), { type: 'tellPeerCancelled', params: reqId }],
        },
      },
      after: {
        kvTransferTimeout: { target: 'DISAGG_TRANS_ERROR', actions: [{ type: 'noteError', params: { reason: 'timedOut' } }, assign({ sideQuiescent: true, sideProof: true, sideHow: 'neverExposed' as const })] },
      },
    },
    DISAGG_GENERATION_TRANS_IN_PROGRESS: {
      meta: { description: 'KV receive in flight (9)' } satisfies StateMeta,
      on: {
        RECV_COMPLETE: 'DISAGG_GENERATION_TRANS_COMPLETE',
        RECV_FAILED: { target: 'DISAGG_TRANS_ERROR', actions: { type: 'noteError', params: ({ event }) => ({ reason: event.reason }) } },
        CANCEL: { actions: { type: 'cancelSide', params: reqId } },
      },
      after: {
        kvTransferTimeout: { target: 'DISAGG_TRANS_ERROR', actions: [{ type: 'noteError', params: { reason: 'timedOut' } }, { type: 'cancelSide', params: reqId }] },
      },
    },
    DISAGG_GENERATION_TRANS_COMPLETE: {
      meta: { localProgress: ['DECODE_START'], description: 'KV received (12)' } satisfies StateMeta,
      on: { DECODE_START: 'GENERATION_IN_PROGRESS', CANCEL: 'GENERATION_COMPLETE' },
    },
    GENERATION_IN_PROGRESS: {
      meta: { localProgress: ['DECODE_DONE'], description: 'decoding (13); the served blocks were verified when decoding started' } satisfies StateMeta,
      on: {
        DECODE_DONE: 'GENERATION_COMPLETE',
        // A cancel while decoding finishes the request early; the transfer side already finished.
        CANCEL: 'GENERATION_COMPLETE',
        // Served blocks that are not this request's bytes: the request fails (never "completed" on wrong
        // data); ok=true leaves decoding as it is.
        SERVED_VERIFIED: { guard: 'servedCorrupt', target: 'DISAGG_TRANS_ERROR', actions: { type: 'noteError', params: { reason: 'corrupted' } } },
      },
    },
    GENERATION_COMPLETE: { ...releaseAfterQuiescence('completed') },
    DISAGG_TRANS_ERROR: {
      entry: { type: 'respondError', params: ({ context }) => ({ requestId: context.requestId, reason: context.errorReason }) },
      ...releaseAfterQuiescence('byReason'),
    },
  },
});

/** Top-level states after which a request's transfer outcome is fixed (S8). */
export const TRANSFER_TERMINAL_STATES = [
  'DISAGG_CONTEXT_COMPLETE',
  'DISAGG_TRANS_ERROR',
  'DISAGG_GENERATION_TRANS_COMPLETE',
  'GENERATION_IN_PROGRESS',
  'GENERATION_COMPLETE',
] as const;

/** States in which a transfer may still touch the request's blocks (S4: nothing is freed here). */
export const TRANSMISSION_STATES = ['DISAGG_CONTEXT_TRANS_IN_PROGRESS', 'DISAGG_GENERATION_TRANS_IN_PROGRESS'] as const;

const TERMINAL = ['DISAGG_CONTEXT_COMPLETE', 'DISAGG_TRANS_ERROR', 'GENERATION_COMPLETE'];

export const requestLifecycleIgnores: IgnorePolicy<RequestLifecycleEvent['type']> = {
  CONTEXT_DONE: { where: 'elsewhere', why: 'prefill completes once, and only context requests have one' },
  SCHEDULED: { where: 'elsewhere', why: 'a generation request is scheduled once' },
  SEND_COMPLETE: { where: 'elsewhere', why: 'terminal states are absorbing (S8); the generation role never sends' },
  SEND_FAILED: { where: 'elsewhere', why: 'terminal states are absorbing (S8); the generation role never sends' },
  RECV_COMPLETE: { where: 'elsewhere', why: 'terminal states are absorbing (S8); the context role never receives' },
  RECV_FAILED: { where: 'elsewhere', why: 'terminal states are absorbing (S8); the context role never receives' },
  DECODE_START: { where: 'elsewhere', why: 'decoding starts once, after the KV cache arrived' },
  DECODE_DONE: { where: 'elsewhere', why: 'decoding ends once' },
  SERVED_VERIFIED: { where: 'elsewhere', why: 'the server verifies the served blocks only right after DECODE_START (decoding); ok=true there changes nothing' },
  CANCEL: { where: ['init', ...TERMINAL], why: 'a finished request has nothing to cancel' },
  SIDE_QUIESCENT: { where: [], why: 'handled everywhere (remembered by the root)' },
};