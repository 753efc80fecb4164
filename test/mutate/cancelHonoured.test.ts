import { describe, expect, it } from 'vitest';
import type { ComposedState } from '../../src/explore/composed.js';
import { ComposedWorld } from '../../src/explore/composed.js';
import { composedConfig } from '../../src/explore/composedCatalog.js';
import { replayComposed } from '../../src/explore/composedExplorer.js';
import { earlyCancelIgnored, earlyCancelRecord, workAfterCancel } from '../../src/explore/cancelHonoured.js';
import { INVARIANTS } from '../../src/explore/invariantCatalog.js';
import { checkPromptRun } from '../../src/explore/promptRun.js';
import { allMutants } from '../../src/mutate/catalog.js';
import { scenarioSetup, withMachine } from '../../src/mutate/explore.js';

/**
 * M13 (a cancel stops new work), checked on the prompt runs: the shipped machines pass it where cancels
 * are explored; a mutant that goes on after its user's cancel is caught, and its path replays.
 */
const withMutant = (cfg: ReturnType<typeof composedConfig>, name: string) => {
  const m = allMutants().find((x) => x.name === name);
  if (!m) throw new Error(`no mutant ${name}`);
  return withMachine(cfg, m.build());
};
const world0 = (nat: Record<string, unknown>, toCtx: unknown[] = []) => ({ nat, toCtx }) as unknown as ComposedState;

describe('M13: a cancel stops new work', { timeout: 300_000 }, () => {
  it('is a consequence invariant in the catalog', () => {
    expect(INVARIANTS.find((i) => i.id === 'M13')).toMatchObject({ kind: 'consequence', scope: 'composed' });
  });

  it('marks a cancel early only while no native transfer of the request exists', () => {
    const none = world0({});
    const some = world0({ 'c:r1#0.handle': {} });
    expect(earlyCancelRecord(none, 'user: cancel r1 on the context side')).toBe('early context r1');
    expect(earlyCancelRecord(some, 'user: cancel r1 on the generation side')).toBeNull();
    // Another request's transfer does not make r2's cancel late; a non-cancel step is no record.
    expect(earlyCancelRecord(some, 'user: cancel r2 on the generation side')).toBe('early generation r2');
    expect(earlyCancelRecord(none, 'gen loop r1: pop')).toBeNull();
  });

  it('flags new work only on the side that was cancelled, and completed only after an early cancel', () => {
    const info = { t: 'info', id: 'r1', remote: { region: 0, blocks: [0], epoch: 1 } };
    expect(workAfterCancel(world0({}), world0({}, [info]), ['cancel generation r1'])).toMatch(/sent request info for r1/);
    expect(workAfterCancel(world0({}), world0({}, [info]), ['cancel context r1'])).toBeNull();
    expect(workAfterCancel(world0({}), world0({ 'c:r1#0.handle': {} }), ['cancel context r1'])).toMatch(/created native transfer/);
    expect(workAfterCancel(world0({}), world0({ 'c:r2#0.handle': {} }), ['cancel context r1'])).toBeNull();
    const ends = (o: string) => ({ reports: { 'generation:r1': { n: 1, outcome: o } } }) as unknown as ComposedState;
    expect(earlyCancelIgnored(ends('completed'), ['cancel generation r1', 'early generation r1'])).toHaveLength(1);
    expect(earlyCancelIgnored(ends('completed'), ['cancel generation r1'])).toEqual([]);
    expect(earlyCancelIgnored(ends('cancelled'), ['cancel generation r1', 'early generation r1'])).toEqual([]);
  });

  it('the shipped machines pass it: footing/cancel-shm completely, composed/handles up to the budget', () => {
    expect(checkPromptRun(new ComposedWorld(scenarioSetup('footing/cancel-shm').cfg))).toMatchObject({ truncated: false, violation: null });
    expect(checkPromptRun(new ComposedWorld(composedConfig('composed/handles', 'shipped')), 5_000)).toMatchObject({ truncated: true, violation: null });
  });

  it('catches a generation side that goes on to advertise its blocks after a cancel while queued; the path replays', () => {
    const cfg = withMutant(scenarioSetup('footing/cancel-shm').cfg, 'generationReceive: retarget worker.queued CANCEL done → queued');
    const r = checkPromptRun(new ComposedWorld(cfg));
    expect(r.violation).toMatchObject({ invariant: 'M13', message: 'the generation side sent request info for r1 after its user cancelled r1 there' });
    expect(r.violation!.path[0]).toBe('user: cancel r1 on the generation side');
    const end = replayComposed(cfg, r.violation!.path);
    expect(end).toMatchObject({ steps: r.violation!.path.length, stuckAt: null, violation: null });
    expect(end.state.toCtx.some((m) => m.t === 'info' && m.id === 'r1')).toBe(true);
  });

  it('catches a context side that starts its transfer after a cancel during prefill', () => {
    const cfg = withMutant(scenarioSetup('footing/cancel-shm').cfg, 'requestLifecycle: retarget CONTEXT_INIT CANCEL DISAGG_TRANS_ERROR → init');
    const r = checkPromptRun(new ComposedWorld(cfg));
    expect(r.violation).toMatchObject({ invariant: 'M13' });
    expect(r.violation!.message).toMatch(/^the context side created native transfer c:r1#0\.handle after its user cancelled r1 there$/);
    const end = replayComposed(cfg, r.violation!.path);
    expect(end).toMatchObject({ steps: r.violation!.path.length, stuckAt: null, violation: null });
  });
});

describe('prompt runs: a step that changes nothing does not hold time back', { timeout: 300_000 }, () => {
  it('a future polled for ever without settling lets the deadlines come due (M11 sees the wait)', () => {
    const cfg = withMutant(scenarioSetup('footing/1x1-shm').cfg, 'generationReceive: retarget future.pending STATUS_POLL observed → pending');
    const r = checkPromptRun(new ComposedWorld(cfg));
    expect(r.violation).toMatchObject({ invariant: 'M11' });
    expect(r.violation!.message).toContain('quiescenceTimeout in GENERATION_COMPLETE.awaitingQuiescence');
    const end = replayComposed(cfg, r.violation!.path);
    expect(end).toMatchObject({ steps: r.violation!.path.length, stuckAt: null, violation: null });
  });

  it('the shipped machines still pass every prompt check on every footing', () => {
    for (const f of ['footing/1x1-shm', 'footing/1x1-ucx', 'footing/reorder-shm', 'footing/loss-ucx', 'footing/peer-death-shm']) {
      expect(checkPromptRun(new ComposedWorld(scenarioSetup(f).cfg)), f).toMatchObject({ truncated: false, violation: null });
    }
  });
});
