import type { Backend, Bounds } from '../explore/composed.js';
import { COMPOSED_SCENARIOS } from '../explore/composedCatalog.js';

/**
 * Where mutants are explored. Two kinds:
 * - *footings*: small composed configurations explored COMPLETELY (both sides' production machines,
 *   the same world as `explore`, only smaller bounds). A footing decides: a mutant identical to the
 *   original on every footing is equivalent within their bounds; one that differs there and breaks
 *   nothing survives.
 * - the shipped composed scenarios (2 requests × 2 handles, block reuse), cut at their state budget:
 *   searched for kills only, where a mutant acts differently from the original there. A clean mutant
 *   that differs only there is undecided (the graph past the cut is unknown), never equivalent.
 *
 * Each footing adds at most one fault to the smallest world (one request, one handle) so that every
 * machine's fault path is taken somewhere, and each explores completely, unreduced, in seconds (sizes
 * in docs/invariants.md "Mutation score"). One footing has two handles and no fault (180,202 worlds,
 * about 30 s): it decides the sibling-handle branches (a handle settling while its sibling still
 * writes), which the shipped scenarios reach only truncated. Left out, measured: two requests (more than
 * 1,000,000 worlds unreduced, not complete), so block reuse is reached only in the shipped scenarios;
 * two handles on ucx (236,002 worlds, 47 s), a duplicate (65,206 reduced) and a cancel on ucx (88,290
 * reduced).
 */
export interface MutationFooting {
  name: string;
  description: string;
  backend: Backend;
  bounds: Bounds;
  /** A safety cap: a footing whose original exploration reaches it is not complete and decides nothing. */
  maxStates: number;
  /** True for a footing (must complete; decides equivalence), false for a shipped scenario (kills only). */
  decides: boolean;
}

const one = { requests: 1, handlesPerRequest: 1, cancels: 0, duplicates: 0, reorder: 0, losses: 0, peerDeath: 0 };
const CAP = 400_000;

export const MUTATION_FOOTINGS: readonly MutationFooting[] = [
  { name: 'footing/1x1-shm', description: 'one request, one handle, no fault (every deadline may fire while the peer could still act: fences, not-ready, drain and quiescence timeouts); shm', backend: 'shm', bounds: one, maxStates: CAP, decides: true },
  { name: 'footing/1x1-ucx', description: 'the same with UCX semantics (no abort; a release in flight keeps writing)', backend: 'ucx', bounds: one, maxStates: CAP, decides: true },
  { name: 'footing/cancel-shm', description: 'one user cancel, on either side, at any time; shm (aborts confirmed)', backend: 'shm', bounds: { ...one, cancels: 1 }, maxStates: CAP, decides: true },
  { name: 'footing/peer-death-shm', description: 'either process dies once, at any time; shm', backend: 'shm', bounds: { ...one, peerDeath: 1 }, maxStates: CAP, decides: true },
  { name: 'footing/loss-ucx', description: 'one control message or notification lost; ucx', backend: 'ucx', bounds: { ...one, losses: 1 }, maxStates: CAP, decides: true },
  { name: 'footing/reorder-shm', description: 'one control message delivered ahead of an older one; shm', backend: 'shm', bounds: { ...one, reorder: 1 }, maxStates: CAP, decides: true },
  { name: 'footing/1x2-ucx', description: 'one request, two handles, no fault: the siblings settle in either order, and a deadline may fire while one still writes; ucx', backend: 'ucx', bounds: { ...one, handlesPerRequest: 2 }, maxStates: CAP, decides: true },
];

/**
 * Kill-only places with two faults on the smallest world (too large to explore completely unreduced,
 * so never footings): a duplicate and a cancel together reach what neither footing does alone, e.g. a
 * duplicated request info arriving after the request ended on the context side (sixth session: a
 * mutant that forgets the ended request keeps that info for ever, M4 in 6 steps).
 */
const TWO_FAULTS: readonly MutationFooting[] = [
  { name: 'kill/cancel-duplicate-shm', description: 'one request, one handle, one user cancel and one duplicated message; shm; kills only', backend: 'shm', bounds: { ...one, cancels: 1, duplicates: 1 }, maxStates: 6_000, decides: false },
];

/** Suffix of a shipped scenario explored at its `--deep` bounds (kills only). */
export const DEEP_BOUNDS = '+deep';

/**
 * Footings, then the shipped composed scenarios (kills only), by name; with `deepBounds`, also each
 * shipped scenario at its `explore --deep` bounds (duplicates, losses, cancels and a peer death on top
 * of two requests × two handles), at the shipped budget: kills only, like the shipped scenarios.
 */
export function mutationTargets(opts: { deepBounds?: boolean } = {}): MutationFooting[] {
  const scenarios = Object.values(COMPOSED_SCENARIOS);
  const shipped = scenarios.map((s): MutationFooting => ({ name: s.name, description: s.description, backend: s.backend, bounds: s.bounds, maxStates: s.maxStates, decides: false }));
  const deep = scenarios.map((s): MutationFooting => ({ name: `${s.name}${DEEP_BOUNDS}`, description: `${s.description}; at its --deep bounds`, backend: s.backend, bounds: s.deepBounds, maxStates: s.maxStates, decides: false }));
  return [...MUTATION_FOOTINGS, ...shipped, ...(opts.deepBounds ? [...deep, ...TWO_FAULTS] : [])];
}

export function mutationTarget(name: string): MutationFooting {
  const t = mutationTargets({ deepBounds: true }).find((x) => x.name === name);
  if (!t) throw new Error(`unknown mutation footing or scenario '${name}'`);
  return t;
}
