import { afterEach, expect, it } from 'vitest';
import { Agent } from '../../src/native/index.js';
import { BlockPool, type PoolOptions } from '../../src/executor/pool.js';

const B = 4096;
const agents: Agent[] = [];
afterEach(() => {
  for (const a of agents.splice(0)) a.close();
});

function pool(options: PoolOptions): BlockPool {
  const a = new Agent(`pool-test-${agents.length}-${process.pid}`, { progress: 'manual' });
  agents.push(a);
  return new BlockPool(a, B, 4, options);
}

/** A stray write into a block nobody holds: what a late remote write does. */
function strayWrite(p: BlockPool, block: number): void {
  p.view(block)[B - 1] ^= 0xff;
}

for (const checkPoison of ['allocate', 'firstWrite'] as const) {
  it(`${checkPoison}: a write that landed while the block was free is counted once, before the fill hides it`, () => {
    const p = pool({ checkPoison });
    const [b] = p.allocate('r1', 1, 1)!;
    p.giveBack('r1');
    strayWrite(p, b!);
    const [again] = p.allocate('r2', 1, 2)!;
    expect(again).toBe(b);
    p.fillRange(again!, 0, B, 2, p.epochOf('r2')!, 0);
    p.fillRange(again!, 0, B, 2, p.epochOf('r2')!, 0);
    expect(p.poisonBroken).toBe(1);
  });

  it(`${checkPoison}: a held block given back without ever being written is still checked`, () => {
    const p = pool({ checkPoison });
    const [b] = p.allocate('r1', 1, 1)!;
    p.giveBack('r1');
    strayWrite(p, b!);
    p.allocate('r2', 1, 2);
    p.giveBack('r2'); // cancelled before its fill: poisoning again must not erase the evidence
    p.allocate('r3', 1, 3);
    p.giveBack('r3');
    expect(p.poisonBroken).toBe(1);
  });

  it(`${checkPoison}: clean reuse counts nothing, slices of one block included`, () => {
    const p = pool({ checkPoison });
    for (let r = 1; r <= 6; r++) {
      const blocks = p.allocate(`r${r}`, 2, r)!;
      blocks.forEach((b, i) => {
        p.fillRange(b, 0, B / 2, r, p.epochOf(`r${r}`)!, i);
        p.fillRange(b, B / 2, B / 2, r, p.epochOf(`r${r}`)!, i);
      });
      p.giveBack(`r${r}`);
    }
    expect(p.poisonBroken).toBe(0);
  });
}

it("'allocate' finds the stray write at allocation, 'firstWrite' only at the first write", () => {
  const at = { allocate: pool({ checkPoison: 'allocate' }), firstWrite: pool({ checkPoison: 'firstWrite' }) };
  for (const p of Object.values(at)) {
    const [b] = p.allocate('r1', 1, 1)!;
    p.giveBack('r1');
    strayWrite(p, b!);
    p.allocate('r2', 1, 2);
  }
  expect(at.allocate.poisonBroken).toBe(1);
  expect(at.firstWrite.poisonBroken).toBe(0);
  const [b2] = at.firstWrite.blocksOf('r2')!;
  at.firstWrite.fillRange(b2!, 0, B, 2, at.firstWrite.epochOf('r2')!, 0);
  expect(at.firstWrite.poisonBroken).toBe(1);
});

it("'firstWrite' also catches a write into a block held but not yet written; 'allocate' cannot", () => {
  const at = { allocate: pool({ checkPoison: 'allocate' }), firstWrite: pool({ checkPoison: 'firstWrite' }) };
  for (const p of Object.values(at)) {
    const [b] = p.allocate('r1', 1, 1)!;
    strayWrite(p, b!);
    p.fillRange(b!, 0, B, 1, p.epochOf('r1')!, 0);
  }
  expect(at.allocate.poisonBroken).toBe(0);
  expect(at.firstWrite.poisonBroken).toBe(1);
});

it("'firstWrite': a retired block is never checked (a write may still land in it)", () => {
  const p = pool({ checkPoison: 'firstWrite' });
  const [b] = p.allocate('r1', 1, 1)!;
  strayWrite(p, b!);
  p.retire('r1');
  expect(p.poisonBroken).toBe(0);
  expect(p.stats().retiredBlocks).toBe(1);
});
