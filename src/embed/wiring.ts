import type {
  BlockLeaseEvent,
  ContextSendEvent,
  ContextSendOutput,
  GenerationReceiveOutput,
  QuiescenceProof,
  RequestLifecycleContext,
  RequestLifecycleEvent,
  RequestRole,
  TransferHandleOutput,
  TransferResult,
} from '../../machines/index.js';

/**
 * The wiring between the lifecycle machines that an embedding engine performs itself, typed: what one
 * machine's action or output means as an event for another. The same mappings as the servers' table
 * (`src/core/wiring.ts`, which adds the server machines, the control channel and the native calls).
 * The machines already classify every outcome; these only carry it to the next machine.
 */

/**
 * contextSend's / generationReceive's `reportOutcome { result }` → the lifecycle's event: `complete`
 * completes the transfer, anything else fails it with that reason (`cancelled`, `timedOut`, `transferFailed`).
 */
export function outcomeEvent(role: 'context', params: { result: TransferResult }): Extract<RequestLifecycleEvent, { type: 'SEND_COMPLETE' | 'SEND_FAILED' }>;
export function outcomeEvent(role: 'generation', params: { result: TransferResult }): Extract<RequestLifecycleEvent, { type: 'RECV_COMPLETE' | 'RECV_FAILED' }>;
export function outcomeEvent(role: RequestRole, params: { result: TransferResult }): RequestLifecycleEvent {
  if (params.result === 'complete') return { type: role === 'context' ? 'SEND_COMPLETE' : 'RECV_COMPLETE' };
  return { type: role === 'context' ? 'SEND_FAILED' : 'RECV_FAILED', reason: params.result };
}

/**
 * The lifecycle's `freeResources { release }` → the blockLease's RELEASE. `release` is the evidence the
 * side proved (`terminalStatus`, `terminalAndSync`, `notReadyBeforeWrite`, `neverExposed`, …) or null:
 * without proof the lease is quarantined.
 */
export function leaseRelease(params: { release: QuiescenceProof | null }): Extract<BlockLeaseEvent, { type: 'RELEASE' }> {
  return { type: 'RELEASE', proof: params.release };
}

/** A transferHandle's output → its contextSend's TRANSFERS_SETTLED (`index`: which of the request's handles). */
export function transfersSettled(output: TransferHandleOutput, index?: number): Extract<ContextSendEvent, { type: 'TRANSFERS_SETTLED' }> {
  return { type: 'TRANSFERS_SETTLED', outcome: output.outcome, quiesced: output.quiesced, ...(index !== undefined ? { index } : {}) };
}

/** A side's output (contextSend or generationReceive) → its lifecycle's SIDE_QUIESCENT, carrying the side's proof. */
export function sideQuiescent(output: ContextSendOutput | GenerationReceiveOutput): Extract<RequestLifecycleEvent, { type: 'SIDE_QUIESCENT' }> {
  return { type: 'SIDE_QUIESCENT', proof: output.proof !== null, how: output.proof };
}

/** How a request ended, once its lifecycle is finished (its resources freed or quarantined). */
export interface RequestResult {
  requestId: string;
  role: RequestRole;
  /** The terminal state it ended in (TensorRT-LLM's name). */
  state: 'DISAGG_CONTEXT_COMPLETE' | 'GENERATION_COMPLETE' | 'DISAGG_TRANS_ERROR';
  outcome: 'completed' | 'cancelled' | 'timedOut' | 'failed';
  reason: RequestLifecycleContext['errorReason'];
  /** `released`: freed with the side's proof (or quarantined without); `failedClosed`: the side never became quiescent. */
  freed: 'released' | 'failedClosed';
}

/**
 * The typed result of a requestLifecycle snapshot, or null while the request is not finished. A request is
 * finished when its lifecycle carries the `finished` tag (it freed or quarantined its blocks); the
 * machine's status stays `active` because its terminal states are absorbing, not final.
 */
export function requestResult(snapshot: { value: unknown; context: RequestLifecycleContext; hasTag(tag: string): boolean } | undefined): RequestResult | null {
  if (!snapshot || !snapshot.hasTag('finished')) return null;
  const [state, sub] = Object.entries(snapshot.value as Record<string, string>)[0] ?? [];
  const c = snapshot.context;
  const s = state as RequestResult['state'];
  const outcome = s === 'DISAGG_TRANS_ERROR' ? (c.errorReason === 'cancelled' ? 'cancelled' : c.errorReason === 'timedOut' ? 'timedOut' : 'failed') : 'completed';
  return { requestId: c.requestId, role: c.role, state: s, outcome, reason: c.errorReason, freed: sub === 'failedClosed' ? 'failedClosed' : 'released' };
}
