import type { Clock, TimerHandle } from '../core/clock.js';

/**
 * All of a host's machine deadlines on one clock timer: a min-heap of due times, the clock armed only
 * for the earliest. Arming or cancelling a deadline is a heap push or a flag (no setTimeout/clearTimeout
 * per deadline); cancelled entries are dropped when they surface, and the heap is compacted when most
 * of it is cancelled, so memory stays proportional to the live deadlines. Ties fire in arming order.
 */
export interface Deadline {
  readonly due: number;
  readonly seq: number;
  fire: (() => void) | null;
}

/** Node clamps longer timeouts to 1 ms; a far deadline is re-checked at this interval instead. */
const MAX_TIMER_MS = 2 ** 31 - 1;

export class Deadlines {
  private heap: Deadline[] = [];
  private liveCount = 0;
  private seq = 0;
  private timer: TimerHandle | null = null;
  private timerDue = Infinity;
  private closed = false;

  constructor(private readonly clock: Clock) {}

  /** Deadlines armed and not yet fired or cancelled. */
  get live(): number {
    return this.liveCount;
  }

  /** Fire `fn` after `delayMs` (an infinite delay never fires, but can still be cancelled). */
  arm(delayMs: number, fn: () => void): Deadline {
    const d: Deadline = { due: this.clock.now() + delayMs, seq: this.seq++, fire: fn };
    if (!Number.isFinite(d.due) || this.closed) return d;
    this.push(d);
    this.liveCount++;
    if (d.due < this.timerDue) this.rearm();
    return d;
  }

  cancel(d: Deadline | undefined): void {
    if (!d || d.fire === null) return;
    d.fire = null;
    if (!Number.isFinite(d.due)) return;
    this.liveCount--;
    if (this.heap.length > 64 && this.liveCount < this.heap.length / 4) this.compact();
  }

  /** Cancel everything and stop the clock timer. */
  close(): void {
    this.closed = true;
    for (const d of this.heap) d.fire = null;
    this.heap = [];
    this.liveCount = 0;
    if (this.timer !== null) this.clock.clearTimeout(this.timer);
    this.timer = null;
    this.timerDue = Infinity;
  }

  private rearm(): void {
    if (this.timer !== null) this.clock.clearTimeout(this.timer);
    this.timer = null;
    this.timerDue = Infinity;
    while (this.heap.length > 0 && this.heap[0]!.fire === null) this.pop();
    const top = this.heap[0];
    if (!top || this.closed) return;
    this.timerDue = top.due;
    const wait = Math.min(MAX_TIMER_MS, Math.max(0, Math.ceil(top.due - this.clock.now())));
    this.timer = this.clock.setTimeout(() => this.run(), wait);
  }

  private run(): void {
    this.timer = null;
    this.timerDue = Infinity;
    const now = this.clock.now();
    while (this.heap.length > 0 && this.heap[0]!.due <= now) {
      const d = this.pop();
      const fn = d.fire;
      if (fn === null) continue;
      d.fire = null;
      this.liveCount--;
      fn();
    }
    if (this.timer === null) this.rearm();
  }

  private compact(): void {
    this.heap = this.heap.filter((d) => d.fire !== null);
    for (let i = (this.heap.length >> 1) - 1; i >= 0; i--) this.down(i);
  }

  private less(a: Deadline, b: Deadline): boolean {
    return a.due < b.due || (a.due === b.due && a.seq < b.seq);
  }

  private push(d: Deadline): void {
    const h = this.heap;
    h.push(d);
    let i = h.length - 1;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (!this.less(h[i]!, h[p]!)) break;
      [h[i], h[p]] = [h[p]!, h[i]!];
      i = p;
    }
  }

  private pop(): Deadline {
    const h = this.heap;
    const top = h[0]!;
    const last = h.pop()!;
    if (h.length > 0) {
      h[0] = last;
      this.down(0);
    }
    return top;
  }

  private down(i: number): void {
    const h = this.heap;
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
