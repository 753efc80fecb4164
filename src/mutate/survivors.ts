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
import { CONTEXT_SEND_NOTES } from './survivorsContextSend.js';

export const SURVIVOR_REASONS: Readonly<Record<string, string>> = { ...CONTEXT_SEND_NOTES };
