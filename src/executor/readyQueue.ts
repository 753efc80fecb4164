/**
 * An insertion-ordered set of actors as a queue, for the executor loop's ready and batch sets: the same
 * order as a `Set` (an actor added while queued keeps its place; removed and added again, it goes to
 * the end) without a hash table. The actor carries its membership (a token per queue), so add, has and
 * delete are field reads; a removed actor's entry stays in the array and is skipped when it comes up.
 * A Set grew and shrank its table as the loop filled and emptied it, every iteration.
 */
export interface Queued {
  /** Membership tokens, one per queue slot: 0 when not in that queue, else the token of its live entry. */
  q0: number;
  q1: number;
}

/** Adds between two renewals of a queue's arrays (a power of two; see `add`). */
const ADDS_PER_RENEWAL = 256;

export class ReadyQueue<T extends Queued> {
  // Slots are reused from one fill to the next (emptying the arrays made V8 grow them again, every time).
  private items: (T | null)[] = [null];
  private tokens: number[] = [0];
  private head = 0;
  private tail = 0;
  private count = 0;
  private next = 1;
  private adds = 0;

  /** `slot` names the token field this queue uses (two queues may hold the same actor at once). */
  constructor(private readonly slot: 0 | 1) {}

  get size(): number {
    return this.count;
  }

  /** The actor's token for this queue (0: not in it). */
  private tokenOf(x: T): number {
    return this.slot === 0 ? x.q0 : x.q1;
  }

  private setToken(x: T, t: number): void {
    if (this.slot === 0) x.q0 = t;
    else x.q1 = t;
  }

  has(x: T): boolean {
    return this.tokenOf(x) !== 0;
  }

  add(x: T): void {
    if (this.has(x)) return;
    const t = this.next++;
    this.setToken(x, t);
    if (this.tail < this.items.length) {
      this.items[this.tail] = x;
      this.tokens[this.tail] = t;
    } else {
      this.items.push(x);
      this.tokens.push(t);
    }
    this.tail++;
    this.count++;
    // Entries of removed actors wait to be skipped; compact when they are most of the array (memory
    // bounded). And every ADDS_PER_RENEWAL adds, into new arrays: arrays kept for good are promoted to V8's
    // old generation, and each young actor stored into one then took the write barrier stub (about 50
    // instructions, some 12 per request in the burst bench).
    const renew = (++this.adds & (ADDS_PER_RENEWAL - 1)) === 0;
    if (renew || (this.tail - this.head > 64 && this.tail - this.head > 4 * this.count)) this.compact();
  }

  delete(x: T): boolean {
    if (!this.has(x)) return false;
    this.setToken(x, 0);
    this.count--;
    if (this.count === 0) this.clear();
    return true;
  }

  /** The first actor in the queue, taken out of it; undefined when empty. */
  shift(): T | undefined {
    while (this.head < this.tail) {
      const x = this.items[this.head]!;
      const t = this.tokens[this.head]!;
      this.head++;
      if (this.tokenOf(x) !== t) continue;
      this.delete(x);
      return x;
    }
    return undefined;
  }

  private clear(): void {
    // The actors are not kept alive by their old slots.
    for (let i = 0; i < this.tail; i++) this.items[i] = null;
    this.head = 0;
    this.tail = 0;
  }

  private compact(): void {
    // Started with an element and emptied, so that V8 types the arrays as objects and numbers (see Deadlines' heap).
    const items: (T | null)[] = [null];
    const tokens: number[] = [0];
    items.length = 0;
    tokens.length = 0;
    for (let i = this.head; i < this.tail; i++) {
      const x = this.items[i]!;
      if (this.tokenOf(x) !== this.tokens[i]) continue;
      items.push(x);
      tokens.push(this.tokens[i]!);
    }
    this.items = items;
    this.tokens = tokens;
    this.head = 0;
    this.tail = items.length;
  }
}
