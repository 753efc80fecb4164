import type { RequestReport } from '../executor/config.js';
import type { BlockPool } from '../executor/pool.js';
import { isPoisoned, patternWord, POISON_WORD, PatternChecker } from '../executor/pattern.js';

/**
 * Ground truth on the generation side's memory, read after every simulation step. These are
 * consequence checks on bytes, independent of what any machine or server believes:
 *
 * - a free block holds nothing but poison (no write landed after it was freed);
 * - a block owned by a lease holds only poison or its owner's bytes (request number, the pool's epoch
 *   for this allocation, the block's index) — a word of any other request or epoch is a write that
 *   landed in memory that belonged to someone else.
 */
export interface ByteViolation {
  block: number;
  message: string;
}

const checker = new PatternChecker();

/** Decode an 8-byte pattern word (see pattern.ts) for a readable message. */
function describeWord(w: Buffer): string {
  if (w.equals(POISON_WORD)) return 'poison';
  return `request #${w.readUInt32LE(0)} epoch ${w.readUInt16LE(4)} block ${w.readUInt16LE(6)}`;
}

export function checkPoolBytes(pool: BlockPool, numberOf: (leaseId: string) => number | undefined): ByteViolation[] {
  const out: ByteViolation[] = [];
  const owner = new Map<number, { lease: string; index: number; epoch: number }>();
  for (const [lease, l] of pool.leases()) l.blocks.forEach((b, index) => owner.set(b, { lease, index, epoch: l.epoch }));
  for (let b = 0; b < pool.totalBlocks; b++) {
    const view = pool.view(b);
    if (isPoisoned(view)) continue;
    const o = owner.get(b);
    if (!o) {
      if (pool.isRetired(b)) continue;
      out.push({ block: b, message: `free block ${b} was written while free: ${firstForeign(view, null)}` });
      continue;
    }
    const number = numberOf(o.lease);
    if (number === undefined) continue;
    if (checker.verify(view, number, o.epoch, o.index)) continue;
    // Mixed poison and the owner's words is a write still landing chunk by chunk: fine.
    const mine = patternWord(number, o.epoch, o.index);
    const bad = firstForeign(view, mine);
    if (bad) out.push({ block: b, message: `block ${b} of ${o.lease} (#${number} epoch ${o.epoch}) holds foreign bytes: ${bad}` });
  }
  return out;
}

/** The first 8-byte word that is neither poison nor `mine`, described; null when there is none. */
function firstForeign(view: Uint8Array, mine: Buffer | null): string | null {
  const b = Buffer.from(view.buffer, view.byteOffset, view.byteLength);
  for (let off = 0; off + 8 <= b.length; off += 8) {
    const w = b.subarray(off, off + 8);
    if (w.equals(POISON_WORD) || (mine !== null && w.equals(mine))) continue;
    return `${describeWord(w)} at byte ${off}`;
  }
  return null;
}

/**
 * Generation requests reported completed although the server saw their served blocks fail
 * verification: the outcome and the observation disagree (the lifecycle must have failed them with
 * reason 'corrupted'). Only the first report of each request counts (a second is `settles-once`).
 */
export function completedWithCorruptedBlocks(reports: ReadonlyMap<string, ReadonlyArray<Pick<RequestReport, 'outcome' | 'corrupted'>>>): string[] {
  const out: string[] = [];
  for (const [id, list] of reports) if (list[0]?.outcome === 'completed' && list[0].corrupted) out.push(`${id} completed with corrupted blocks`);
  return out;
}
