import type { Clock, TimerHandle } from '../core/clock.js';
import { MinHeap } from '../core/heap.js';

/**
 * All of a host's machine deadlines on one clock timer: a min-heap of due times, the clock armed only
 * for the earliest. Arming or cancelling a deadline is a heap push or a flag (no setTimeout/clearTimeout
 * per deadline); cancelled entries are dropped when they surface, and the heap is compacted when most
 * of it is cancelled, so memory stays proportional to the live deadlines. Ties fire in arming order.
 */
export interface Deadline {
  due: number;
  seq: number;
  /** Called with the deadline itself (an owner keeps what it needs on it: no closure per deadline). */
  fire: ((d: Deadline) => void) | null;
}

/** Node clamps longer timeouts to 1 ms; a far deadline is re-checked at this interval instead. */
const MAX_TIMER_MS = 2 ** 31 - 1;

export class Deadlines {
  private readonly heap = new MinHeap<Deadline>((a, b) => a.due < b.due || (a.due === b.due && a.seq < b.seq));
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

  /** Entries in the heap, cancelled ones not yet dropped included (memory stays proportional to `live`). */
  get entries(): number {
    return this.heap.size;
  }

  /** Fire `fn` after `delayMs` (an infinite delay never fires, but can still be cancelled). */
  arm(delayMs: number, fn: (d: Deadline) => void): Deadline {
    return this.armAs({ due: 0, seq: 0, fire: fn }, delayMs);
  }

  /** Arm `d` (its `fire` set by the caller) after `delayMs`: a host arms its own timer records. */
  armAs<D extends Deadline>(d: D, delayMs: number): D {
    d.due = this.clock.now() + delayMs;
    d.seq = this.seq++;
    if (!Number.isFinite(d.due) || this.closed) return d;
    this.heap.push(d);
    this.liveCount++;
    if (d.due < this.timerDue) this.rearm();
    return d;
  }

  cancel(d: Deadline | undefined): void {
    if (!d || d.fire === null) return;
    d.fire = null;
    if (!Number.isFinite(d.due)) return;
    this.liveCount--;
    if (this.heap.size > 64 && this.liveCount < this.heap.size / 4) this.heap.filter((x) => x.fire !== null);
  }

  /** Cancel everything and stop the clock timer. */
  close(): void {
    this.closed = true;
    for (const d of this.heap.items) d.fire = null;
    this.heap.filter(() => false);
    this.liveCount = 0;
    if (this.timer !== null) this.clock.clearTimeout(this.timer);
    this.timer = null;
    this.timerDue = Infinity;
  }

  private rearm(): void {
    if (this.timer !== null) this.clock.clearTimeout(this.timer);
    this.timer = null;
    this.timerDue = Infinity;
    while (this.heap.size > 0 && this.heap.peek()!.fire === null) this.heap.pop();
    const top = this.heap.peek();
    if (!top || this.closed) return;
    this.timerDue = top.due;
    const wait = Math.min(MAX_TIMER_MS, Math.max(0, Math.ceil(top.due - this.clock.now())));
    this.timer = this.clock.setTimeout(() => this.run(), wait);
  }

  private run(): void {
    this.timer = null;
    this.timerDue = Infinity;
    const now = this.clock.now();
    while (this.heap.size > 0 && this.heap.peek()!.due <= now) {
      const d = this.heap.pop()!;
      const fn = d.fire;
      if (fn === null) continue;
      d.fire = null;
      this.liveCount--;
      fn(d);
    }
    if (this.timer === null) this.rearm();
  }
}
