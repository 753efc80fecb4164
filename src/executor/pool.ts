import type { Agent, Region } from '../native/index.js';

/**
 * A KV block pool in registered memory. Blocks are handed out in leases (one per request); the lease's
 * machine (blockLease) decides when they may come back: only with proof of quiescence, else they stay
 * quarantined, and blocks whose fence failed are retired for good.
 */
export interface PoolStats {
  totalBlocks: number;
  freeBlocks: number;
  /** Blocks held by a live lease (allocated, exposed, quarantined or fencing). */
  heldBlocks: number;
  retiredBlocks: number;
}

export class BlockPool {
  readonly region: Region;
  private readonly free: number[] = [];
  private readonly held = new Map<string, number[]>();
  private retired = 0;

  constructor(
    agent: Agent,
    readonly blockBytes: number,
    readonly totalBlocks: number,
  ) {
    this.region = agent.registerMemory(blockBytes * totalBlocks);
    for (let i = totalBlocks - 1; i >= 0; i--) this.free.push(i);
  }

  /** Take `count` blocks for a lease, or null when the pool cannot serve it now. */
  allocate(leaseId: string, count: number): number[] | null {
    if (this.held.has(leaseId)) throw new Error(`lease ${leaseId} already holds blocks`);
    if (this.free.length < count) return null;
    const blocks = this.free.splice(this.free.length - count, count);
    this.held.set(leaseId, blocks);
    return blocks;
  }

  blocksOf(leaseId: string): number[] | undefined {
    return this.held.get(leaseId);
  }

  view(block: number): Uint8Array {
    return this.region.bytes.subarray(block * this.blockBytes, (block + 1) * this.blockBytes);
  }

  /** The lease's machine proved its blocks reusable. */
  giveBack(leaseId: string): void {
    const blocks = this.held.get(leaseId);
    if (!blocks) return;
    this.held.delete(leaseId);
    this.free.push(...blocks);
  }

  /** The lease's fence failed: its blocks leave the pool for good (the pool is unhealthy). */
  retire(leaseId: string): void {
    const blocks = this.held.get(leaseId);
    if (!blocks) return;
    this.held.delete(leaseId);
    this.retired += blocks.length;
  }

  stats(): PoolStats {
    let heldBlocks = 0;
    for (const b of this.held.values()) heldBlocks += b.length;
    return { totalBlocks: this.totalBlocks, freeBlocks: this.free.length, heldBlocks, retiredBlocks: this.retired };
  }
}
