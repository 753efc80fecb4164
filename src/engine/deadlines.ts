import type { Clock, TimerHandle } from '../core/clock.js';

/**
 * All of a host's machine deadlines on one clock timer: a min-heap of due times, the clock armed only
 * for the earliest. Each deadline knows its place in the heap, so cancelling one takes it out at once
 * (O(log n)): no cancelled entries wait in the heap, memory is exactly the live deadlines, and a
 * deadline object can be armed again after it fired or was cancelled — an owner keeps one per timer
 * and arms it again and again, with no allocation per arm (the executor arms and cancels ~20 deadlines
 * per request). No setTimeout/clearTimeout per deadline. Ties fire in arming order.
 */
export interface Deadline {
  due: number;
  seq: number;
  /** Called with the deadline itself (an owner keeps what it needs on it: no closure per deadline); null: not armed. */
  fire: ((d: Deadline) => void) | null;
  /** Its index in the heap; -1 when it is not in it (not armed, fired, cancelled, or armed with an infinite delay). */
  pos: number;
}

/** Node clamps longer timeouts to 1 ms; a far deadline is re-checked at this interval instead. */
const MAX_TIMER_MS = 2 ** 31 - 1;

const before = (a: Deadline, b: Deadline): boolean => a.due < b.due || (a.due === b.due && a.seq < b.seq);

export class Deadlines {
  // Started as an array of objects (a one-element literal, then emptied): an empty literal starts as small
  // integers, and the first store of an object into a new host's heap deoptimized code optimized for another's.
  private readonly heap: Deadline[] = (() => {
    const h: Deadline[] = [{ due: 0, seq: 0, fire: null, pos: -1 }];
    h.length = 0;
    return h;
  })();
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

  /** Entries in the heap (the live deadlines with a finite delay: cancelled ones leave it at once). */
  get entries(): number {
    return this.heap.length;
  }

  /** Fire `fn` after `delayMs` (an infinite delay never fires, but can still be cancelled). */
  arm(delayMs: number, fn: (d: Deadline) => void): Deadline {
    const d: Deadline = { due: 0, seq: 0, fire: null, pos: -1 };
    return this.armAs(d, delayMs, fn);
  }

  /**
   * Arm `d` to call `fire` after `delayMs`; a deadline still armed is first cancelled (re-arming). `now`
   * is the clock's time when the caller already read it (a host arming several deadlines in one step).
   */
  armAs<D extends Deadline>(d: D, delayMs: number, fire: (d: Deadline) => void, now = this.clock.now()): D {
    if (d.fire !== null) this.cancel(d);
    d.due = now + delayMs;
    d.seq = this.seq++;
    if (!Number.isFinite(d.due) || this.closed) return d;
    d.fire = fire;
    this.liveCount++;
    d.pos = this.heap.length;
    this.heap.push(d);
    this.up(d.pos);
    if (d.due < this.timerDue) this.rearm();
    return d;
  }

  cancel(d: Deadline | undefined): void {
    if (!d || d.fire === null) return;
    d.fire = null;
    if (d.pos < 0) return;
    this.liveCount--;
    this.removeAt(d.pos);
  }

  /** Cancel everything and stop the clock timer. */
  close(): void {
    this.closed = true;
    for (const d of this.heap) (d.fire = null), (d.pos = -1);
    this.heap.length = 0;
    this.liveCount = 0;
    if (this.timer !== null) this.clock.clearTimeout(this.timer);
    this.timer = null;
    this.timerDue = Infinity;
  }

  private rearm(): void {
    if (this.timer !== null) this.clock.clearTimeout(this.timer);
    this.timer = null;
    this.timerDue = Infinity;
    const top = this.heap[0];
    if (top === undefined || this.closed) return;
    this.timerDue = top.due;
    const wait = Math.min(MAX_TIMER_MS, Math.max(0, Math.ceil(top.due - this.clock.now())));
    this.timer = this.clock.setTimeout(this.runDue, wait);
  }

  /** Made once (an arrow inside rearm() would cost a context allocation on each of its calls). */
  private readonly runDue = (): void => this.run();

  private run(): void {
    this.timer = null;
    this.timerDue = Infinity;
    const now = this.clock.now();
    while (this.heap.length > 0 && this.heap[0]!.due <= now) {
      const d = this.heap[0]!;
      this.removeAt(0);
      const fn = d.fire!;
      d.fire = null;
      this.liveCount--;
      // `fn` may arm `d` again (it is out of the heap now).
      fn(d);
    }
    if (this.timer === null) this.rearm();
  }

  /** Take the entry at `i` out of the heap and restore the order. */
  private removeAt(i: number): void {
    const h = this.heap;
    const d = h[i]!;
    d.pos = -1;
    const last = h.pop()!;
    if (last === d) return;
    h[i] = last;
    last.pos = i;
    if (i > 0 && before(last, h[(i - 1) >> 1]!)) this.up(i);
    else this.down(i);
  }

  private up(i: number): void {
    const h = this.heap;
    const x = h[i]!;
    while (i > 0) {
      const p = (i - 1) >> 1;
      const y = h[p]!;
      if (!before(x, y)) break;
      h[i] = y;
      y.pos = i;
      i = p;
    }
    h[i] = x;
    x.pos = i;
  }

  private down(i: number): void {
    const h = this.heap;
    const n = h.length;
    const x = h[i]!;
    for (;;) {
      const l = 2 * i + 1;
      if (l >= n) break;
      const r = l + 1;
      const c = r < n && before(h[r]!, h[l]!) ? r : l;
      const y = h[c]!;
      if (!before(y, x)) break;
      h[i] = y;
      y.pos = i;
      i = c;
    }
    h[i] = x;
    x.pos = i;
  }
}
