import { DEFAULT_DELAYS } from '../../machines/index.js';

/**
 * The machines' deadlines, named for what each one bounds. Three machines have a delay called
 * `kvTransferTimeout` (TensorRT-LLM's name) and each bounds something else: the whole request, one side's
 * wait for its peer, one posted transfer handle. Given the same value, the request's fires first (it was
 * armed first), so a stalled request reports `timedOut` while its handle, cancelled by it, reports
 * `cancelled`. Name what you bound here; `contextDelays` / `generationDelays` place each value under the
 * right machine and delay name.
 */
export interface TransferDeadlines {
  /** requestLifecycle.kvTransferTimeout: prefill done (context) or scheduled (generation) → transfer complete. TRT-LLM `kv_transfer_timeout_ms`. */
  requestTransferMs: number;
  /** contextSend / generationReceive kvTransferTimeout: one side waiting for its peer (to ask, to signal ready, to deliver). Default: requestTransferMs. */
  sideWaitMs?: number;
  /** transferHandle.kvTransferTimeout: one posted transfer, before it is drained. Default: requestTransferMs. */
  handleTransferMs?: number;
  /** contextSend.cancelResolveTimeout: a cancel accepted while queued is resolved by then even if the peer never asks. */
  queuedCancelMs?: number;
  /** transferHandle.drainTimeout: an unwanted transfer is polled to a terminal status this long before it is released without proof. */
  drainMs?: number;
  /** requestLifecycle.quiescenceTimeout: a finished request waits this long for its side to be quiescent, then fails closed. */
  quiescenceMs?: number;
  /** blockLease.quarantineMaxAge: blocks released without proof stay quarantined this long before the peer is fenced. */
  quarantineMaxAgeMs?: number;
  /** blockLease.fenceTimeout: a fence not confirmed by then retires the blocks from the pool for good. */
  fenceMs?: number;
}

const d = (v: number | undefined, fallback: number) => v ?? fallback;

/** Per-role delays for the context side's roles: lifecycle, send, handle, lease. */
export function contextDelays(t: TransferDeadlines) {
  return {
    lifecycle: { kvTransferTimeout: t.requestTransferMs, quiescenceTimeout: d(t.quiescenceMs, DEFAULT_DELAYS.quiescenceTimeout) },
    send: { kvTransferTimeout: d(t.sideWaitMs, t.requestTransferMs), cancelResolveTimeout: d(t.queuedCancelMs, DEFAULT_DELAYS.cancelResolveTimeout) },
    handle: { kvTransferTimeout: d(t.handleTransferMs, t.requestTransferMs), drainTimeout: d(t.drainMs, DEFAULT_DELAYS.drainTimeout) },
    lease: { quarantineMaxAge: d(t.quarantineMaxAgeMs, DEFAULT_DELAYS.quarantineMaxAge), fenceTimeout: d(t.fenceMs, DEFAULT_DELAYS.fenceTimeout) },
  };
}

/** Per-role delays for the generation side's roles: lifecycle, recv, lease. */
export function generationDelays(t: TransferDeadlines) {
  const c = contextDelays(t);
  return { lifecycle: c.lifecycle, recv: { kvTransferTimeout: d(t.sideWaitMs, t.requestTransferMs) }, lease: c.lease };
}
