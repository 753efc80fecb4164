import { describe, expect, it } from 'vitest';
import type { ComposedState } from '../../src/explore/composed.js';
import { ComposedWorld, stateKey } from '../../src/explore/composed.js';
import { exploreComposed, replayComposed } from '../../src/explore/composedExplorer.js';
import { INVARIANTS } from '../../src/explore/invariantCatalog.js';
import { needlessRetirement } from '../../src/explore/needlessRetirement.js';
import { FULL_GRAPH } from '../../src/mutate/bisim.js';
import { allMutants } from '../../src/mutate/catalog.js';
import { scenarioSetup, withMachine } from '../../src/mutate/explore.js';

/**
 * M9 (no needless retirement): the shipped machines pass it on the smallest footings, explored
 * completely; a mutant that never acknowledges a fence is caught; and the UCX exception (a transfer
 * released in flight leaves its initiator without any proof) is needed by the shipped machines and
 * read from the world, not from a machine.
 */
const footing = (name: string, mutant?: string) => {
  const cfg = scenarioSetup(name).cfg;
  if (!mutant) return cfg;
  const m = allMutants().find((x) => x.name === mutant);
  if (!m) throw new Error(`no mutant ${mutant}`);
  return withMachine(cfg, m.build());
};
const m9 = (r: ReturnType<typeof exploreComposed>) => r.violations.find((v) => v.invariant === 'M9');

describe('M9: no needless retirement', { timeout: 300_000 }, () => {
  it('is a consequence invariant in the catalog', () => {
    expect(INVARIANTS.find((i) => i.id === 'M9')).toMatchObject({ kind: 'consequence', scope: 'composed' });
  });

  it('the shipped machines pass it on footing/1x1-shm and footing/1x1-ucx, explored completely', () => {
    for (const name of ['footing/1x1-shm', 'footing/1x1-ucx']) {
      const r = exploreComposed(footing(name), { scenario: name, variant: 'shipped' }, { ...FULL_GRAPH, promptRun: false });
      expect(r.truncated, name).toBe(false);
      expect(r.violations, name).toEqual([]);
    }
  });

  it('catches a mutant that never acknowledges a fence once the handles settled; the path replays to a retirement', () => {
    const cfg = footing('footing/1x1-shm', 'contextSend: drop action ackFence in sender.cancellingTransfers TRANSFERS_SETTLED[0]');
    const v = m9(exploreComposed(cfg, { scenario: 'footing/1x1-shm', variant: 'mutant' }, { ...FULL_GRAPH, promptRun: false }));
    expect(v?.message).toMatch(/^generation block 0 \(owned by r1@1\) retired by 'deadline g:r1\.lease: fenceTimeout in fencing' with nothing lost/);
    const before = replayComposed(cfg, v!.path.slice(0, -1));
    const after = replayComposed(cfg, v!.path);
    expect(before).toMatchObject({ stuckAt: null, violation: null });
    expect(after).toMatchObject({ steps: v!.path.length, stuckAt: null });
    expect(before.state.blocks[0]!.owner).toBe('r1@1');
    expect(after.state.blocks[0]!.owner).toBe('retired');
    expect(needlessRetirement(new ComposedWorld(cfg), before.state, after.state, v!.path.at(-1)!)).toBe(v!.message);
  });

  it('with UCX the shipped machines retire a block after a release in flight, and only that flag excuses it', () => {
    // Search footing/1x1-ucx for a step that retires a block after its transfer was released in flight.
    const world = new ComposedWorld(footing('footing/1x1-ucx'));
    const seen = new Set<string>();
    let found: { before: ComposedState; after: ComposedState; label: string } | null = null;
    const queue: ComposedState[] = [world.initial()];
    for (let i = 0; i < queue.length && !found; i++) {
      const s = queue[i]!;
      for (const c of world.choices(s)) {
        const { next } = world.apply(s, c);
        if (next.violation) continue;
        if (next.blocks[0]!.owner === 'retired' && s.blocks[0]!.owner !== 'retired' && Object.values(s.nat).some((x) => x.releasedInFlight)) {
          if (!world.choices(s).some((x) => !x.label.startsWith('deadline ') && !/^user: | ERROR$/.test(x.label))) found = { before: s, after: next, label: c.label };
        }
        const k = stateKey(next);
        if (!seen.has(k)) seen.add(k), queue.push(next);
      }
    }
    expect(found).not.toBeNull();
    const { before, after, label } = found!;
    expect(Object.values(before.nat).every((x) => x.phase !== 'posted')).toBe(true);
    expect(needlessRetirement(world, before, after, label)).toBeNull();
    // Without the record of the release in flight the same retirement would be needless.
    const unflagged = { ...before, nat: Object.fromEntries(Object.entries(before.nat).map(([k, x]) => [k, { ...x, releasedInFlight: undefined }])) } as ComposedState;
    expect(needlessRetirement(world, unflagged, after, label)).toMatch(/retired by 'deadline g:r1\.lease: fenceTimeout/);
  });
});
