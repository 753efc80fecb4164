import { describe, expect, it } from 'vitest';
import type { ComposedViolation } from '../../src/explore/composedExplorer.js';
import { exploreComposed, replayComposed } from '../../src/explore/composedExplorer.js';
import { FULL_GRAPH } from '../../src/mutate/bisim.js';
import { mutantNamed } from '../../src/mutate/catalog.js';
import { MUTATION_FOOTINGS } from '../../src/mutate/footings.js';
import { scenarioSetup, withMachine } from '../../src/mutate/explore.js';

/**
 * The two-handle footing decides contextSend's sibling-handle branches, which no one-handle footing
 * reaches and the shipped scenarios reach only truncated. The vLLM #56104 class: a cancelled request
 * that unwinds when its FIRST handle settles frees the source and answers the peer while the sibling
 * still writes. Before this footing that mutant was undecided (clean in composed/handles to 40,000
 * worlds); here the first M1 is found and its path replays.
 */
const FOOTING = 'footing/1x2-ucx';
const FIRST_SETTLED_UNWINDS = 'contextSend: drop guard lastHandle in sender.cancellingTransfers TRANSFERS_SETTLED[1]';

class Found extends Error {
  constructor(readonly v: ComposedViolation) {
    super(v.message);
  }
}

describe('footing/1x2-ucx: two handles, explored completely', { timeout: 600_000 }, () => {
  it('is a deciding footing with two handles per request and no fault', () => {
    const f = MUTATION_FOOTINGS.find((x) => x.name === FOOTING);
    expect(f).toMatchObject({ decides: true, backend: 'ucx', bounds: { requests: 1, handlesPerRequest: 2, cancels: 0, duplicates: 0, reorder: 0, losses: 0, peerDeath: 0 } });
  });

  it('catches a request that unwinds at its first settled handle (M1: the sibling lands in a freed block); the path replays', () => {
    const cfg = withMachine(scenarioSetup(FOOTING).cfg, mutantNamed(FIRST_SETTLED_UNWINDS).build());
    let v: ComposedViolation | null = null;
    try {
      exploreComposed(cfg, { scenario: FOOTING, variant: 'mutant' }, { ...FULL_GRAPH, promptRun: false, hooks: { onViolation: (x) => { if (x.invariant === 'M1') throw new Found(x); } } });
    } catch (e) {
      if (!(e instanceof Found)) throw e;
      v = e.v;
    }
    expect(v?.kind).toBe('consequence');
    expect(v!.message).toMatch(/^a write of c:r1#\d\.handle landed in generation block 0, which is free/);
    const end = replayComposed(cfg, v!.path);
    expect(end).toMatchObject({ steps: v!.path.length, stuckAt: null });
    expect(end.violation?.id).toBe('M1');
    // The shipped contextSend takes the same path up to the last step without any violation.
    const before = replayComposed(cfg, v!.path.slice(0, -1));
    expect(before.violation).toBeNull();
  });
});
