import { describe, expect, it } from 'vitest';
import { ComposedWorld } from '../../src/explore/composed.js';
import { composedConfig } from '../../src/explore/composedCatalog.js';
import { replayComposed } from '../../src/explore/composedExplorer.js';
import { INVARIANTS } from '../../src/explore/invariantCatalog.js';
import { neededDeadline } from '../../src/explore/promptDeadline.js';
import { checkPromptRun, isFault } from '../../src/explore/promptRun.js';
import { allMutants } from '../../src/mutate/catalog.js';
import { scenarioSetup, withMachine } from '../../src/mutate/explore.js';

/**
 * M11 (no deadline needed when nothing goes wrong), checked on the prompt runs: the shipped machines
 * never wait out a deadline on a fault-free prompt run; a mutant whose source lease is quarantined and
 * fenced instead of freed at once does.
 */
describe('M11: no deadline needed when nothing goes wrong', { timeout: 300_000 }, () => {
  it('is a consequence invariant in the catalog', () => {
    expect(INVARIANTS.find((i) => i.id === 'M11')).toMatchObject({ kind: 'consequence', scope: 'composed' });
  });

  it('only a deadline on a run with no fault, or only user cancels, counts', () => {
    expect(neededDeadline('', { label: 'deadline g:r1.lease: fenceTimeout in fencing' })).toMatch(/^with no fault and .*a deadline fires: 'g:r1\.lease: fenceTimeout in fencing'/);
    expect(neededDeadline('cancel context r1', { label: 'deadline g:r1.lease: fenceTimeout in fencing' })).toMatch(/^with only user cancels \(cancel context r1\) and .*a deadline fires/);
    expect(neededDeadline('cancel context r1,cancel generation r2', { label: 'deadline c:r2.send: kvTransferTimeout in sender.queued' })).not.toBeNull();
    expect(neededDeadline('cancel context r1,other', { label: 'deadline g:r1.lease: fenceTimeout in fencing' })).toBeNull();
    expect(neededDeadline('other', { label: 'deadline g:r1.lease: fenceTimeout in fencing' })).toBeNull();
    expect(neededDeadline('', { label: 'net ctx→gen: deliver ready(r1)' })).toBeNull();
  });

  it('the shipped machines pass it: footing/1x1-shm and footing/cancel-shm explored completely, composed/reuse up to the budget', () => {
    for (const cfg of [scenarioSetup('footing/1x1-shm').cfg, scenarioSetup('footing/cancel-shm').cfg]) {
      const r = checkPromptRun(new ComposedWorld(cfg));
      expect(r).toMatchObject({ truncated: false, violation: null });
    }
    expect(checkPromptRun(new ComposedWorld(composedConfig('composed/reuse', 'shipped')), 5_000)).toMatchObject({ truncated: true, violation: null });
  });

  it('catches a mutant that never tells the context side of a generation-side cancel before the info was sent; the path has only that cancel', () => {
    const m = allMutants().find((x) => x.name === 'generationReceive: drop action tellPeerCancelled in worker.queued CANCEL')!;
    const cfg = withMachine(scenarioSetup('footing/cancel-shm').cfg, m.build());
    const r = checkPromptRun(new ComposedWorld(cfg));
    expect(r.violation).toMatchObject({ invariant: 'M11', message: "with only user cancels (cancel generation r1) and a prompt network a deadline fires: 'c:r1.send: kvTransferTimeout in sender.queued' (nothing else could happen)" });
    expect(r.violation!.path.filter((l) => isFault({ label: l }))).toEqual(['user: cancel r1 on the generation side']);
    expect(replayComposed(cfg, r.violation!.path)).toMatchObject({ steps: r.violation!.path.length, stuckAt: null, violation: null });
  });

  it('catches a mutant whose exposed lease forgets a sync notification that came before its release (quarantine and fence after a cancel)', () => {
    const m = allMutants().find((x) => x.name === 'blockLease: remove branch sawSync in exposed RELEASE[1]')!;
    const cfg = withMachine(scenarioSetup('footing/cancel-shm').cfg, m.build());
    const r = checkPromptRun(new ComposedWorld(cfg));
    expect(r.violation).toMatchObject({ invariant: 'M11' });
    expect(r.violation!.message).toMatch(/^with only user cancels \(cancel generation r1\) .*'g:r1\.lease: quarantineMaxAge in quarantined'/);
    expect(replayComposed(cfg, r.violation!.path)).toMatchObject({ steps: r.violation!.path.length, stuckAt: null, violation: null });
  });

  it('catches a mutant that frees the context side’s source lease through quarantine; the path has no fault', () => {
    const m = allMutants().find((x) => x.name === 'requestLifecycle: drop action noteQuiescent in DISAGG_CONTEXT_COMPLETE.awaitingQuiescence SIDE_QUIESCENT')!;
    const cfg = withMachine(scenarioSetup('footing/1x1-shm').cfg, m.build());
    const r = checkPromptRun(new ComposedWorld(cfg));
    expect(r.violation).toMatchObject({ invariant: 'M11', message: "with no fault and a prompt network a deadline fires: 'c:r1.lease: quarantineMaxAge in quarantined' (nothing else could happen)" });
    expect(r.violation!.path.some((l) => isFault({ label: l }))).toBe(false);
    expect(replayComposed(cfg, r.violation!.path)).toMatchObject({ steps: r.violation!.path.length, stuckAt: null, violation: null });
  });
});
