import type { SimCluster, SimShape } from '../../src/sim/cluster.js';
import { NO_FAULTS } from '../../src/sim/network.js';

/** A world of one request and no faults, sized by the test (the tests that drive the servers by hand). */
export function oneRequestShape(o: Pick<SimShape, 'blocksPerRequest'> & Partial<SimShape>): SimShape {
  return {
    requests: 1,
    blockBytes: 4096,
    ctxPoolBlocks: o.blocksPerRequest,
    genPoolBlocks: o.blocksPerRequest,
    recvSlots: 1,
    kvTransferTimeoutMs: 1000,
    links: NO_FAULTS,
    cancelRate: 0,
    crashRate: 0,
    partitionRate: 0,
    weights: { submit: 1, deliver: 1, loop: 1, native: 1, time: 1 },
    variants: [],
    ...o,
  };
}

/** Let promise callbacks and deferred work run, in the same order every time (as the simulator does). */
export async function settle(c: SimCluster): Promise<void> {
  for (let i = 0; i < 4; i++) {
    await null;
    c.runDeferred();
  }
}
