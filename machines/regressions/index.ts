import type { AnyStateMachine } from 'xstate';
import { contextSendV1Machine } from './contextSendV1.js';
import { contextSendV2Machine } from './contextSendV2.js';
import { freeOnCancelMachine } from './freeOnCancel.js';
import { freeOnTerminalMachine } from './freeOnTerminal.js';
import { notArrivedAsSuccessMachine } from './notArrivedAsSuccess.js';
import { notReadySlotLeakMachine } from './notReadySlotLeak.js';
import { queuedEraseMachine } from './queuedErase.js';
import { refusedCancelLoopMachine } from './refusedCancelLoop.js';
import { releaseIsQuiescenceMachine } from './releaseIsQuiescence.js';
import { terminalOverwriteMachine } from './terminalOverwrite.js';
import { workerSetsStateMachine } from './workerSetsState.js';
import {
  ackWithUnresolvedErrorMachine,
  fenceBeforeTransferMachine,
  notReadyAfterWriteMachine,
  refusingReceiveMachine,
  retryingContextLifecycleMachine,
  retryingGenerationLifecycleMachine,
  siblingHandleStillWritingMachine,
  staleReferenceMachine,
  trtllmV3SendMachine,
} from './composedVariants.js';

/** A known bug, as a machine that replaces one production machine. It exists to be caught. */
export interface RegressionVariant {
  name: string;
  /** The production machine (by id) it replaces. */
  replaces: 'contextSend' | 'generationReceive' | 'requestLifecycle' | 'blockLease' | 'transferHandle' | 'peerSession';
  machine: AnyStateMachine;
  /** Composed variants: where it applies (one side's role only), and further machines it replaces there. */
  side?: 'context' | 'generation';
  also?: Array<{ side: 'context' | 'generation'; role: string; machine: AnyStateMachine }>;
  /** Explored only in the composed world. */
  composed?: boolean;
  /** Bug class in TensorRT-LLM's history (trtllm-domain.md §4). */
  bugClass: string;
  summary: string;
}

export const REGRESSION_VARIANTS: readonly RegressionVariant[] = [
  { name: 'v1', replaces: 'contextSend', machine: contextSendV1Machine, bugClass: 'B2', summary: 'abandoned promise: the observer sees Broken promise' },
  { name: 'v2', replaces: 'contextSend', machine: contextSendV2Machine, bugClass: 'B3', summary: 'future published before the cancelled response is moved out and its bookkeeping erased' },
  { name: 'queuedErase', replaces: 'generationReceive', machine: queuedEraseMachine, bugClass: "B2'", summary: 'a queued cancel drops the promise' },
  { name: 'refusedCancelLoopNoDeadline', replaces: 'generationReceive', machine: refusedCancelLoopMachine, bugClass: 'B4', summary: 'a refused cancel with the deadlines also deleted: the wait has no bound' },
  { name: 'freeOnCancel', replaces: 'blockLease', machine: freeOnCancelMachine, bugClass: 'B5', summary: 'blocks reusable while a transfer may still write' },
  { name: 'notArrivedAsSuccess', replaces: 'generationReceive', machine: notArrivedAsSuccessMachine, bugClass: 'B6', summary: 'a terminated notification wait treated as data arrived' },
  { name: 'terminalOverwrite', replaces: 'requestLifecycle', machine: terminalOverwriteMachine, bugClass: 'B8', summary: 'an error later overwritten by success' },
  { name: 'freeOnTerminal', replaces: 'requestLifecycle', machine: freeOnTerminalMachine, bugClass: "B1/B1'", summary: 'resources freed on a terminal state before the transfer side is quiescent' },
  { name: 'releaseIsQuiescence', replaces: 'transferHandle', machine: releaseIsQuiescenceMachine, bugClass: 'B5', summary: 'an accepted release of an in-flight handle taken as proof that its buffers are quiet' },
  { name: 'workerSetsState', replaces: 'generationReceive', machine: workerSetsStateMachine, bugClass: 'B8/B10', summary: 'the receiver worker writes the request state itself, then the checker reports again' },
  { name: 'notReadySlotLeak', replaces: 'generationReceive', machine: notReadySlotLeakMachine, bugClass: 'B7', summary: 'the receive slot is not handed back after a not-ready signal (wedge)' },
  // ---- the whole protocol (composed world) ----
  { name: 'fenceBeforeTransfer', replaces: 'peerSession', side: 'context', composed: true, machine: fenceBeforeTransferMachine, bugClass: 'issue 9', summary: 'a fence of a request not yet sending is acknowledged at once and its early info kept: the later transfer writes into reused blocks' },
  { name: 'siblingHandleStillWriting', replaces: 'contextSend', side: 'context', composed: true, machine: siblingHandleStillWritingMachine, bugClass: 'vLLM #56104', summary: 'the first handle to fail ends the transfer while its siblings still write' },
  { name: 'ackWithUnresolvedError', replaces: 'contextSend', side: 'context', composed: true, machine: ackWithUnresolvedErrorMachine, bugClass: 'SGLang #36707', summary: 'the fence is acknowledged while a cancelled or errored transfer is unresolved' },
  { name: 'staleReference', replaces: 'peerSession', side: 'context', composed: true, machine: staleReferenceMachine, bugClass: 'vLLM #52234', summary: 'a request info arriving after its fence is kept and used after the blocks were reused' },
  {
    name: 'refusedCancelLoop',
    replaces: 'generationReceive',
    side: 'generation',
    composed: true,
    machine: refusingReceiveMachine,
    also: [{ side: 'generation', role: 'lifecycle', machine: retryingGenerationLifecycleMachine }],
    bugClass: 'B4',
    summary: '"Cannot cancel request": a refused cancel retried every loop iteration, deadlines kept',
  },
  { name: 'notReadyAfterWrite', replaces: 'contextSend', side: 'context', composed: true, machine: notReadyAfterWriteMachine, bugClass: 'contract', summary: 'not-ready sent after the writes were posted: the peer frees blocks a write still targets' },
  {
    name: 'trtllmV3',
    replaces: 'contextSend',
    side: 'context',
    composed: true,
    machine: trtllmV3SendMachine,
    also: [{ side: 'context', role: 'lifecycle', machine: retryingContextLifecycleMachine }],
    bugClass: 'seed PR 13495',
    summary: 'TensorRT-LLM v3 as the seed ships it: the sender refuses to cancel its current request and keeps its session; the executor retries',
  },
];

export { freeOnTerminalMachine, releaseIsQuiescenceMachine, workerSetsStateMachine, contextSendV1Machine, contextSendV2Machine, freeOnCancelMachine, notArrivedAsSuccessMachine, notReadySlotLeakMachine, queuedEraseMachine, refusedCancelLoopMachine, terminalOverwriteMachine };
