/**
 * Reviewed notes on surviving mutants: mutant name → what a reviewer found, checkable against the
 * machine and the composed world. `xferstate mutate` appends the note to the survivor's computed reason;
 * a note never changes a verdict. An entry whose mutant is killed or equivalent is stale but harmless;
 * the mutate tests fail on entries that name no mutant at all.
 */

/**
 * The class of fail-closed survivors around fences (docs/invariants.md "Mutation score"): the fence is
 * never acknowledged, so the generation side's fenceTimeout retires the block. M1–M6 allow failing
 * closed, and M7's prompt runs never send a fence (one is sent only after quarantineMaxAge fires while
 * the peer could still act).
 */
const FENCE_NOT_ACKED =
  'a real gap, not a harmless mutant: the fence is never acknowledged, so the generation side retires the block after fenceTimeout (capacity lost for good; M1–M6 allow failing closed, and M7’s prompt runs never send a fence). ' +
  'A draft M9 (“with no loss and no death, a block is retired only by an early deadline or while a transfer into it can still write”) would catch it, but it also fires on the shipped machines with ucx: an early drainTimeout makes the context side give up its proof, the transfer then ends in ERROR and nothing acknowledges the fence. ' +
  'Telling the two apart needs to know which early deadline came first on the path, which a world does not record; not landed';

export const SURVIVOR_REASONS: Readonly<Record<string, string>> = {
  'requestLifecycle: drop action noteQuiescent in DISAGG_CONTEXT_COMPLETE.awaitingQuiescence SIDE_QUIESCENT':
    'harmless within the checks: the context side does not note its handles’ quiescence proof after a completed transfer, so its source lease goes to quarantine and is freed later through the agent’s fence instead of at once (footing/1x1-shm: after the transfer completes, M4’s list shows c:r1.lease quarantined and the context admission still held, where the original has released them); nothing leaks at rest and no byte is harmed. A cost (source blocks held longer), which no check measures',
  'contextSend: drop action decide in sender.cancelMarked REQUEST_INFO':
    'the outcome a user sees changes, not its safety: a request cancelled while queued and then asked for by the peer is reported failed instead of cancelled (footing/cancel-shm: a user cancel while the request is queued on the context side, then the peer’s request info arrives and the worker unwinds it). M3 asks only for a typed outcome and M7 excuses any failure after a cancel; no check reads which failure outcome is the right one',
  'contextSend: drop action ackFence in sender.cancellingTransfers TRANSFERS_SETTLED[0]': FENCE_NOT_ACKED,
  'contextSend: drop action markFenced in sender.cancellingTransfers FENCE': `${FENCE_NOT_ACKED} (here the fence is not recorded, so the last settled handle does not acknowledge it)`,
  'contextSend: remove branch quiescentOrNever in sender FENCE[0]': `${FENCE_NOT_ACKED} (here a fence of a request whose handles are quiescent or never created is no longer answered at once)`,
  'fenceClient: drop action confirmFence in open always':
    'after a peer death the pending fences are not confirmed, so the lease waits for fenceTimeout and retires the block instead of freeing it (a dead peer writes nothing). Fail closed after a death, which every check accepts: capacity is lost, no byte is harmed',
};
