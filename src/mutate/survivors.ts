/**
 * Reviewed notes on surviving mutants: mutant name → what a reviewer found, checkable against the
 * machine and the composed world. `xferstate mutate` appends the note to the survivor's computed reason
 * ("undecided: truncated …"); a note never changes a verdict. An entry whose mutant is killed is stale
 * but harmless; the mutate tests fail on entries that name no mutant at all.
 *
 * The one-sided notes of round 1 are gone with the one-sided scenarios (they named stand-ins and checks
 * that the composed world replaced).
 */

const FENCE_PAST_BUDGET =
  'a fence is sent only after quarantineMaxAge fires while the peer could still act: past the 6,000-world budget, and never in the prompt runs of M7';

export const SURVIVOR_REASONS: Readonly<Record<string, string>> = {
  'contextSend: drop action ackFence in sender.cancellingTransfers TRANSFERS_SETTLED[0]':
    `a real gap of the bounds, not a harmless mutant: the fence is never acknowledged, so the generation side's fenceTimeout retires the block (fail closed, which M1–M6 allow). ${FENCE_PAST_BUDGET}. Measured by hand: prompt runs that allow one early deadline (39,035 + 16,803 worlds; not in the checks, too slow for every mutant) end with a block retired after an early quarantineMaxAge, which the original never does (it retires only after an early fenceTimeout or drainTimeout)`,
};
