import type { Agent, Region } from '../native/index.js';
import { fillBlock, isPoisoned, PatternChecker, patternWord, poisonBlock, POISON_WORD } from './pattern.js';

/**
 * A KV block pool in registered memory. Blocks are handed out in leases (one per request); the lease's
 * machine (blockLease) decides when they may come back: only with proof of quiescence, else they stay
 * quarantined, and blocks whose fence failed are retired for good.
 *
 * Integrity at run time (a late write cannot go unseen): every allocation gets an epoch chosen here,
 * by the blocks' owner, never taken from a peer's message; a freed block is poisoned, and the poison is
 * checked when the block is allocated again — a write that landed while it was free breaks it.
 */
export interface PoolStats {
  totalBlocks: number;
  freeBlocks: number;
  /** Blocks held by a live lease (allocated, exposed, quarantined or fencing). */
  heldBlocks: number;
  retiredBlocks: number;
  /** Blocks found written while free (their poison broken when allocated again): corruption. */
  poisonBroken: number;
}

export interface Lease {
  blocks: number[];
  /** The request number whose pattern the blocks must carry (0 when the owner did not say). */
  number: number;
  /** Chosen by the pool per allocation; the pattern the blocks must carry names it. */
  epoch: number;
}

export class BlockPool {
  readonly region: Region;
  private readonly free: number[] = [];
  private readonly held = new Map<string, Lease>();
  private retired = 0;
  private readonly retiredSet = new Set<number>();
  private readonly freeSet = new Set<number>();
  private allocations = 0;
  poisonBroken = 0;

  constructor(
    agent: Agent,
    readonly blockBytes: number,
    readonly totalBlocks: number,
  ) {
    this.region = agent.registerMemory(blockBytes * totalBlocks);
    for (let i = totalBlocks - 1; i >= 0; i--) {
      this.poison(i);
      this.free.push(i);
      this.freeSet.add(i);
    }
  }

  /** Take `count` blocks for a lease, or null when the pool cannot serve it now. */
  allocate(leaseId: string, count: number, number = 0): number[] | null {
    if (this.held.has(leaseId)) throw new Error(`lease ${leaseId} already holds blocks`);
    if (this.free.length < count) return null;
    const blocks = this.free.splice(this.free.length - count, count);
    for (const b of blocks) this.freeSet.delete(b);
    for (const b of blocks) if (!this.poisoned(b)) this.poisonBroken++;
    // Epochs are 16 bits in the pattern; 0 is skipped so a zeroed block never matches.
    this.allocations = (this.allocations % 0xfffe) + 1;
    this.held.set(leaseId, { blocks, number, epoch: this.allocations });
    return blocks;
  }

  blocksOf(leaseId: string): number[] | undefined {
    return this.held.get(leaseId)?.blocks;
  }

  /** The epoch the pool chose for this lease's current allocation. */
  epochOf(leaseId: string): number | undefined {
    return this.held.get(leaseId)?.epoch;
  }

  lease(leaseId: string): Lease | undefined {
    return this.held.get(leaseId);
  }

  /** Every live lease (for the simulator's checkers). */
  leases(): IterableIterator<[string, Lease]> {
    return this.held.entries();
  }

  isFree(block: number): boolean {
    return this.freeSet.has(block);
  }

  isRetired(block: number): boolean {
    return this.retiredSet.has(block);
  }

  // A pool in GPU memory (cuda backend, region.kind 'device') has no host view: its blocks are
  // filled and checked by the region's GPU pattern kernels; host pools keep using views.

  /**
   * Writes the pattern (request number, epoch, block index) where the block lives, over bytes
   * [offset, offset + length) of it (multiples of 8: a handle's slice, or the whole block).
   */
  fillRange(block: number, offset: number, length: number, requestNumber: number, epoch: number, blockIndex: number): void {
    if (this.region.kind === 'device') this.region.fillPattern(block * this.blockBytes + offset, length, patternWord(requestNumber, epoch, blockIndex));
    else fillBlock(this.view(block).subarray(offset, offset + length), requestNumber, epoch, blockIndex);
  }

  /** True when every byte of the block is that pattern. */
  holds(block: number, requestNumber: number, epoch: number, blockIndex: number, checker: PatternChecker): boolean {
    if (this.region.kind === 'device') {
      return this.region.verifyPattern(block * this.blockBytes, this.blockBytes, patternWord(requestNumber, epoch, blockIndex)) === 0;
    }
    return checker.verify(this.view(block), requestNumber, epoch, blockIndex);
  }

  private poison(block: number): void {
    if (this.region.kind === 'device') this.region.fillPattern(block * this.blockBytes, this.blockBytes, POISON_WORD);
    else poisonBlock(this.view(block));
  }

  private poisoned(block: number): boolean {
    if (this.region.kind === 'device') return this.region.verifyPattern(block * this.blockBytes, this.blockBytes, POISON_WORD) === 0;
    return isPoisoned(this.view(block));
  }

  view(block: number): Uint8Array {
    return this.region.bytes.subarray(block * this.blockBytes, (block + 1) * this.blockBytes);
  }

  /** The lease's machine proved its blocks reusable: poison them, then put them back. */
  giveBack(leaseId: string): void {
    const lease = this.held.get(leaseId);
    if (!lease) return;
    this.held.delete(leaseId);
    for (const b of lease.blocks) {
      this.poison(b);
      this.freeSet.add(b);
    }
    this.free.push(...lease.blocks);
  }

  /** The lease's fence failed: its blocks leave the pool for good (the pool is unhealthy). */
  retire(leaseId: string): void {
    const lease = this.held.get(leaseId);
    if (!lease) return;
    this.held.delete(leaseId);
    this.retired += lease.blocks.length;
    for (const b of lease.blocks) this.retiredSet.add(b);
  }

  stats(): PoolStats {
    let heldBlocks = 0;
    for (const l of this.held.values()) heldBlocks += l.blocks.length;
    return { totalBlocks: this.totalBlocks, freeBlocks: this.free.length, heldBlocks, retiredBlocks: this.retired, poisonBroken: this.poisonBroken };
  }
}
