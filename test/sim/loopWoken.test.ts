import { describe, expect, it } from 'vitest';
import { SimCluster } from '../../src/sim/cluster.js';
import { Rng } from '../../src/sim/rng.js';
import { oneRequestShape, settle } from './oneRequest.js';

/**
 * The simulator's `loop-woken-for-its-work` rule reads `strandedLoopWork`: actors waiting in a server's
 * automatic loop with no turn of it scheduled. A server whose loop is never woken must show it; the
 * same request on a working server must not.
 */
describe('stranded work in the automatic loop', () => {
  const shape = { ...oneRequestShape({ blocksPerRequest: 1 }), loop: 'auto' as const };
  const spec = { id: 'r1', number: 1, blocks: 1, faults: [] };

  it('is none while the loop is woken by what made its work', async () => {
    const c = new SimCluster(1, shape, new Rng(1));
    c.submitGeneration(spec);
    c.submitContext(spec);
    for (let i = 0; i < 20; i++) {
      while (c.toCtx.deliverOne() !== null || c.toGen.deliverOne() !== null) await settle(c);
      c.ctx.agent.step();
      c.gen.agent.step();
      await settle(c);
      expect([c.ctx.strandedLoopWork, c.gen.strandedLoopWork]).toEqual([0, 0]);
    }
    expect(c.reports.generation.get('r1')?.[0]?.outcome).toBe('completed');
    c.close();
  });

  it('shows when the loop is never woken', async () => {
    const c = new SimCluster(1, shape, new Rng(1));
    // A server that forgets to schedule its loop turns. A stimulus's own request is stepped at once
    // (the eager part of the loop), so the work left for the loop here is what a deadline made: the
    // request's wait for its peer times out while nothing else happens.
    (c.gen as unknown as { schedule(): void }).schedule = () => {};
    c.submitGeneration(spec);
    await settle(c);
    let stranded = 0;
    for (let i = 0; i < 8 && stranded === 0; i++) {
      c.clock.advance(shape.kvTransferTimeoutMs / 2);
      await settle(c);
      stranded = c.gen.strandedLoopWork;
    }
    expect(stranded).toBeGreaterThan(0);
    expect(c.ctx.strandedLoopWork).toBe(0);
    c.close();
  });
});
