import type { ControlLink, ControlMessage } from '../executor/control.js';
import type { Rng } from './rng.js';

/** Per-link faults, decided once per seed (swarm testing) and switched off to check liveness. */
export interface LinkFaults {
  /** Probability a message is lost. */
  drop: number;
  /** Probability a message is delivered twice. */
  duplicate: number;
  /** Deliver any message in flight, not only the oldest. */
  reorder: boolean;
  /** Largest extra delay in virtual ms. */
  maxDelayMs: number;
}

export const NO_FAULTS: LinkFaults = { drop: 0, duplicate: 0, reorder: false, maxDelayMs: 0 };

interface InFlight {
  msg: ControlMessage;
  at: number;
}

/**
 * One direction of the control channel between the two servers, as data (TigerBeetle's packet
 * simulator, madsim's network): messages wait in flight until the scheduler delivers one; faults drop,
 * duplicate, delay and reorder them; a partition drops everything sent while it lasts.
 */
export class SimLink implements ControlLink {
  /** In send order. */
  private readonly flight: InFlight[] = [];
  closed = false;
  partitioned = false;
  faults: LinkFaults;
  readonly stats = { sent: 0, dropped: 0, duplicated: 0, delivered: 0 };

  constructor(
    readonly name: string,
    private readonly rng: Rng,
    private readonly now: () => number,
    faults: LinkFaults,
    private readonly deliverTo: (m: ControlMessage) => void,
  ) {
    this.faults = faults;
  }

  send(m: ControlMessage): void {
    if (this.closed) return;
    this.stats.sent++;
    if (this.partitioned || this.rng.chance(this.faults.drop)) {
      this.stats.dropped++;
      return;
    }
    const copies = this.rng.chance(this.faults.duplicate) ? 2 : 1;
    if (copies === 2) this.stats.duplicated++;
    for (let i = 0; i < copies; i++) {
      // A copy per delivery: the receiver must not share objects with the sender.
      this.flight.push({ msg: structuredClone(m), at: this.now() + (this.faults.maxDelayMs > 0 ? this.rng.int(0, this.faults.maxDelayMs) : 0) });
    }
  }

  close(): void {
    this.closed = true;
    this.flight.length = 0;
  }

  /** Messages that may be delivered now. */
  deliverable(): number {
    if (this.closed || this.flight.length === 0) return 0;
    const t = this.now();
    // In order: only the oldest message may be delivered, once it is due.
    if (!this.faults.reorder) return this.flight[0]!.at <= t ? 1 : 0;
    let n = 0;
    for (const f of this.flight) if (f.at <= t) n++;
    return n;
  }

  inFlight(): number {
    return this.flight.length;
  }

  /** Earliest time a message in flight becomes deliverable. */
  nextAt(): number | undefined {
    let best: number | undefined;
    for (const f of this.flight) if (best === undefined || f.at < best) best = f.at;
    return best;
  }

  /** The messages in flight, oldest first (conformance compares them with the model's channel). */
  messages(): ControlMessage[] {
    return this.flight.map((f) => f.msg);
  }

  /** Deliver the i-th message in flight now (0: the oldest), optionally keeping a copy in flight. */
  deliverAt(i: number, keepDuplicate = false): ControlMessage | null {
    const f = this.flight[i];
    if (!f || this.closed) return null;
    if (!keepDuplicate) this.flight.splice(i, 1);
    this.stats.delivered++;
    this.deliverTo(structuredClone(f.msg));
    return f.msg;
  }

  /** Lose the i-th message in flight. */
  dropAt(i: number): ControlMessage | null {
    const [f] = this.flight.splice(i, 1);
    if (f) this.stats.dropped++;
    return f?.msg ?? null;
  }

  /** Deliver one message: the oldest due one, or (reordering) any due one. Returns its type. */
  deliverOne(): string | null {
    if (this.deliverable() === 0) return null;
    const t = this.now();
    let pickIndex = 0;
    if (this.faults.reorder) {
      const due: number[] = [];
      for (let i = 0; i < this.flight.length; i++) if (this.flight[i]!.at <= t) due.push(i);
      pickIndex = this.rng.pick(due);
    }
    const [f] = this.flight.splice(pickIndex, 1);
    this.stats.delivered++;
    this.deliverTo(f!.msg);
    return `${f!.msg.t} ${f!.msg.id}`;
  }
}
