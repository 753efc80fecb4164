import { describe, expect, it } from 'vitest';
import type { ComposedState } from '../../src/explore/composed.js';
import { ComposedWorld } from '../../src/explore/composed.js';
import { composedConfig } from '../../src/explore/composedCatalog.js';
import { replayComposed } from '../../src/explore/composedExplorer.js';
import { faultRecord, wrongOutcome } from '../../src/explore/cancelledOutcome.js';
import { INVARIANTS } from '../../src/explore/invariantCatalog.js';
import { checkPromptRun } from '../../src/explore/promptRun.js';
import { allMutants } from '../../src/mutate/catalog.js';
import { scenarioSetup, withMachine } from '../../src/mutate/explore.js';

/**
 * M10 (a user's cancel is reported as a cancel), checked at the ends of the prompt runs: the shipped
 * machines pass it where cancels are explored; a mutant that reports a cancelled request failed is caught.
 */
const withMutant = (cfg: ReturnType<typeof composedConfig>, name: string) => {
  const m = allMutants().find((x) => x.name === name);
  if (!m) throw new Error(`no mutant ${name}`);
  return withMachine(cfg, m.build());
};

describe('M10: a user cancel is reported as a cancel', { timeout: 300_000 }, () => {
  it('is a consequence invariant in the catalog', () => {
    expect(INVARIANTS.find((i) => i.id === 'M10')).toMatchObject({ kind: 'consequence', scope: 'composed' });
  });

  it('records a cancel by side and request, any other fault as other', () => {
    expect(faultRecord('user: cancel r2 on the generation side')).toBe('cancel generation r2');
    expect(faultRecord('backend: r1#0.handle ERROR')).toBe('other');
  });

  it('judges the outcomes at a run end by who cancelled what', () => {
    const world = new ComposedWorld(composedConfig('composed/handles', 'shipped'));
    const ends = (reports: Record<string, string>) => ({ reports: Object.fromEntries(Object.entries(reports).map(([k, o]) => [k, { n: 1, outcome: o }])) }) as unknown as ComposedState;
    const all = (c1: string, g1: string) => ends({ 'context:r1': c1, 'generation:r1': g1, 'context:r2': 'completed', 'generation:r2': 'completed' });
    expect(wrongOutcome(world, all('cancelled', 'failed'), ['cancel context r1'])).toEqual([]);
    expect(wrongOutcome(world, all('completed', 'completed'), ['cancel context r1'])).toEqual([]);
    expect(wrongOutcome(world, all('failed', 'cancelled'), ['cancel context r1'])).toEqual(['r1 was cancelled by its user on the context side and ended failed there']);
    // A request no user cancelled must complete on both sides: a cancel of one request fails no other.
    expect(wrongOutcome(world, ends({ 'context:r1': 'cancelled', 'generation:r1': 'cancelled', 'context:r2': 'failed', 'generation:r2': 'completed' }), ['cancel generation r1'])).toEqual([
      'r2 was cancelled by no user and ended failed on the context side',
    ]);
    expect(wrongOutcome(world, ends({ 'context:r1': 'failed', 'generation:r1': 'cancelled', 'context:r2': 'completed', 'generation:r2': 'completed' }), ['cancel generation r1'])).toEqual([]);
    // Another fault on the run, or none: not this check's to judge.
    expect(wrongOutcome(world, all('failed', 'failed'), ['cancel context r1', 'other'])).toEqual([]);
    expect(wrongOutcome(world, all('failed', 'failed'), [])).toEqual([]);
  });

  it('the shipped machines pass it: footing/cancel-shm completely, composed/handles up to the budget', () => {
    const cancel = checkPromptRun(new ComposedWorld(scenarioSetup('footing/cancel-shm').cfg));
    expect(cancel).toMatchObject({ truncated: false, violation: null });
    const handles = checkPromptRun(new ComposedWorld(composedConfig('composed/handles', 'shipped')), 5_000);
    expect(handles).toMatchObject({ truncated: true, violation: null });
  });

  it('catches a mutant that reports a request cancelled while queued as failed; the path replays to that end', () => {
    const cfg = withMutant(scenarioSetup('footing/cancel-shm').cfg, 'contextSend: drop action decide in sender.cancelMarked REQUEST_INFO');
    const world = new ComposedWorld(cfg);
    const r = checkPromptRun(world);
    expect(r.violation).toMatchObject({ invariant: 'M10', message: 'with only user cancels (cancel context r1) and a prompt network, the run ends with: r1 was cancelled by its user on the context side and ended failed there' });
    const end = replayComposed(cfg, r.violation!.path);
    expect(end).toMatchObject({ steps: r.violation!.path.length, stuckAt: null, violation: null });
    expect(r.violation!.path).toContain('user: cancel r1 on the context side');
    expect(wrongOutcome(world, end.state, ['cancel context r1'])).toHaveLength(1);
  });
});
