import type { AnyStateMachine } from 'xstate';
import type { IgnorePolicy } from '../../machines/index.js';
import {
  admissionIgnores,
  admissionMachine,
  fenceClientIgnores,
  fenceClientMachine,
  peerSessionIgnores,
  peerSessionMachine,
  blockLeaseIgnores,
  blockLeaseMachine,
  contextSendIgnores,
  contextSendMachine,
  generationReceiveIgnores,
  generationReceiveMachine,
  requestLifecycleIgnores,
  requestLifecycleMachine,
  transferHandleIgnores,
  transferHandleMachine,
} from '../../machines/index.js';
import type { Combination } from '../explore/catalog.js';
import type { InvariantName } from '../explore/invariants.js';

/**
 * The few facts the docs need that no machine carries: who sends each event, and, per invariant, the
 * bug classes it prevents. Both are checked against the code when the docs are generated (an event
 * without a sender, or a sender for an event no machine handles, is an error), so they cannot drift.
 */
export interface ProductionMachine {
  machine: AnyStateMachine;
  /** Source file, relative to the repository root. */
  file: string;
  ignores: IgnorePolicy<string>;
}

export const PRODUCTION_MACHINES: readonly ProductionMachine[] = [
  { machine: transferHandleMachine, file: 'machines/transferHandle.ts', ignores: transferHandleIgnores },
  { machine: contextSendMachine, file: 'machines/contextSend.ts', ignores: contextSendIgnores },
  { machine: generationReceiveMachine, file: 'machines/generationReceive.ts', ignores: generationReceiveIgnores },
  { machine: requestLifecycleMachine, file: 'machines/requestLifecycle.ts', ignores: requestLifecycleIgnores },
  { machine: blockLeaseMachine, file: 'machines/blockLease.ts', ignores: blockLeaseIgnores },
  { machine: peerSessionMachine, file: 'machines/peerSession.ts', ignores: peerSessionIgnores },
  { machine: fenceClientMachine, file: 'machines/fenceClient.ts', ignores: fenceClientIgnores },
  { machine: admissionMachine, file: 'machines/admission.ts', ignores: admissionIgnores },
];

/** Who sends each event: the TensorRT-LLM / engine party, then (after ';') the explorer step that models it. */
export const EVENT_SENDERS: Record<string, Record<string, string>> = {
  transferHandle: {
    POST: "the handle's owner right after creating it (contextSend's `startTransfers`); explorer: routed from `startTransfers`, or `owner: post`",
    CANCEL: "the handle's owner (contextSend's `cancelTransfers`); explorer: routed from `cancelTransfers`, or `owner: cancel`",
    STATUS: 'a status poll (`getXferStatus`) that returned a terminal value; explorer: `backend: transfer completes (status DONE)` / `fails (status ERROR)`',
    ABORTED: 'the backend confirming an in-flight abort (only backends with `canAbortInFlight`, e.g. shm); explorer: `backend: abort confirmed`',
    RELEASE_RESULT: 'the engine, synchronously, as the answer to `releaseHandle` (`releaseXferReq`); explorer: routed from `releaseHandle`',
  },
  contextSend: {
    REQUEST_INFO: "the generation peer's RequestAndBufferInfo reaching the sender's response thread; explorer: `peer: asks for KV (REQUEST_INFO)`",
    CANCEL: "requestLifecycle's `cancelSide` (user cancel or executor timeout; TRT-LLM `CacheSender::cancelRequest`); explorer: routed from `cancelSide`",
    TRANSFERS_SETTLED: "the wiring, when one of the request's N transfer handles finishes (the handle's output: outcome, quiesced, index); explorer: on the handle's final state",
    FENCE: "peerSession's `forwardFence`: the generation peer fenced the request (before it started, or while it sends); composed explorer: `net gen→ctx: deliver fence(r)`",
    PEER_CANCEL: "peerSession's `forwardCancel`: the generation peer cancelled the request before asking for it (control message `cancel`); composed explorer: `net gen→ctx: deliver cancel(r)`",
    WORKER_STEP: 'the sender worker thread (`response()`) taking its next unwinding step; explorer: `sender worker: next step`',
    STATUS_POLL: 'the status checker on the executor thread (`checkContextTransferStatus`); explorer: `checker: poll sender future (STATUS_POLL)`',
  },
  generationReceive: {
    WORKER_POP: 'the receiver worker thread popping the request from its queue; explorer: `worker <r>: pops request`',
    SLOT_GRANTED: 'the receive-buffer pool granting a slot (`assignBufferIndexForRecv`); explorer: `pool: grants receive slot to <r>`',
    READY_SIGNAL: "the context peer's ReadySignalInfo (ready or not-ready); explorer: `peer <r>: ready signal (data follows)` / `not-ready signal (no data will be written)`",
    READY_WAIT_ENDED: "the worker's own ready-signal wait ending without a signal (terminate flag or wait bound); explorer: `worker <r>: ready-signal wait ends, nothing arrived`",
    SYNC_WAIT_ENDED: "the worker's sync-notification wait ending: `arrived: true` from the peer's sync notification, `false` when it ended without one; explorer: `peer <r>: sync notification` / `worker <r>: sync wait ends, nothing arrived`",
    PEER_STOPPED: "the context peer's `stopped` control message (contextSend's `signalPeer` after a transfer stopped short with every handle quiescent); composed explorer: `net ctx→gen: deliver stopped(r)`",
    CANCEL: "requestLifecycle's `cancelSide` (user cancel or executor timeout; TRT-LLM `CacheReceiver::cancelRequest`); explorer: routed from `cancelSide`",
    SYNC_VERIFIED: 'the wiring, when the sync notification arrived and the server checked the blocks it names (`ok`); composed explorer: `notif: sync of r arrives`',
    STATUS_POLL: 'the status checker on the executor thread (`checkGenTransferStatus`); explorer: `checker: poll <r> receive future`',
  },
  requestLifecycle: {
    CONTEXT_DONE: 'the executor when prefill finished (`respond_and_send_async`); explorer: `executor: prefill done (CONTEXT_DONE)`',
    SCHEDULED: 'the executor scheduler admitting the request and allocating its KV blocks (`prepare_resources`); explorer: `executor: schedule request, allocate KV blocks`',
    SEND_COMPLETE: "the engine routing contextSend's `reportOutcome` with a value (the checker saw the future ready)",
    SEND_FAILED: "the engine routing contextSend's `reportOutcome` with an error (cancelled, timed out, transfer failed)",
    RECV_COMPLETE: "the engine routing generationReceive's `reportOutcome` with a value",
    RECV_FAILED: "the engine routing generationReceive's `reportOutcome` with an error",
    DECODE_START: 'the executor starting to decode; explorer: `executor: start decoding`',
    SERVED_VERIFIED: "the generation server, right after DECODE_START (same step): its check of the blocks served to decode (`ok`); composed explorer: part of `gen loop r: decodeStart`, `ok` from the memory model",
    DECODE_DONE: 'the executor finishing decoding; explorer: `executor: decoding done`',
    CANCEL: 'a user or router cancel (`_handle_canceled_requests`); explorer: `user: cancel request`',
    SIDE_QUIESCENT: "the engine when the transfer side's actor reached its final state (its future reaped), with its proof; explorer: on the side's final state",
  },
  blockLease: {
    ALLOCATE: 'the block pool, when the executor allocates blocks for a request or grants a receive slot',
    EXPOSE: "the engine when the blocks are advertised to a remote writer (`sendRequestInfo`), handed to a transfer (`startTransfers` / `postTransfer`), or the receiver worker starts",
    RELEASE: "the owner, with its proof or none: requestLifecycle's `freeResources`, generationReceive's `releaseSlot`, or a handle's owner with the handle's `quiesced`",
    QUIESCENCE_PROOF: "late proof for a quarantined lease: the peer's sync notification, or the shm engine reporting that a released transfer stopped",
    FENCE_CONFIRMED: 'the peer confirming the fence the pool asked for with `fencePeer`; explorer: `peer: confirms fence`',
    PEER_NOT_READY: "the wiring, for a not-ready signal from the context peer (by contract sent only when no write was posted): late proof",
    SYNC_VERIFIED: "the wiring, for the request's sync notification (its sender's transfers are terminal): late proof",
  },
  peerSession: {
    INFO: "the generation peer's request info (control message `info`); composed explorer: `net gen→ctx: deliver info(r@epoch)`",
    FENCE: "the generation peer's fence (control message `fence`), sent by its fenceClient; composed explorer: `net gen→ctx: deliver fence(r)`",
    PEER_CANCEL: "the generation peer's cancel of a request it never asked for (control message `cancel`, from generationReceive's or requestLifecycle's `tellPeerCancelled`); composed explorer: `net gen→ctx: deliver cancel(r)`",
    REQUEST_STARTED: "the wiring, when requestLifecycle's `startContextSend` spawned the request's contextSend",
    REQUEST_FINISHED: "the wiring, when the request's contextSend reached its final state (its output's `quiesced`)",
    REQUEST_ENDED: "the wiring, for requestLifecycle's `requestFinished` on the context side, of a request whose side never started (`sideStarted` false)",
    PEER_GONE: 'the control connection closing; composed explorer: `generation process dies`',
  },
  fenceClient: {
    FENCE_REQUEST: "blockLease's `fencePeer` on the generation side (a quarantined lease aged out)",
    FENCE_ACK: "the context peer's fence acknowledgement (control message `fenceAck`); composed explorer: `net ctx→gen: deliver fenceAck(r)`",
    FENCE_WITHDRAWN: "blockLease's `withdrawFence` on the generation side (the lease left fencing by late proof or its fence timeout)",
    PEER_GONE: 'the control connection closing; composed explorer: `context process dies`',
    PEER_CONNECTED: 'a (new) context peer connecting, e.g. after a restart: the peer is alive again',
  },
  admission: {
    WANT: 'a request asking for KV blocks (the wiring, on submit) or a receive slot (generationReceive\'s `requestSlot`)',
    WITHDRAW: "a request that no longer wants (requestLifecycle's `freeResources` of a request whose side never started (`sideStarted` false: it may still be queued), generationReceive's `withdrawSlotRequest`)",
    RETURN: "blockLease's `returnBlocks` (blocks proved reusable) or generationReceive's `releaseSlot`",
    RETIRE: "blockLease's `retireBlocks` (the blocks leave the pool for good)",
  },
};

/** Liveness invariants have no title object in the code (they are analyses in explorer.ts); these are theirs. */
export const LIVENESS_TITLES: Record<'L1' | 'L2' | 'L3' | 'L4' | 'L5', string> = {
  L1: 'bounded or cancellable waits: every waiting state has a deadline or an event the executor itself produces',
  L2: 'every transfer terminates: from every reachable world the executor alone settles every request',
  L3: 'a requested cancel is resolved by the executor alone',
  L4: 'cleanup of a request never waits on other work',
  L5: 'no permanent resource leak once nothing more can happen',
};

/**
 * Per invariant: where the predicate lives, the bug classes (trtllm-domain.md §4) it prevents, and — for
 * an invariant no variant lists in VARIANT_PLAN — a combination whose counterexample illustrates it.
 */
export const INVARIANT_DOCS: Record<InvariantName, { predicate: string; prevents: string[]; witness?: Combination }> = {
  S1: { predicate: "`SAFETY` entry `S1`, `state(w)` (src/explore/invariants.ts)", prevents: ['B1', "B1'", "B1''"] },
  S2: { predicate: "`SAFETY` entry `S2`, `state(w)`", prevents: ['B2', "B2'"] },
  S3: { predicate: "`SAFETY` entry `S3`, `state(w)`", prevents: ['B3'] },
  S4: { predicate: "`SAFETY` entry `S4`, `state(w, sc)`", prevents: ['B1', "B1'"], witness: { scenario: 'contextCancel/shm', variant: 'freeOnCancel' } },
  S5: { predicate: "`SAFETY` entry `S5`, `state(w, sc)`", prevents: ["B1'", 'B5', 'B6'] },
  S6: { predicate: "`SAFETY` entry `S6`, `state(w)`", prevents: ['B5'] },
  S7: { predicate: "`SAFETY` entry `S7`, `state(w, sc)`", prevents: ['B6'] },
  S8: { predicate: "`SAFETY` entry `S8`, `edge(before, after)`", prevents: ['B8'] },
  S9: { predicate: "`SAFETY` entry `S9`, `state(w)`", prevents: ['B7'] },
  S10: { predicate: "`SAFETY` entry `S10`, `edge(before, after)`", prevents: ['B10'] },
  L1: { predicate: '`statesWithoutDeadline(machine)` (src/explore/liveness.ts), run by `analyse`', prevents: ['B7', 'B11'] },
  L2: { predicate: '`analyse` (src/explore/explorer.ts): `canReach(settled, local edges)`', prevents: ['B4'] },
  L3: { predicate: '`analyse`: `canReach(resolved, local edges)` from every world with a cancel requested', prevents: ['B4'], witness: { scenario: 'generationTimeout', variant: 'refusedCancelLoopNoDeadline' } },
  L4: { predicate: "`analyse`: per request, `canReach(requestSettled, that request's and global local edges)`", prevents: ['B9'], witness: { scenario: 'generationTimeout', variant: 'refusedCancelLoopNoDeadline' } },
  L5: { predicate: '`analyse`: a world with no local step left must not hold a lease of a finished owner outside free / quarantined / fencing', prevents: ['B7', 'B4'] },
};

export const INVARIANT_ORDER: readonly InvariantName[] = ['S1', 'S2', 'S3', 'S4', 'S5', 'S6', 'S7', 'S8', 'S9', 'S10', 'L1', 'L2', 'L3', 'L4', 'L5'];
