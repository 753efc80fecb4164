import { describe, expect, it } from 'vitest';
import { SimCluster } from '../../src/sim/cluster.js';
import type { SimShape } from '../../src/sim/cluster.js';
import { Rng } from '../../src/sim/rng.js';
import { oneRequestShape, settle } from './oneRequest.js';

/**
 * The generation process dies after asking for a request and before the context server reads the
 * request info: the context server's native layer refuses the transfer (PEER_GONE). That is a failed
 * transfer, not a crash of the context server (a burst once lost its context server so: the info was
 * read and its transfer posted in the same turn, before the socket's close). Real servers, one process,
 * manual progress and loops, virtual time.
 */
const shape: SimShape = oneRequestShape({ blocksPerRequest: 1 });

describe('a transfer to a peer process that is gone', () => {
  for (const loop of ['manual', 'auto'] as const) {
    it(`fails the request on the context side and the server keeps running (${loop} loop)`, async () => {
      const c = new SimCluster(1, { ...shape, loop }, new Rng(1));
      const spec = { id: 'r1', number: 1, blocks: 1, faults: [] };
      c.submitGeneration(spec);
      c.submitContext(spec);
      // Until the generation side has sent its request info (it waits in the link to the context side).
      for (let i = 0; i < 100 && c.toCtx.deliverable() === 0; i++) {
        c.gen.stepLoop();
        c.ctx.stepLoop();
        await settle(c);
      }
      expect(c.toCtx.deliverable()).toBeGreaterThan(0);
      // The generation process dies; the context server has not yet seen its socket close.
      c.gen.agent.close();
      while (c.toCtx.deliverOne() !== null) await settle(c);
      for (let i = 0; i < 200 && !c.reports.context.has('r1'); i++) {
        c.ctx.stepLoop();
        c.ctx.agent.step();
        await settle(c);
        if (i % 20 === 19) c.clock.advance(shape.kvTransferTimeoutMs);
      }
      const report = c.reports.context.get('r1')?.[0];
      expect(report?.outcome).toBe('failed');
      // Nothing was written into a dead peer's memory: the source blocks come back.
      for (let i = 0; i < 200 && c.ctx.pool.stats().heldBlocks > 0; i++) {
        c.ctx.stepLoop();
        c.ctx.agent.step();
        await settle(c);
        if (i % 20 === 19) c.clock.advance(shape.kvTransferTimeoutMs);
      }
      expect(c.ctx.pool.stats().heldBlocks).toBe(0);
      c.close();
    });
  }
});
