import { describe, expect, it } from 'vitest';
import { at } from '../../src/core/wiring.js';
import type { RequestReport } from '../../src/executor/config.js';
import { completedWithCorruptedBlocks } from '../../src/sim/checkers.js';
import { SimCluster } from '../../src/sim/cluster.js';
import type { SimShape } from '../../src/sim/cluster.js';
import { Rng } from '../../src/sim/rng.js';
import { oneRequestShape, settle } from './oneRequest.js';

/**
 * The served-bytes verdict is the lifecycle's: the generation server checks the blocks it serves when
 * decoding starts and delivers SERVED_VERIFIED; wrong bytes fail the request with reason 'corrupted'.
 * Driven on the real servers (SimCluster: one process, manual progress, virtual clock), with the
 * corruption made by hand between receipt and decoding (a late write that the receipt check missed).
 */
const shape: SimShape = oneRequestShape({ blocksPerRequest: 2 });

/** Run one request through both servers; `beforeDecode` runs once the KV cache arrived, just before decoding starts. */
async function runOne(beforeDecode: (c: SimCluster) => void): Promise<{ report: RequestReport; cluster: SimCluster; reachedDecode: boolean }> {
  const c = new SimCluster(7, shape, new Rng(7));
  try {
    const spec = { id: 'r1', number: 1, blocks: shape.blocksPerRequest, faults: [] };
    c.submitGeneration(spec);
    c.submitContext(spec);
    const lifecycle = () => c.gen.snapshot(at.req('generation', 'lifecycle', 'r1'));
    const steps: Array<() => unknown> = [() => c.toGen.deliverOne(), () => c.toCtx.deliverOne(), () => c.ctx.stepLoop(), () => c.ctx.agent.step(), () => c.gen.agent.step(), () => c.gen.stepLoop()];
    let reachedDecode = false;
    for (let round = 0; round < 500 && !c.reports.generation.has('r1'); round++) {
      for (const step of steps) {
        if (!reachedDecode && lifecycle()?.matches('DISAGG_GENERATION_TRANS_COMPLETE' as never)) {
          reachedDecode = true;
          beforeDecode(c);
        }
        step();
        await settle(c);
      }
    }
    const list = c.reports.generation.get('r1');
    expect(list, 'the generation side never reported r1').toBeDefined();
    expect(list).toHaveLength(1);
    return { report: list![0]!, cluster: c, reachedDecode };
  } finally {
    c.close();
  }
}

describe('served-bytes verdict (generation side)', () => {
  it('blocks intact when decoding starts: the request completes, nothing observed', async () => {
    const { report, cluster, reachedDecode } = await runOne(() => {});
    expect(reachedDecode).toBe(true);
    expect(report).toMatchObject({ outcome: 'completed', reason: 'none', corrupted: false, finalState: 'GENERATION_COMPLETE' });
    expect(cluster.gen.servedMismatches).toBe(0);
    expect(completedWithCorruptedBlocks(cluster.reports.generation)).toEqual([]);
  });

  it('a block overwritten after receipt: the lifecycle fails the request with reason corrupted (one error response), and the simulator check stays quiet', async () => {
    const { report, cluster, reachedDecode } = await runOne((c) => {
      const lease = c.gen.pool.lease('r1')!;
      c.gen.pool.view(lease.blocks[1]!)[100]! ^= 0xff;
    });
    expect(reachedDecode).toBe(true);
    expect(report).toMatchObject({ outcome: 'failed', reason: 'corrupted', corrupted: true, finalState: 'DISAGG_TRANS_ERROR' });
    expect(cluster.gen.servedMismatches).toBe(1);
    expect(cluster.gen.counters.errorResponses).toBe(1);
    expect(completedWithCorruptedBlocks(cluster.reports.generation)).toEqual([]);
    // Had the lifecycle kept decoding (the verdict ignored), this report would be a violation.
    expect(completedWithCorruptedBlocks(new Map([['r1', [{ ...report, outcome: 'completed' as const }]]]))).toEqual(['r1 completed with corrupted blocks']);
  });
});

describe('completedWithCorruptedBlocks (the simulator check served-bytes-are-owners)', () => {
  const rep = (outcome: RequestReport['outcome'], corrupted: boolean) => ({ outcome, corrupted });
  it('fires only for a completed request whose served blocks failed verification, on its first report', () => {
    expect(completedWithCorruptedBlocks(new Map([['a', [rep('completed', true)]]]))).toEqual(['a completed with corrupted blocks']);
    expect(completedWithCorruptedBlocks(new Map([['a', [rep('completed', false)]], ['b', [rep('failed', true)]], ['c', [rep('cancelled', true)]]]))).toEqual([]);
    expect(completedWithCorruptedBlocks(new Map([['a', [rep('failed', true), rep('completed', true)]]]))).toEqual([]);
  });
});
