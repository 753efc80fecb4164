/**
 * Why a surviving mutant survives, where the tool cannot compute it: mutant name → a reason a reviewer
 * can check. `xferstate mutate` prints "no reason recorded" for a survivor missing here. An entry whose
 * mutant is killed or equivalent is harmless but stale; the mutate tests flag entries naming no mutant.
 */
export const SURVIVOR_REASONS: Readonly<Record<string, string>> = {};
