import type { AnyStateMachine } from 'xstate';

/**
 * The named actions each lifecycle machine leaves to the engine (its effects). The machines' `assign`
 * actions are bookkeeping and need nothing from an engine. `engineActionsOf()` reads the same list from a
 * machine at run time; a test checks the two agree for every production machine and regression variant.
 */
export const ENGINE_ACTIONS = {
  transferHandle: ['postTransfer', 'abortTransfer', 'releaseHandle'],
  contextSend: ['sendReadySignal', 'startTransfers', 'cancelTransfers', 'reportOutcome', 'signalPeer', 'ackFence'],
  generationReceive: ['requestSlot', 'withdrawSlotRequest', 'sendRequestInfo', 'releaseSlot', 'reportOutcome', 'tellPeerCancelled'],
  requestLifecycle: ['startContextSend', 'startGenerationReceive', 'cancelSide', 'freeResources', 'requestFinished', 'respondError', 'tellPeerCancelled'],
  blockLease: ['quarantineEntered', 'quarantineReleased', 'fencePeer', 'retireBlocks', 'returnBlocks', 'withdrawFence'],
  peerSession: ['forwardInfo', 'forwardFence', 'forwardCancel', 'ackFence', 'answerNotReady'],
  admission: ['grant'],
  fenceClient: ['sendFence', 'confirmFence'],
} as const;

export type EngineActionName = (typeof ENGINE_ACTIONS)[keyof typeof ENGINE_ACTIONS][number] | 'cancelRefused';

/** The engine actions a machine asks for, read from its implementations (xstate's built-ins excluded). */
export function engineActionsOf(machine: AnyStateMachine): string[] {
  const out: string[] = [];
  for (const [name, impl] of Object.entries(machine.implementations.actions ?? {})) {
    // Built-in actions (assign, raise, ...) carry an `xstate.` type; the engine's effects do not.
    const t = (impl as { type?: unknown }).type;
    if (typeof t === 'string' && t.startsWith('xstate.')) continue;
    out.push(name);
  }
  return out.sort();
}

/** The engine actions of `machine` that `provided` lacks, sorted; empty when every one is there. */
export function missingEngineActions(machine: AnyStateMachine, provided: object): string[] {
  return engineActionsOf(machine).filter((n) => typeof (provided as Record<string, unknown>)[n] !== 'function');
}
