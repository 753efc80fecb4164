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

/** A known bug, as a machine that replaces one production machine. It exists to be caught. */
export interface RegressionVariant {
  name: string;
  /** The production machine (by id) it replaces. */
  replaces: 'contextSend' | 'generationReceive' | 'requestLifecycle' | 'blockLease' | 'transferHandle';
  machine: AnyStateMachine;
  /** Bug class in TensorRT-LLM's history (trtllm-domain.md §4). */
  bugClass: string;
  summary: string;
}

export const REGRESSION_VARIANTS: readonly RegressionVariant[] = [
  { name: 'v1', replaces: 'contextSend', machine: contextSendV1Machine, bugClass: 'B2', summary: 'abandoned promise: the observer sees Broken promise' },
  { name: 'v2', replaces: 'contextSend', machine: contextSendV2Machine, bugClass: 'B3', summary: 'future published before the cancelled response is moved out and its bookkeeping erased' },
  { name: 'queuedErase', replaces: 'generationReceive', machine: queuedEraseMachine, bugClass: "B2'", summary: 'a queued cancel drops the promise' },
  { name: 'refusedCancelLoop', replaces: 'generationReceive', machine: refusedCancelLoopMachine, bugClass: 'B4', summary: '"Cannot cancel request" every iteration while the worker owns the request' },
  { name: 'freeOnCancel', replaces: 'blockLease', machine: freeOnCancelMachine, bugClass: 'B5', summary: 'blocks reusable while a transfer may still write' },
  { name: 'notArrivedAsSuccess', replaces: 'generationReceive', machine: notArrivedAsSuccessMachine, bugClass: 'B6', summary: 'a terminated notification wait treated as data arrived' },
  { name: 'terminalOverwrite', replaces: 'requestLifecycle', machine: terminalOverwriteMachine, bugClass: 'B8', summary: 'an error later overwritten by success' },
  { name: 'freeOnTerminal', replaces: 'requestLifecycle', machine: freeOnTerminalMachine, bugClass: "B1/B1'", summary: 'resources freed on a terminal state before the transfer side is quiescent' },
  { name: 'releaseIsQuiescence', replaces: 'transferHandle', machine: releaseIsQuiescenceMachine, bugClass: 'B5', summary: 'an accepted release of an in-flight handle taken as proof that its buffers are quiet' },
  { name: 'workerSetsState', replaces: 'generationReceive', machine: workerSetsStateMachine, bugClass: 'B8/B10', summary: 'the receiver worker writes the request state itself, then the checker reports again' },
  { name: 'notReadySlotLeak', replaces: 'generationReceive', machine: notReadySlotLeakMachine, bugClass: 'B7', summary: 'the receive slot is not handed back after a not-ready signal (wedge)' },
];

export { freeOnTerminalMachine, releaseIsQuiescenceMachine, workerSetsStateMachine, contextSendV1Machine, contextSendV2Machine, freeOnCancelMachine, notArrivedAsSuccessMachine, notReadySlotLeakMachine, queuedEraseMachine, refusedCancelLoopMachine, terminalOverwriteMachine };
