import type {
  ContextSendOutput,
  GenerationReceiveOutput,
  PromiseState,
  QuiescenceProof,
  RequestLifecycleContext,
  RequestLifecycleEvent,
  RequestRole,
  TransferHandleOutput,
  TransferOutcome,
  BlockLeaseEvent,
  ContextSendEvent,
} from '../../machines/index.js';

/**
 * The wiring between the lifecycle machines, written once: what one machine's action or output means as
 * an event for another. The project's servers and an embedding engine both need exactly these mappings.
 */

/** Why a transfer failed, as the lifecycle's SEND_FAILED / RECV_FAILED `reason` names it. */
export type FailureReason = Extract<RequestLifecycleEvent, { type: 'SEND_FAILED' }>['reason'];

/** A transfer outcome as a lifecycle failure reason: cancels and timeouts keep their name, anything else failed. */
export function failureReason(outcome: TransferOutcome): FailureReason {
  return outcome === 'cancelled' || outcome === 'timedOut' ? outcome : 'transferFailed';
}

/**
 * contextSend's / generationReceive's `reportOutcome { outcome, promise }` → the lifecycle's event:
 * a fulfilled promise completes the transfer, anything else fails it with the outcome's reason.
 */
export function outcomeEvent(role: 'context', params: { outcome: TransferOutcome; promise: PromiseState }): Extract<RequestLifecycleEvent, { type: 'SEND_COMPLETE' | 'SEND_FAILED' }>;
export function outcomeEvent(role: 'generation', params: { outcome: TransferOutcome; promise: PromiseState }): Extract<RequestLifecycleEvent, { type: 'RECV_COMPLETE' | 'RECV_FAILED' }>;
export function outcomeEvent(role: RequestRole, params: { outcome: TransferOutcome; promise: PromiseState }): RequestLifecycleEvent {
  if (params.promise === 'value') return { type: role === 'context' ? 'SEND_COMPLETE' : 'RECV_COMPLETE' };
  return { type: role === 'context' ? 'SEND_FAILED' : 'RECV_FAILED', reason: failureReason(params.outcome) };
}

/**
 * The lifecycle's `freeResources { proof }` → the blockLease's RELEASE. The lifecycle only knows whether
 * its side proved quiescence; the engine names the evidence: on the context side a terminal status of its
 * own transfer (`terminalStatus`); on the generation side the receiver's own proof from its output, or
 * `neverExposed` when no receive ever started. Without proof the lease is quarantined.
 */
export function leaseRelease(params: { proof: boolean }, evidence: QuiescenceProof | null): Extract<BlockLeaseEvent, { type: 'RELEASE' }> {
  return { type: 'RELEASE', proof: params.proof ? evidence : null };
}

/** A transferHandle's output → its contextSend's TRANSFERS_SETTLED. */
export function transfersSettled(output: TransferHandleOutput): Extract<ContextSendEvent, { type: 'TRANSFERS_SETTLED' }> {
  return { type: 'TRANSFERS_SETTLED', outcome: output.outcome, quiesced: output.quiesced };
}

/**
 * A side's output → its lifecycle's SIDE_QUIESCENT. A contextSend proves quiescence with its handles';
 * a finished generationReceive has handed its slot back with whatever proof it had (carried to the lease
 * by `leaseRelease(…, output.proof)`), so its lifecycle may free.
 */
export function sideQuiescent(output: ContextSendOutput | GenerationReceiveOutput): Extract<RequestLifecycleEvent, { type: 'SIDE_QUIESCENT' }> {
  return { type: 'SIDE_QUIESCENT', proof: 'quiesced' in output ? output.quiesced : true };
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
