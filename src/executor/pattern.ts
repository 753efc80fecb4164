/**
 * Every KV block carries a verifiable pattern: an 8-byte word (request id, lease epoch, block index)
 * repeated over the block. Filling and checking use Buffer.fill and Buffer.compare (native memset and
 * memcmp), so verification of every byte costs about as much as one more read of the block.
 */
export function patternWord(requestNumber: number, epoch: number, blockIndex: number): Buffer {
  const w = Buffer.alloc(8);
  w.writeUInt32LE(requestNumber >>> 0, 0);
  w.writeUInt16LE(epoch & 0xffff, 4);
  w.writeUInt16LE(blockIndex & 0xffff, 6);
  return w;
}

/**
 * The word a freed block is filled with. Request number 0 is never issued, so no request's pattern
 * equals it: a block that does not hold it when it is used again was written while free.
 */
export const POISON_WORD: Buffer = patternWord(0, 0xffff, 0xffff);

export function poisonBlock(block: Uint8Array): void {
  Buffer.from(block.buffer, block.byteOffset, block.byteLength).fill(POISON_WORD);
}

/** True when every byte of the block is still poison (nothing landed since it was freed). */
export function isPoisoned(block: Uint8Array): boolean {
  const b = Buffer.from(block.buffer, block.byteOffset, block.byteLength);
  if (b.length < 8 || !b.subarray(0, 8).equals(POISON_WORD)) return false;
  return b.compare(b, 8, b.length, 0, b.length - 8) === 0;
}

export function fillBlock(block: Uint8Array, requestNumber: number, epoch: number, blockIndex: number): void {
  Buffer.from(block.buffer, block.byteOffset, block.byteLength).fill(patternWord(requestNumber, epoch, blockIndex));
}

export class PatternChecker {
  constructor(_blockBytes?: number) {}
  /**
   * True when every byte of the block is the expected pattern: the first word is the expected word, and
   * the block equals itself shifted by one word (so every later word equals the first). One memcmp over
   * the block, no expected copy to build.
   */
  verify(block: Uint8Array, requestNumber: number, epoch: number, blockIndex: number): boolean {
    const b = Buffer.from(block.buffer, block.byteOffset, block.byteLength);
    if (b.length < 8 || b.length % 8 !== 0) return false;
    if (!b.subarray(0, 8).equals(patternWord(requestNumber, epoch, blockIndex))) return false;
    return b.compare(b, 8, b.length, 0, b.length - 8) === 0;
  }
}

/**
 * The byte range of a block that handle `index` of `of` writes: equal 8-byte-aligned slices, the last
 * one taking the rest. Both sides compute it the same way.
 */
export function sliceOf(blockBytes: number, index: number, of: number): { offset: number; length: number } {
  const words = blockBytes / 8;
  const per = Math.floor(words / of);
  const offset = index * per * 8;
  const length = index === of - 1 ? blockBytes - offset : per * 8;
  return { offset, length };
}
