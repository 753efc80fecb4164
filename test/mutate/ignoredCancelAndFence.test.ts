import { describe, expect, it } from 'vitest';
import type { ComposedConfig, ComposedState } from '../../src/explore/composed.js';
import { ComposedWorld } from '../../src/explore/composed.js';
import { exploreComposed, replayComposed } from '../../src/explore/composedExplorer.js';
import { checkPromptRun } from '../../src/explore/promptRun.js';
import { mutantNamed } from '../../src/mutate/catalog.js';
import { scenarioSetup, withMachine } from '../../src/mutate/explore.js';

/**
 * Seventh session (docs/invariants.md, "Seventh session: an ignored cancel, a fence kept for ever"):
 * - the composed world offers the user's cancel wherever a real user could (the request live on a live
 *   side), not where the lifecycle's can(CANCEL) says; so a lifecycle that ignores a cancel is seen
 *   ignoring it (M13 kills the two `cancelSide` drops that the world used to hide);
 * - M4 counts a fence the generation side still keeps pending at rest as held; the shipped machines
 *   withdraw a fence their lease stopped waiting for (blockLease `withdrawFence`), so a lost fence or
 *   acknowledgement leaks nothing, and a fence client that forgets nothing is caught.
 */
const mutantCfg = (footing: string, name: string): ComposedConfig => withMachine(scenarioSetup(footing).cfg, mutantNamed(name).build());
const explore = (footing: string, cfg: ComposedConfig) =>
  exploreComposed(cfg, { scenario: footing, variant: 'x' }, { maxStates: scenarioSetup(footing).maxStates, reduce: false, symmetry: false, walks: 0, promptRun: false });

describe('the user cancel is offered wherever a user could cancel', { timeout: 600_000 }, () => {
  const world = new ComposedWorld(scenarioSetup('footing/cancel-shm').cfg);
  const at = (status: string, reports: ComposedState['reports'] = {}) => ({ actors: { 'c:r1.lifecycle': { status } }, reports }) as unknown as ComposedState;

  it('while the lifecycle lives and has reported nothing on that side, whatever its state', () => {
    expect(world.cancellable(at('active'), 'context', 'r1')).toBe(true);
    expect(world.cancellable(at('active', { 'context:r1': { n: 1, outcome: 'completed' } }), 'context', 'r1')).toBe(false);
    expect(world.cancellable(at('done'), 'context', 'r1')).toBe(false);
    // No lifecycle on that side (not admitted yet, or the other side's actor): nothing to cancel.
    expect(world.cancellable(at('active'), 'generation', 'r1')).toBe(false);
  });

  for (const [role, message] of [
    ['CONTEXT', 'the context side created native transfer c:r1#0.handle after its user cancelled r1 there'],
    ['GENERATION', 'the generation side sent request info for r1 after its user cancelled r1 there'],
  ] as const) {
    it(`catches a lifecycle that ignores a cancel in DISAGG_${role}_TRANS_IN_PROGRESS (M13); the path replays`, () => {
      const cfg = mutantCfg('footing/cancel-shm', `requestLifecycle: drop action cancelSide in DISAGG_${role}_TRANS_IN_PROGRESS CANCEL`);
      const r = checkPromptRun(new ComposedWorld(cfg));
      expect(r.violation).toMatchObject({ invariant: 'M13', message });
      const side = role === 'CONTEXT' ? 'context' : 'generation';
      expect(r.violation!.path).toContain(`user: cancel r1 on the ${side} side`);
      expect(replayComposed(cfg, r.violation!.path)).toMatchObject({ steps: r.violation!.path.length, stuckAt: null });
    });
  }
});

describe('M4: a fence still pending at rest is held', { timeout: 600_000 }, () => {
  const world = new ComposedWorld(scenarioSetup('footing/1x1-shm').cfg);

  it('names the pending fence as what is not at rest', () => {
    const s = world.initial();
    const fences = s.actors['g:@server.fences']!;
    const pending = { ...s, actors: { ...s.actors, 'g:@server.fences': { ...fences, context: { ...fences.context, pending: ['r1'] } } } } as unknown as ComposedState;
    expect(world.restProblems(pending, false)).toContain('fence client keeps a pending fence for r1');
    expect(world.restProblems(s, false).some((p) => p.startsWith('fence client'))).toBe(false);
    // A dead generation process holds nothing.
    expect(world.restProblems({ ...pending, dead: { context: false, generation: true } }, false).some((p) => p.startsWith('fence client'))).toBe(false);
  });

  it('catches a fence client that keeps an acknowledged fence (footing/1x1-shm); the path replays, and the original forgets it', () => {
    const cfg = mutantCfg('footing/1x1-shm', 'fenceClient: drop action dropPending in open FENCE_ACK');
    const v = explore('footing/1x1-shm', cfg).violations.find((x) => x.invariant === 'M4');
    expect(v?.message).toContain('fence client keeps a pending fence for r1');
    const end = replayComposed(cfg, v!.path);
    expect(end).toMatchObject({ steps: v!.path.length, stuckAt: null });
    const orig = replayComposed(scenarioSetup('footing/1x1-shm').cfg, v!.path);
    expect(orig.stuckAt).toBeNull();
    expect(world.restProblems(orig.state, false)).toEqual([]);
  });

  it('the shipped machines withdraw a fence they stopped waiting for (footing/1x1-ucx clean); a lease that does not is caught', () => {
    // The lease's fenceTimeout may fire while its fence is still on the way: from then on only the
    // peer's ack could clear the entry, and nothing of the executors' own is left to do (M4 at rest).
    const ucx = 'footing/1x1-ucx';
    const shipped = explore(ucx, scenarioSetup(ucx).cfg);
    expect(shipped.truncated).toBe(false);
    expect(shipped.violations).toEqual([]);
    const cfg = mutantCfg(ucx, 'blockLease: drop action withdrawFence in fencing after fenceTimeout');
    const v = explore(ucx, cfg).violations.find((x) => x.invariant === 'M4');
    expect(v?.message).toContain('fence client keeps a pending fence for r1');
    expect(v!.path.at(-1)).toBe('deadline g:r1.lease: fenceTimeout in fencing');
    expect(replayComposed(cfg, v!.path)).toMatchObject({ steps: v!.path.length, stuckAt: null });
  });
});
