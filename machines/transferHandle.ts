import { assign, setup } from 'xstate';
import type { BackendSemantics, IgnorePolicy, StateMeta } from './common.js';
import { DEFAULT_DELAYS } from './common.js';

/**
 * One NIXL transfer request (a handle): prepared → inProgress → terminal status → released.
 *
 * Release is not cancel (NIXL over UCX keeps writing after `releaseXferReq` succeeds), so a cancel
 * first stops wanting the transfer, aborts where the backend can confirm it, otherwise polls to a
 * terminal status, and only then releases. The final fact is `quiesced`: true only with proof.
 */
export type TransferHandleOutcome = 'succeeded' | 'failed' | 'cancelled' | 'timedOut';

export interface TransferHandleInput {
  handleId: string;
  semantics: BackendSemantics;
}

export interface TransferHandleContext {
  handleId: string;
  semantics: BackendSemantics;
  /** Why the handle ended; null while it is still wanted. */
  outcome: TransferHandleOutcome | null;
  /** True once a terminal status (or a confirmed abort) proved the backend stopped touching the buffers. */
  quiesced: boolean;
  /** The backend refused a release once; it is retried after a terminal status. */
  releaseRefused: boolean;
  /** Refused and never terminal within the deadline: the handle could not be released. */
  leaked: boolean;
}

export type TransferHandleEvent =
  | { type: 'POST' }
  | { type: 'CANCEL' }
  /** A status poll returned a terminal value (terminal values are sticky). */
  | { type: 'STATUS'; status: 'DONE' | 'ERROR' }
  /** The backend confirmed an in-flight abort: it no longer touches either buffer. */
  | { type: 'ABORTED' }
  | { type: 'RELEASE_RESULT'; accepted: boolean; quiesced: boolean };

export interface TransferHandleOutput {
  handleId: string;
  outcome: TransferHandleOutcome;
  quiesced: boolean;
  /** The handle could not be released (refused and never terminal): the owner must treat it as leaked. */
  leaked: boolean;
}

const local = (...events: string[]): StateMeta => ({ localProgress: events });

export const transferHandleMachine = setup({
  types: {
    input: {} as TransferHandleInput,
    context: {} as TransferHandleContext,
    events: {} as TransferHandleEvent,
    output: {} as TransferHandleOutput,
  },
  actions: {
    /** Engine: postXferReq. */
    postTransfer: (_: unknown, _params: { handleId: string }) => {},
    /**
     * Engine: abort where the backend supports it (the result comes back as ABORTED); elsewhere this only
     * stops wanting the transfer and status polling continues until a terminal STATUS.
     */
    abortTransfer: (_: unknown, _params: { handleId: string }) => {},
    /** Engine: releaseXferReq; the result comes back synchronously as RELEASE_RESULT. */
    releaseHandle: (_: unknown, _params: { handleId: string }) => {},
    markTerminal: assign((_, params: { outcome: TransferHandleOutcome | null }) => ({
      quiesced: true,
      ...(params.outcome ? { outcome: params.outcome } : {}),
    })),
    markWanted: assign((_, params: { outcome: TransferHandleOutcome }) => ({ outcome: params.outcome })),
    markReleaseRefused: assign({ releaseRefused: true }),
  },
  guards: {
    canAbort: ({ context }) => context.semantics.canAbortInFlight,
    releaseAccepted: (_, params: { accepted: boolean }) => params.accepted,
  },
  delays: {
    kvTransferTimeout: DEFAULT_DELAYS.kvTransferTimeout,
    drainTimeout: DEFAULT_DELAYS.drainTimeout,
  },
}).createMachine({
  id: 'transferHandle',
  context: ({ input }) => ({
    handleId: input?.handleId ?? 'h',
    semantics: input?.semantics ?? { canAbortInFlight: false, releaseInFlightQuiesces: false },
    outcome: null,
    quiesced: false,
    releaseRefused: false,
    leaked: false,
  }),
  initial: 'prepared',
  states: {
    prepared: {
      meta: { ...local('POST', 'CANCEL'), description: 'created, not yet posted; nothing touches the buffers' },
      on: {
        POST: { target: 'inProgress', actions: { type: 'postTransfer', params: ({ context }) => ({ handleId: context.handleId }) } },
        // Never posted: nothing can be touching the buffers.
        CANCEL: { target: 'releasing', actions: [{ type: 'markWanted', params: { outcome: 'cancelled' } }, { type: 'markTerminal', params: { outcome: null } }] },
      },
    },
    inProgress: {
      meta: { description: 'posted; the backend moves bytes' },
      on: {
        STATUS: [
          { guard: ({ event }) => event.status === 'DONE', target: 'releasing', actions: { type: 'markTerminal', params: { outcome: 'succeeded' } } },
          { target: 'releasing', actions: { type: 'markTerminal', params: { outcome: 'failed' } } },
        ],
        CANCEL: { target: 'draining', actions: { type: 'markWanted', params: { outcome: 'cancelled' } } },
      },
      after: {
        kvTransferTimeout: { target: 'draining', actions: { type: 'markWanted', params: { outcome: 'timedOut' } } },
      },
    },
    draining: {
      meta: { description: 'unwanted; abort if the backend can confirm it, else poll to a terminal status' },
      entry: { type: 'abortTransfer', params: ({ context }) => ({ handleId: context.handleId }) },
      on: {
        ABORTED: { target: 'releasing', actions: { type: 'markTerminal', params: { outcome: null } } },
        // A terminal status while draining is proof too; the outcome stays what the owner asked for.
        STATUS: { target: 'releasing', actions: { type: 'markTerminal', params: { outcome: null } } },
        CANCEL: {},
      },
      // No proof in time: release anyway (the handle must not leak) but report quiesced=false so the
      // owner quarantines the blocks instead of reusing them.
      after: { drainTimeout: 'releasing' },
    },
    releasing: {
      meta: { ...local('RELEASE_RESULT'), description: 'releaseXferReq called; its result is synchronous' },
      entry: { type: 'releaseHandle', params: ({ context }) => ({ handleId: context.handleId }) },
      on: {
        RELEASE_RESULT: [
          {
            guard: { type: 'releaseAccepted', params: ({ event }) => ({ accepted: event.accepted }) },
            target: 'released',
            actions: assign(({ context, event }) => ({ quiesced: context.quiesced || event.quiesced })),
          },
          { target: 'releaseRefused', actions: 'markReleaseRefused' },
        ],
        CANCEL: {},
      },
    },
    releaseRefused: {
      meta: { description: 'the backend refused the release (REPOST_ACTIVE); retry after a terminal status' },
      on: {
        STATUS: { target: 'releasing', actions: { type: 'markTerminal', params: { outcome: null } } },
        ABORTED: { target: 'releasing', actions: { type: 'markTerminal', params: { outcome: null } } },
        CANCEL: {},
      },
      after: { drainTimeout: 'abandoned' },
    },
    released: { type: 'final', meta: { description: 'released exactly once; quiesced only with proof' } },
    abandoned: { type: 'final', entry: assign({ leaked: true }), meta: { description: 'release refused and never terminal: reported as leaked' } },
  },
  output: ({ context }) => ({
    handleId: context.handleId,
    outcome: context.outcome ?? 'cancelled',
    quiesced: context.quiesced && !context.leaked,
    leaked: context.leaked,
  }),
});

export const transferHandleIgnores: IgnorePolicy<TransferHandleEvent['type']> = {
  POST: { where: 'elsewhere', why: 'posting an active or finished handle is refused by the backend (REPOST_ACTIVE) and changes nothing' },
  CANCEL: { where: ['released', 'abandoned'], why: 'a finished handle has nothing left to cancel' },
  STATUS: { where: ['prepared', 'releasing', 'released', 'abandoned'], why: 'no status exists before post; after a terminal status the value is sticky' },
  ABORTED: { where: 'elsewhere', why: 'an abort confirmation only matters while draining or waiting to retry a release' },
  RELEASE_RESULT: { where: 'elsewhere', why: 'release results answer the synchronous release call made in releasing' },
};