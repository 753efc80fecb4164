import type { Agent, Region } from '../native/index.js';
import { fillBlock, isPoisoned, PatternChecker, patternWord, poisonBlock, POISON_WORD } from './pattern.js';

/**
 * A KV block pool in registered memory. Blocks are handed out in leases (one per request); the lease's
 * machine (blockLease) decides when they may come back: only with proof of quiescence, else they stay
 * quarantined, and blocks whose fence failed are retired for good.
 *
 * Integrity at run time (a late write cannot go unseen): every allocation gets an epoch chosen here,
 * by the blocks' owner, never taken from a peer's message; a freed block is poisoned, and the poison is
 * checked before the block's next owner can hide it — a write that landed while it was free breaks it.
 * When is set per pool (`PoolOptions.checkPoison`).
 */
export interface PoolOptions {
  /**
   * When a block's poison is checked after it is allocated again:
   * - 'allocate' (default): at once. A pool whose blocks a peer writes (the receiver's) needs this:
   *   the peer's write would hide an earlier one.
   * - 'firstWrite': right before this process first writes the block (fillRange), or when the lease
   *   ends if it never wrote it. For a pool only this process writes (the sender's): the check then
   *   also covers the time the block was held unwritten, and it reads the block just before the fill
   *   rewrites it, so the fill finds it in cache. Checked at allocation, a request's source blocks
   *   were cold again by the time its transfer was posted (it waits for the receiver's info).
   */
  checkPoison?: 'allocate' | 'firstWrite';
}

export interface PoolStats {
  totalBlocks: number;
  freeBlocks: number;
  /** Blocks held by a live lease (allocated, exposed, quarantined or fencing). */
  heldBlocks: number;
  retiredBlocks: number;
  /** Blocks found written while free (their poison found broken): corruption. */
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

  /** With 'firstWrite': 1 for a held block whose poison is not checked yet. */
  private readonly unchecked: Uint8Array | null;

  constructor(
    agent: Agent,
    readonly blockBytes: number,
    readonly totalBlocks: number,
    options: PoolOptions = {},
  ) {
    this.region = agent.registerMemory(blockBytes * totalBlocks);
    this.unchecked = options.checkPoison === 'firstWrite' ? new Uint8Array(totalBlocks) : null;
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
    if (this.unchecked === null) for (const b of blocks) this.check(b);
    else for (const b of blocks) this.unchecked[b] = 1;
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
    this.checkPending(block);
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

  /** A block found written while free counts as broken poison. */
  private check(block: number): void {
    if (!this.poisoned(block)) this.poisonBroken++;
  }

  /** With 'firstWrite': the check a held block still owes, made once. */
  private checkPending(block: number): void {
    if (this.unchecked === null || this.unchecked[block] === 0) return;
    this.unchecked[block] = 0;
    this.check(block);
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
      // Never written by this process: its poison is checked now, before poisoning again hides a write.
      this.checkPending(b);
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
    for (const b of lease.blocks) {
      this.retiredSet.add(b);
      if (this.unchecked !== null) this.unchecked[b] = 0;
    }
  }

  stats(): PoolStats {
    let heldBlocks = 0;
    for (const l of this.held.values()) heldBlocks += l.blocks.length;
    return { totalBlocks: this.totalBlocks, freeBlocks: this.free.length, heldBlocks, retiredBlocks: this.retired, poisonBroken: this.poisonBroken };
  }
}
