import type { Clock, TimerHandle } from '../core/clock.js';

/**
 * All of a host's machine deadlines on one clock timer. Deadlines are kept in one list per delay, in
 * (due, arming) order: the executor's machines arm a handful of distinct delays, and deadlines armed
 * with the same delay on a clock that does not go back are due in the order they were armed, so arming
 * appends to its delay's list and cancelling unlinks, both O(1) (a min-heap moved O(log n) entries per
 * cancel, and the executor cancels most of the ~20 deadlines a request arms). The earliest deadline is
 * the earliest of the lists' heads. A clock that went back (the wall clock can) is handled by inserting
 * in order, walking back from the tail. The clock is armed only for the earliest deadline; no
 * setTimeout/clearTimeout per deadline. Ties fire in arming order. Cancelled deadlines leave at once:
 * memory is the live deadlines plus at most `MAX_SPARE_LISTS` empty lists. A deadline object can be
 * armed again after it fired or was cancelled: an owner keeps one per timer and arms it again and
 * again, with no allocation per arm.
 */
export interface Deadline {
  due: number;
  seq: number;
  /** Called with the deadline itself (an owner keeps what it needs on it: no closure per deadline); null: not armed. */
  fire: ((d: Deadline) => void) | null;
  /** Its neighbours in its delay's list, and the list; null when it is in none (not armed, fired, cancelled, or armed with an infinite delay). */
  prev: Deadline | null;
  next: Deadline | null;
  list: DueList | null;
}

/** The armed deadlines of one delay, in (due, arming) order. */
interface DueList {
  readonly delay: number;
  head: Deadline | null;
  tail: Deadline | null;
}

/** Node clamps longer timeouts to 1 ms; a far deadline is re-checked at this interval instead. */
const MAX_TIMER_MS = 2 ** 31 - 1;

/** Lists of delays with nothing armed are kept for reuse up to this many lists in all; past it, empty ones go. */
const MAX_SPARE_LISTS = 16;

const before = (a: Deadline, b: Deadline): boolean => a.due < b.due || (a.due === b.due && a.seq < b.seq);

/** A deadline object in the shape the lists expect (not armed). */
export function newDeadline(): Deadline {
  return { due: 0, seq: 0, fire: null, prev: null, next: null, list: null };
}

export class Deadlines {
  // Started with an element and emptied: an empty literal starts as small integers, and the first store of
  // an object into a new host's array deoptimized code optimized for another's.
  private readonly lists: DueList[] = (() => {
    const l: DueList[] = [{ delay: 0, head: null, tail: null }];
    l.length = 0;
    return l;
  })();
  private liveCount = 0;
  private entryCount = 0;
  private seq = 0;
  private timer: TimerHandle | null = null;
  private timerDue = Infinity;
  private closed = false;

  constructor(private readonly clock: Clock) {}

  /** Deadlines armed and not yet fired or cancelled. */
  get live(): number {
    return this.liveCount;
  }

  /** Deadlines in the lists (the live ones with a finite delay: cancelled ones leave at once). */
  get entries(): number {
    return this.entryCount;
  }

  /** Lists kept, one per delay armed (the empty ones up to `MAX_SPARE_LISTS` lists in all). */
  get listCount(): number {
    return this.lists.length;
  }

  /** Fire `fn` after `delayMs` (an infinite delay never fires, but can still be cancelled). */
  arm(delayMs: number, fn: (d: Deadline) => void): Deadline {
    return this.armAs(newDeadline(), delayMs, fn);
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
    this.insert(this.listFor(delayMs), d);
    if (d.due < this.timerDue) this.rearm();
    return d;
  }

  cancel(d: Deadline | undefined): void {
    if (!d || d.fire === null) return;
    d.fire = null;
    if (d.list === null) return;
    this.liveCount--;
    this.unlink(d);
  }

  /** Cancel everything and stop the clock timer. */
  close(): void {
    this.closed = true;
    for (const l of this.lists) {
      for (let d = l.head; d !== null; ) {
        const next = d.next;
        d.fire = null;
        d.prev = d.next = null;
        d.list = null;
        d = next;
      }
    }
    this.lists.length = 0;
    this.liveCount = 0;
    this.entryCount = 0;
    if (this.timer !== null) this.clock.clearTimeout(this.timer);
    this.timer = null;
    this.timerDue = Infinity;
  }

  /** The list of this delay (a scan: a host arms a handful of distinct delays). */
  private listFor(delay: number): DueList {
    const lists = this.lists;
    for (let i = 0; i < lists.length; i++) if (lists[i]!.delay === delay) return lists[i]!;
    // Many distinct delays (computed ones): lists with nothing armed go, so memory follows what is armed.
    if (lists.length >= MAX_SPARE_LISTS) {
      let n = 0;
      for (let i = 0; i < lists.length; i++) if (lists[i]!.head !== null) lists[n++] = lists[i]!;
      lists.length = n;
    }
    const l: DueList = { delay, head: null, tail: null };
    lists.push(l);
    return l;
  }

  /** Into its list in (due, arming) order: at the tail unless the clock went back. */
  private insert(l: DueList, d: Deadline): void {
    let after = l.tail;
    while (after !== null && before(d, after)) after = after.prev;
    d.list = l;
    d.prev = after;
    if (after === null) {
      d.next = l.head;
      l.head = d;
    } else {
      d.next = after.next;
      after.next = d;
    }
    if (d.next === null) l.tail = d;
    else d.next.prev = d;
    this.entryCount++;
  }

  private unlink(d: Deadline): void {
    const l = d.list!;
    const p = d.prev;
    const n = d.next;
    if (p === null) l.head = n;
    else p.next = n;
    if (n === null) l.tail = p;
    else n.prev = p;
    d.prev = d.next = null;
    d.list = null;
    this.entryCount--;
  }

  /** The earliest armed deadline: the earliest of the lists' heads. */
  private earliest(): Deadline | null {
    let e: Deadline | null = null;
    const lists = this.lists;
    for (let i = 0; i < lists.length; i++) {
      const h = lists[i]!.head;
      if (h !== null && (e === null || before(h, e))) e = h;
    }
    return e;
  }

  private rearm(): void {
    if (this.timer !== null) this.clock.clearTimeout(this.timer);
    this.timer = null;
    this.timerDue = Infinity;
    const top = this.earliest();
    if (top === null || this.closed) return;
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
    for (let d = this.earliest(); d !== null && d.due <= now; d = this.earliest()) {
      this.unlink(d);
      const fn = d.fire!;
      d.fire = null;
      this.liveCount--;
      // `fn` may arm `d` again (it is out of its list now).
      fn(d);
    }
    if (this.timer === null) this.rearm();
  }
}
