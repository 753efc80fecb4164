/** A binary min-heap ordered by `less` (the timer heaps of the hosts and of the simulator's clock). */
export class MinHeap<T> {
  items: T[];

  constructor(private readonly less: (a: T, b: T) => boolean) {
    // Started as an array of objects (a hole-free one-element literal, then emptied): an empty literal
    // starts as small integers, and the first push into a new heap deoptimized the callers' optimized code.
    const items: unknown[] = [null];
    items.length = 0;
    this.items = items as T[];
  }

  get size(): number {
    return this.items.length;
  }

  peek(): T | undefined {
    return this.items[0];
  }

  push(x: T): void {
    const h = this.items;
    h.push(x);
    let i = h.length - 1;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (!this.less(h[i]!, h[p]!)) break;
      [h[i], h[p]] = [h[p]!, h[i]!];
      i = p;
    }
  }

  pop(): T | undefined {
    const h = this.items;
    const top = h[0];
    const last = h.pop();
    if (h.length > 0 && last !== undefined) {
      h[0] = last;
      this.down(0);
    }
    return top;
  }

  /** Keep only what `keep` accepts, and restore the heap order. */
  filter(keep: (x: T) => boolean): void {
    this.items = this.items.filter(keep);
    for (let i = (this.items.length >> 1) - 1; i >= 0; i--) this.down(i);
  }

  private down(i: number): void {
    const h = this.items;
    for (;;) {
      const l = 2 * i + 1;
      const r = l + 1;
      let m = i;
      if (l < h.length && this.less(h[l]!, h[m]!)) m = l;
      if (r < h.length && this.less(h[r]!, h[m]!)) m = r;
      if (m === i) return;
      [h[i], h[m]] = [h[m]!, h[i]!];
      i = m;
    }
  }
}
