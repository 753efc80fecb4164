import type { Clock, TimerHandle } from '../core/clock.js';
import { MinHeap } from '../core/heap.js';

interface Timer {
  at: number;
  id: number;
  fn: () => void;
}

/**
 * Virtual time: `now()` moves only when the scheduler advances it, and due timers fire in (time, arm
 * order). A binary heap with lazy deletion keeps arming and cancelling cheap with thousands of
 * deadlines armed.
 */
export class SimClock implements Clock {
  private t = 0;
  private seq = 0;
  private readonly heap = new MinHeap<Timer>((a, b) => a.at < b.at || (a.at === b.at && a.id < b.id));
  private readonly live = new Set<number>();

  now(): number {
    return this.t;
  }

  setTimeout(fn: () => void, ms: number): TimerHandle {
    const timer: Timer = { at: this.t + Math.max(0, Number.isFinite(ms) ? ms : Number.MAX_SAFE_INTEGER), id: ++this.seq, fn };
    this.live.add(timer.id);
    this.heap.push(timer);
    return timer.id;
  }

  clearTimeout(handle: TimerHandle): void {
    this.live.delete(handle as number);
  }

  /** Time of the earliest armed timer, or undefined when none is armed. */
  nextAt(): number | undefined {
    this.dropDead();
    return this.heap.peek()?.at;
  }

  armed(): number {
    return this.live.size;
  }

  /** Move time to the earliest timer and fire it (and only it). False when no timer is armed. */
  fireNext(): boolean {
    this.dropDead();
    const top = this.heap.peek();
    if (!top || top.at >= Number.MAX_SAFE_INTEGER) return false;
    this.heap.pop();
    this.live.delete(top.id);
    if (top.at > this.t) this.t = top.at;
    top.fn();
    return true;
  }

  /** Let `ms` pass, firing every timer that falls due on the way, in order. Returns how many fired. */
  advance(ms: number): number {
    const until = this.t + ms;
    let fired = 0;
    for (let next = this.nextAt(); next !== undefined && next <= until; next = this.nextAt()) {
      this.fireNext();
      fired++;
    }
    this.t = Math.max(this.t, until);
    return fired;
  }

  private dropDead(): void {
    while (this.heap.size > 0 && !this.live.has(this.heap.peek()!.id)) this.heap.pop();
  }
}
