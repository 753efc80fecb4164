/**
 * Reviewed notes on surviving mutants: mutant name → what a reviewer found, checkable against the
 * machine and the composed world. `xferstate mutate` appends the note to the survivor's computed reason;
 * a note never changes a verdict. An entry whose mutant is killed or equivalent is stale but harmless;
 * the mutate tests fail on entries that name no mutant at all.
 *
 * The notes of the last round (the fence-never-acknowledged class, the slower release of the context
 * side's source lease, a cancelled request reported failed, fences not confirmed after a death) were
 * removed: M9, M10 and M11 kill those mutants now (docs/invariants.md, "Mutation score").
 */
export const SURVIVOR_REASONS: Readonly<Record<string, string>> = {
  // requestLifecycle and generationReceive (sixth session; docs/invariants.md, "Survivors of requestLifecycle and generationReceive").
  'generationReceive: drop action assign in worker.unwinding always':
    "equal behaviour: `slot` is read only by releaseSlot's params, computed in the same transition before the assign; after unwinding the worker is final and nothing reads it. Only the hidden context (so the state key, so where a truncated search is cut) differs",
  'requestLifecycle: drop deadline quiescenceTimeout in DISAGG_TRANS_ERROR.awaitingQuiescence':
    'a backstop against a transfer side that never finishes; every side machine ends by its own deadlines (L1 on its definition, L2 on the composed graph), so in the model the mutant only loses the early fail-closed paths (a lease quarantined while its side still works). Not weaker here; it matters against a broken side, which the model does not have',
  'requestLifecycle: retarget DISAGG_TRANS_ERROR.awaitingQuiescence after quiescenceTimeout failedClosed → awaitingQuiescence':
    'the same as dropping quiescenceTimeout (the deadline re-arms and the request keeps waiting for its side, which always ends in the model)',
  'requestLifecycle: retarget DISAGG_GENERATION_TRANS_IN_PROGRESS RECV_COMPLETE DISAGG_GENERATION_TRANS_COMPLETE → GENERATION_IN_PROGRESS':
    'skips DECODE_START, where the server verifies the served blocks: defence in depth. While M1 holds (no foreign byte lands) the sync verification already proved the bytes, so the served check cannot fail on these machines and the outcomes are the same',
  'requestLifecycle: drop action cancelSide in DISAGG_CONTEXT_TRANS_IN_PROGRESS CANCEL':
    "the model never offers the user's cancel here: the world offers a cancel only where the lifecycle can(CANCEL), and xstate's can() is false for a transition with neither target nor actions. A world that offers every cancel would see it ignored",
  'requestLifecycle: drop action cancelSide in DISAGG_GENERATION_TRANS_IN_PROGRESS CANCEL':
    "the model never offers the user's cancel here: the world offers a cancel only where the lifecycle can(CANCEL), and xstate's can() is false for a transition with neither target nor actions",
};
