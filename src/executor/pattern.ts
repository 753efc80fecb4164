/**
 * Every KV block carries a verifiable pattern: an 8-byte word (request id, lease epoch, block index)
 * repeated over the block. Filling and checking use Buffer.fill and Buffer.compare (native memset and
 * memcmp), so verification of every byte costs about as much as one more copy.
 */
export function patternWord(requestNumber: number, epoch: number, blockIndex: number): Buffer {
  const w = Buffer.alloc(8);
  w.writeUInt32LE(requestNumber >>> 0, 0);
  w.writeUInt16LE(epoch & 0xffff, 4);
  w.writeUInt16LE(blockIndex & 0xffff, 6);
  return w;
}

export function fillBlock(block: Uint8Array, requestNumber: number, epoch: number, blockIndex: number): void {
  Buffer.from(block.buffer, block.byteOffset, block.byteLength).fill(patternWord(requestNumber, epoch, blockIndex));
}

export class PatternChecker {
  private scratch: Buffer;
  constructor(blockBytes: number) {
    this.scratch = Buffer.alloc(blockBytes);
  }
  /** True when every byte of the block is the expected pattern. */
  verify(block: Uint8Array, requestNumber: number, epoch: number, blockIndex: number): boolean {
    if (this.scratch.length !== block.byteLength) this.scratch = Buffer.alloc(block.byteLength);
    this.scratch.fill(patternWord(requestNumber, epoch, blockIndex));
    return Buffer.compare(Buffer.from(block.buffer, block.byteOffset, block.byteLength), this.scratch) === 0;
  }
}
