import { describe, expect, it } from 'vitest';
import { requestLifecycleMachine } from '../../machines/index.js';
import { replayComposed } from '../../src/explore/composedExplorer.js';
import { mutantNamed } from '../../src/mutate/catalog.js';
import { computeBaseline, promptKill, scenarioSetup, withMachine } from '../../src/mutate/explore.js';
import { classify, runMutantTask } from '../../src/mutate/run.js';

/**
 * A survivor is not explored past the first complete footing where it differs observably (not
 * thorough); the prompt runs of the places left are still searched for a kill (seconds each).
 */
const byName = mutantNamed;
// A cancelled request reported failed: different on footing/1x1-shm (a deadline's cancel, no user), caught by M10 on footing/cancel-shm.
const LATE = 'generationReceive: drop action finish in worker.awaitingReady CANCEL[0]';

describe('prompt-run kill search of the places a survivor is not explored in', { timeout: 600_000 }, () => {
  const first = computeBaseline('footing/1x1-shm');
  const cancel = computeBaseline('footing/cancel-shm');

  it('finds the kill that the first footing could not, and its path replays', () => {
    const k = promptKill(byName(LATE).build(), cancel);
    expect(k).toMatchObject({ scenario: 'footing/cancel-shm', kind: 'killed', invariant: 'M10', invariantKind: 'consequence' });
    if (k?.kind !== 'killed') throw new Error('not killed');
    expect(k.message).toMatch(/r1 was cancelled by its user on the generation side and ended failed there \(prompt runs only\)$/);
    const end = replayComposed(withMachine(scenarioSetup('footing/cancel-shm').cfg, byName(LATE).build()), k.path);
    expect(end).toMatchObject({ steps: k.path.length, stuckAt: null, violation: null });
    expect(end.state.reports['generation:r1']).toMatchObject({ outcome: 'failed' });
  });

  it('answers nothing for the original machine (every step alike), nor for a mutant whose prompt runs break nothing', () => {
    expect(promptKill(requestLifecycleMachine, cancel)).toBeNull();
    expect(promptKill(byName('requestLifecycle: drop action cancelSide in DISAGG_CONTEXT_TRANS_IN_PROGRESS after kvTransferTimeout').build(), cancel)).toBeNull();
  });

  it('the runner charges it: differs on footing/1x1-shm, killed by the prompt runs of footing/cancel-shm', () => {
    const task = { name: LATE, allTargets: false, baselines: [first, cancel], caps: { maxMs: 300_000 }, thorough: false };
    const out = runMutantTask(task);
    expect(out.map((o) => [o.scenario, o.kind])).toEqual([
      ['footing/1x1-shm', 'clean'],
      ['footing/cancel-shm', 'killed'],
    ]);
    expect(classify(byName(LATE), out, [first, cancel], 0)).toMatchObject({ verdict: 'killed', kind: 'consequence' });
  });
});
