import type { Clock } from '../../src/core/clock.js';

/** Virtual time for the host tests: timers fire only when the test advances it, in due order (ties in arming order). */
export class TestClock implements Clock {
  private t = 0;
  private seq = 0;
  private readonly timers = new Map<number, { due: number; seq: number; fn: () => void }>();
  setCalls = 0;
  now(): number {
    return this.t;
  }
  setTimeout(fn: () => void, ms: number): number {
    this.setCalls++;
    const id = ++this.seq;
    this.timers.set(id, { due: this.t + ms, seq: id, fn });
    return id;
  }
  clearTimeout(h: unknown): void {
    this.timers.delete(h as number);
  }
  advance(ms: number): void {
    const end = this.t + ms;
    for (;;) {
      const next = [...this.timers.entries()].filter(([, x]) => x.due <= end).sort(([, a], [, b]) => a.due - b.due || a.seq - b.seq)[0];
      if (!next) break;
      this.timers.delete(next[0]);
      this.t = Math.max(this.t, next[1].due);
      next[1].fn();
    }
    this.t = end;
  }
}
