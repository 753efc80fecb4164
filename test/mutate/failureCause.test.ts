import { describe, expect, it } from 'vitest';
import type { ComposedState } from '../../src/explore/composed.js';
import { composedConfig } from '../../src/explore/composedCatalog.js';
import { exploreComposed, replayComposed } from '../../src/explore/composedExplorer.js';
import { causeMismatch } from '../../src/explore/failureCause.js';
import { INVARIANTS } from '../../src/explore/invariantCatalog.js';
import { allMutants } from '../../src/mutate/catalog.js';
import { withMachine } from '../../src/mutate/explore.js';

/** M12 (a failure names its cause): judged at the step that reports; a mutant that loses the cause is caught. */
describe('M12: a failure names its cause', { timeout: 300_000 }, () => {
  it('is a consequence invariant in the catalog', () => {
    expect(INVARIANTS.find((i) => i.id === 'M12')).toMatchObject({ kind: 'consequence', scope: 'composed' });
  });

  it('matches each outcome with its reasons, once, when the report appears', () => {
    const w = (reports: Record<string, [string, string]>) => ({ reports: Object.fromEntries(Object.entries(reports).map(([k, [outcome, reason]]) => [k, { n: 1, outcome, reason }])) }) as unknown as ComposedState;
    const none = w({});
    expect(causeMismatch(none, w({ 'generation:r1': ['failed', 'timedOut'] }))).toBeNull();
    expect(causeMismatch(none, w({ 'context:r1': ['completed', 'none'] }))).toBeNull();
    expect(causeMismatch(none, w({ 'context:r1': ['cancelled', 'cancelled'] }))).toBeNull();
    expect(causeMismatch(none, w({ 'generation:r2': ['failed', 'none'] }))).toBe("generation:r2 reported failed with reason 'none' (expected 'timedOut' or 'transferFailed' or 'corrupted')");
    expect(causeMismatch(none, w({ 'context:r1': ['completed', 'timedOut'] }))).toMatch(/expected 'none'/);
    const bad = w({ 'generation:r2': ['failed', 'none'] });
    expect(causeMismatch(bad, bad)).toBeNull();
  });

  it('catches a mutant whose timed-out request reports no cause; the shipped machines on the same steps report timedOut', () => {
    const shipped = composedConfig('composed/handles', 'shipped');
    const m = allMutants().find((x) => x.name === 'requestLifecycle: drop action noteError in DISAGG_GENERATION_INIT after kvTransferTimeout')!;
    const cfg = withMachine(shipped, m.build());
    const r = exploreComposed(cfg, { scenario: 'composed/handles', variant: 'mutant' }, { maxStates: 3000, promptRun: false });
    const v = r.violations.find((x) => x.invariant === 'M12');
    expect(v?.message).toMatch(/^generation:r\d reported failed with reason 'none'/);
    const end = replayComposed(cfg, v!.path);
    expect(end).toMatchObject({ steps: v!.path.length, stuckAt: null });
    const orig = replayComposed(shipped, v!.path);
    expect(orig).toMatchObject({ steps: v!.path.length, stuckAt: null, violation: null });
    const key = v!.message.split(' ')[0]!;
    expect(orig.state.reports[key]).toMatchObject({ outcome: 'failed', reason: 'timedOut' });
  });
});
