/**
 * Vocabulary shared by the lifecycle machines. Nothing here performs I/O: the machines only name
 * their effects (actions) and their waits (delays); the engine supplies both with `provide()`.
 */
import { Map as HashMap } from 'immutable';

/** Deadlines, in milliseconds, under TensorRT-LLM's names where those exist. */
export const DEFAULT_DELAYS = {
  /** `cache_transceiver_config.kv_transfer_timeout_ms`: a request may spend this long in transmission. */
  kvTransferTimeout: 60_000,
  /** `kv_transfer_sender_future_timeout_ms`: how long the status checker waits on one sender future. */
  senderFutureTimeout: 1_000,
  /** A cancel accepted while queued is resolved by this deadline even if the peer never asks (TRT-LLM's TODO). */
  cancelResolveTimeout: 5_000,
  /** How long a cancelled transfer handle is drained (polled to a terminal status) before it is declared ambiguous. */
  drainTimeout: 5_000,
  /** How long a request waits for its transfer side to become quiescent before it fails closed. */
  quiescenceTimeout: 10_000,
  /** Longest a lease may stay quarantined before the pool fences the peer. */
  quarantineMaxAge: 30_000,
  /** How long a peer fence may take before the blocks are retired from the pool for good. */
  fenceTimeout: 10_000,
} as const;

export type DelayName = keyof typeof DEFAULT_DELAYS;

/** What a transfer backend can promise; the transferHandle machine reads this instead of assuming. */
export interface BackendSemantics {
  /** An in-flight transfer can be aborted and the abort is confirmed (the engine stops touching both buffers). */
  canAbortInFlight: boolean;
  /** A release accepted while in flight also proves the buffers are no longer touched. False for NIXL over UCX. */
  releaseInFlightQuiesces: boolean;
}

/** How one request's transfer ended, as published to the status checker. */
export type TransferOutcome = 'succeeded' | 'failed' | 'cancelled' | 'timedOut';

/**
 * The state of the (request, promise) entry the worker holds. `broken` is an abandoned promise
 * (std::future_error "Broken promise"): no shipped machine may ever produce it (invariant S2).
 */
export type PromiseState = 'pending' | 'value' | 'error' | 'broken';

/** The evidence that lets blocks advertised to a remote writer be reused (invariant S5). */
export type QuiescenceProof = 'neverExposed' | 'terminalAndSync' | 'notReadyBeforeWrite' | 'abortConfirmed' | 'terminalStatus' | 'peerFenced';

/**
 * State-node metadata read by the liveness check (invariant L1): a non-final state either has a
 * deadline (`after`) or names the local events that always advance it (worker steps, status polls,
 * synchronous native results) — events the executor itself produces, so no peer can withhold them.
 */
export interface StateMeta {
  localProgress?: readonly string[];
  /** Short human description used by the docs generator. */
  description?: string;
}

/**
 * The total transition table's other half: for each event a machine accepts, where it is deliberately
 * ignored (state-path prefixes, or 'elsewhere' = every state that does not handle it) and why that is
 * safe. A test checks that every (state, event) pair is either handled or covered here.
 */
export type IgnorePolicy<E extends string> = Record<E, { where: readonly string[] | 'elsewhere'; why: string }>;

/**
 * What a generation peer's request info names: the blocks of its pool the sender may write, and the
 * epoch of the lease that owns them now (vLLM #52234: a reference is only good for one allocation).
 */
export interface RemoteRef {
  /** The peer's registered region id (0 in the model). */
  region: number;
  /** Block indices in the peer's pool, in the order the sender's chunks land. */
  blocks: readonly number[];
  /** The generation-side allocation this reference is for (the pool's allocation sequence). */
  epoch: number;
}

/** How many finished request ids a server remembers to answer late messages (bounded memory). */
export const FINISHED_MEMORY = 64;

/**
 * The observed future, classified for the request lifecycle: a value is 'complete'; an error is
 * attributed to a cancel, a deadline, or the transfer itself.
 */
export type TransferResult = 'complete' | 'cancelled' | 'timedOut' | 'transferFailed';

export function resultOf(promise: PromiseState, outcome: TransferOutcome | 'pending'): TransferResult {
  if (promise === 'value') return 'complete';
  return outcome === 'cancelled' || outcome === 'timedOut' ? outcome : 'transferFailed';
}

/**
 * What a host that owns a context asks of each of its values: a copy of its own, which the steps that
 * follow may update in place. A host steps in place only when it keeps no old snapshot (the executor),
 * so nothing can see the old value change. `Symbol.for`: the step compiler asks for it by name.
 */
export const OWN: unique symbol = Symbol.for('xferstate.own') as never;

/** A context value that has an owned form (see OWN). */
export interface Ownable {
  [OWN](): unknown;
}

/**
 * The request ids a server-wide machine (admission, peerSession) holds an entry for, each with a value:
 * a persistent map. One event touches one entry; in a list each step copied and scanned every entry,
 * so a step cost the number of requests in flight (at 4,096 in flight the admission machine's steps
 * alone took a fifth of the servers' CPU). Contexts stay immutable, as the explorer keeps every snapshot
 * it visits: `with` and `without` return a new table sharing all but one path of the old one (immutable's
 * hash array mapped trie: O(log32 n) time and allocation).
 *
 * A host that steps in place and keeps no old snapshot (the executor) asks for the table's owned form
 * (OWN): the same methods over a mutable Map, where `with` and `without` change the table and return
 * it. At 64 requests in flight the trie's updates and lookups took about 4 % of the executor's
 * instructions per request (17,600 in a profile); a Map does the same work with no allocation per update.
 *
 * It serialises with its ids sorted, so tables with the same entries give the same text whatever order
 * they were built in: the explorer's state keys, the lockstep check and the inspector read that text,
 * and the order of grants or starts is not part of any state.
 */
export class RequestTable<V> implements Ownable {
  private static readonly EMPTY = new RequestTable<never>(HashMap<string, never>());
  protected constructor(private readonly entries: HashMap<string, V>) {}

  static empty<V>(): RequestTable<V> {
    return RequestTable.EMPTY as RequestTable<V>;
  }

  /** A table of these entries (a later entry for the same id wins). */
  static of<V>(entries: Iterable<readonly [string, V]>): RequestTable<V> {
    let t = RequestTable.empty<V>();
    for (const [k, v] of entries) t = t.with(k, v);
    return t;
  }

  get size(): number {
    return this.entries.size;
  }

  has(request: string): boolean {
    return this.entries.has(request);
  }

  get(request: string): V | undefined {
    return this.entries.get(request);
  }

  /** The table with `request` set to `value` (this table when it already holds that). */
  with(request: string, value: V): RequestTable<V> {
    const m = this.entries.set(request, value);
    return m === this.entries ? this : new RequestTable(m);
  }

  /** The table without `request` (this table when it has no entry for it). */
  without(request: string): RequestTable<V> {
    const m = this.entries.delete(request);
    return m === this.entries ? this : m.size === 0 ? RequestTable.empty<V>() : new RequestTable(m);
  }

  /** The ids, sorted. */
  ids(): string[] {
    return [...this.entries.keys()].sort();
  }

  /** The entries, sorted by id (`RequestTable.of` of them is an equal table). */
  pairs(): Array<[string, V]> {
    return this.ids().map((k) => [k, this.get(k)!]);
  }

  /** Whether this is the owned form (updated in place). */
  get owned(): boolean {
    return false;
  }

  /** The owned form: a table of the same entries that `with` and `without` update in place. */
  [OWN](): RequestTable<V> {
    return new OwnedRequestTable<V>(new Map(this.pairs()));
  }

  toJSON(): Record<string, V> {
    const out: Record<string, V> = {};
    // The explorer serialises every snapshot it meets: an empty table, the common case, skips the sort.
    if (this.size === 0) return out;
    for (const k of this.ids()) out[k] = this.get(k)!;
    return out;
  }
}

/**
 * RequestTable's owned form (OWN): a mutable Map behind the same methods. Only a host that owns the
 * context holds one; `with` and `without` return the table itself, changed.
 */
class OwnedRequestTable<V> extends RequestTable<V> {
  constructor(private readonly map: Map<string, V>) {
    super(HashMap<string, V>());
  }

  override get size(): number {
    return this.map.size;
  }

  override has(request: string): boolean {
    return this.map.has(request);
  }

  override get(request: string): V | undefined {
    return this.map.get(request);
  }

  override with(request: string, value: V): RequestTable<V> {
    this.map.set(request, value);
    return this;
  }

  override without(request: string): RequestTable<V> {
    this.map.delete(request);
    return this;
  }

  override ids(): string[] {
    return [...this.map.keys()].sort();
  }

  override get owned(): boolean {
    return true;
  }

  override [OWN](): RequestTable<V> {
    return new OwnedRequestTable<V>(new Map(this.map));
  }
}

/**
 * Requests waiting in arrival order, each entry naming its request (admission's queue). Persistent,
 * like RequestTable: `push`, `shift` and `without` return a new queue and leave this one as it was
 * (an array copied per change, as the explorer's queues hold a few entries). Its owned form (OWN) keeps
 * an array with a moving head and a count of entries per request, so that in the executor a push, a
 * shift and a membership test cost the same with 4,096 requests waiting as with none.
 *
 * It serialises as the array of its entries, in order: the text an array of them gave before.
 */
export class RequestQueue<T extends { readonly request: string }> implements Ownable {
  private static readonly EMPTY = new RequestQueue<never>([]);
  protected constructor(private readonly entries: readonly T[]) {}

  static empty<T extends { readonly request: string }>(): RequestQueue<T> {
    return RequestQueue.EMPTY as RequestQueue<T>;
  }

  static of<T extends { readonly request: string }>(entries: Iterable<T>): RequestQueue<T> {
    const a = [...entries];
    return a.length === 0 ? RequestQueue.empty<T>() : new RequestQueue<T>(a);
  }

  get size(): number {
    return this.entries.length;
  }

  /** The oldest entry (undefined: none waits). */
  head(): T | undefined {
    return this.entries[0];
  }

  /** Whether an entry of this request waits. */
  has(request: string): boolean {
    const a = this.entries;
    for (let i = 0; i < a.length; i++) if (a[i]!.request === request) return true;
    return false;
  }

  /** The queue with `entry` added last. */
  push(entry: T): RequestQueue<T> {
    return new RequestQueue<T>([...this.entries, entry]);
  }

  /** The queue without its oldest entry (this queue when it is empty). */
  shift(): RequestQueue<T> {
    if (this.entries.length === 0) return this;
    return this.entries.length === 1 ? RequestQueue.empty<T>() : new RequestQueue<T>(this.entries.slice(1));
  }

  /** The queue without any entry of `request` (this queue when it has none). */
  without(request: string): RequestQueue<T> {
    return this.has(request) ? RequestQueue.of(this.entries.filter((e) => e.request !== request)) : this;
  }

  /** The entries, oldest first (a copy). */
  items(): T[] {
    return [...this.entries];
  }

  /** Whether this is the owned form (updated in place). */
  get owned(): boolean {
    return false;
  }

  /** The owned form: a queue of the same entries that `push`, `shift` and `without` update in place. */
  [OWN](): RequestQueue<T> {
    return new OwnedRequestQueue<T>(this.items());
  }

  toJSON(): T[] {
    return this.items();
  }
}

/**
 * Whether an owned form's array, whose live entries start at `first`, is worth moving to the front:
 * once most of it is behind its head (and at least 32 slots), so each entry is moved O(1) times.
 */
const compactable = (first: number, length: number): boolean => first >= 32 && first * 2 >= length;

/** Waiting entries an owned queue scans for `has`; past this many it keeps counts per request in a map. */
const QUEUE_SCAN_MAX = 16;

/**
 * RequestQueue's owned form (OWN): entries `first` to `end` are waiting; a shift moves `first`, and the
 * array is compacted once most of it is behind it. Slots past `end` are kept for the next pushes: the
 * executor's queues are nearly always empty (each request is queued and granted at once), and emptying
 * the array made V8 grow it again at the next push. `counts` says how many entries each request has
 * waiting (one, in the shipped machine: a mutant may queue a request twice), kept only while more than
 * `QUEUE_SCAN_MAX` wait: a map that a delete leaves empty is shrunk by V8 (a table reallocated in the
 * runtime, about 650 instructions), and these queues emptied three times per request.
 */
class OwnedRequestQueue<T extends { readonly request: string }> extends RequestQueue<T> {
  private first = 0;
  private end: number;
  private counts: Map<string, number> | null = null;

  constructor(private list: Array<T | undefined>) {
    super([]);
    this.end = list.length;
    if (this.end > QUEUE_SCAN_MAX) this.countAll();
  }

  private countAll(): void {
    const counts = (this.counts = new Map<string, number>());
    for (let i = this.first; i < this.end; i++) {
      const r = this.list[i]!.request;
      counts.set(r, (counts.get(r) ?? 0) + 1);
    }
  }

  private count(request: string, by: number): void {
    const counts = this.counts!;
    const n = (counts.get(request) ?? 0) + by;
    if (n === 0) counts.delete(request);
    else counts.set(request, n);
  }

  override get size(): number {
    return this.end - this.first;
  }

  override head(): T | undefined {
    return this.first < this.end ? this.list[this.first] : undefined;
  }

  override has(request: string): boolean {
    if (this.counts !== null) return this.counts.has(request);
    const a = this.list;
    for (let i = this.first; i < this.end; i++) if (a[i]!.request === request) return true;
    return false;
  }

  override push(entry: T): RequestQueue<T> {
    if (this.end < this.list.length) this.list[this.end] = entry;
    else this.list.push(entry);
    this.end++;
    if (this.counts !== null) this.count(entry.request, 1);
    else if (this.end - this.first > QUEUE_SCAN_MAX) this.countAll();
    return this;
  }

  override shift(): RequestQueue<T> {
    if (this.first >= this.end) return this;
    const e = this.list[this.first]!;
    this.list[this.first++] = undefined;
    if (this.first === this.end) {
      // Empty: start over at the front, the slots kept; the counts (if any) go with the entries.
      this.first = this.end = 0;
      this.counts = null;
      return this;
    }
    if (this.counts !== null) this.count(e.request, -1);
    if (compactable(this.first, this.end)) {
      this.list = this.list.slice(this.first, this.end);
      this.end -= this.first;
      this.first = 0;
    }
    return this;
  }

  override without(request: string): RequestQueue<T> {
    if (!this.has(request)) return this;
    this.list = this.list.slice(this.first, this.end).filter((e) => e!.request !== request);
    this.first = 0;
    this.end = this.list.length;
    if (this.counts !== null) this.counts.delete(request);
    return this;
  }

  override items(): T[] {
    return this.list.slice(this.first, this.end) as T[];
  }

  override get owned(): boolean {
    return true;
  }

  override [OWN](): RequestQueue<T> {
    return new OwnedRequestQueue<T>(this.items());
  }
}

/** One finished request as a server-wide machine remembers it (peerSession's `finished`). */
export interface FinishedRecord {
  readonly request: string;
  /** Every transfer handle of the request was proven quiescent (or none existed). */
  readonly quiesced: boolean;
  /** A transfer of the request was created. */
  readonly wrote: boolean;
}

/** What `FinishedRecords.any` asks of a request's records: any record, a quiesced one, an unwritten one. */
export type FinishedTest = 0 | 1 | 2;

/**
 * Finished requests, oldest first, bounded: a new record goes last, and while there are more than the
 * bound the oldest quiesced record is forgotten (an unproven one is kept: a fence of it must never be
 * acknowledged). A request may have more than one record. Persistent, like RequestTable: `record`
 * returns a new list (an array, copied per change) and leaves this one as it was. Its owned form (OWN)
 * keeps an array with a moving head and per-request counts, so that in the executor a lookup does not
 * walk the bound's 64 records and a new record does not copy them.
 *
 * It serialises as the array of its records, oldest first: the text an array of them gave before.
 */
export class FinishedRecords implements Ownable {
  private static readonly EMPTY = new FinishedRecords([]);
  protected constructor(private readonly list: readonly FinishedRecord[]) {}

  static empty(): FinishedRecords {
    return FinishedRecords.EMPTY;
  }

  static of(records: Iterable<FinishedRecord>): FinishedRecords {
    const a = [...records];
    return a.length === 0 ? FinishedRecords.EMPTY : new FinishedRecords(a);
  }

  get size(): number {
    return this.list.length;
  }

  /** Whether some record of `request` passes `test` (0: any, 1: quiesced, 2: not written). */
  any(request: string, test: FinishedTest): boolean {
    const a = this.list;
    for (let i = 0; i < a.length; i++) {
      const f = a[i]!;
      if (f.request === request && (test === 0 || (test === 1 ? f.quiesced : !f.wrote))) return true;
    }
    return false;
  }

  /**
   * The records with `rec` last (`replace`: earlier records of its request left out), and the oldest
   * quiesced records dropped while there are more than `bound`.
   */
  record(rec: FinishedRecord, bound: number, replace: boolean): FinishedRecords {
    const list = this.list;
    const kept = replace && this.any(rec.request, 0) ? list.filter((f) => f.request !== rec.request) : list;
    let q = 0;
    while (q < kept.length && !kept[q]!.quiesced) q++;
    // The steady state: the list is full and its oldest quiesced record makes room. One copy of the same
    // length, the records after it moved down by one, the new one in the last slot (no reallocation).
    if (kept.length === bound && q < kept.length) {
      const n = kept.length;
      const out = kept.slice();
      for (let j = q; j < n - 1; j++) out[j] = kept[j + 1]!;
      out[n - 1] = rec;
      return new FinishedRecords(out);
    }
    const out = [...kept, rec];
    while (out.length > bound) {
      let i = 0;
      while (i < out.length && !out[i]!.quiesced) i++;
      if (i === out.length) break;
      out.splice(i, 1);
    }
    return new FinishedRecords(out);
  }

  /** The records, oldest first (a copy). */
  items(): FinishedRecord[] {
    return [...this.list];
  }

  /** Whether this is the owned form (updated in place). */
  get owned(): boolean {
    return false;
  }

  /** The owned form: the same records, which `record` updates in place. */
  [OWN](): FinishedRecords {
    return new OwnedFinishedRecords(this.items());
  }

  toJSON(): FinishedRecord[] {
    return this.items();
  }
}

/** Per request, how many of its records there are, how many are quiesced and how many unwritten. */
interface FinishedCounts {
  all: number;
  quiesced: number;
  unwritten: number;
}

/**
 * FinishedRecords' owned form (OWN): records from `first` on are live (the array is compacted once most
 * of it is behind `first`); `counts` answers `any` without a walk.
 */
class OwnedFinishedRecords extends FinishedRecords {
  private first = 0;
  private readonly counts = new Map<string, FinishedCounts>();

  constructor(private live: Array<FinishedRecord | undefined>) {
    super([]);
    for (const f of live) this.count(f!, 1);
  }

  private count(f: FinishedRecord, by: 1 | -1): void {
    let c = this.counts.get(f.request);
    if (c === undefined) this.counts.set(f.request, (c = { all: 0, quiesced: 0, unwritten: 0 }));
    c.all += by;
    if (f.quiesced) c.quiesced += by;
    if (!f.wrote) c.unwritten += by;
    if (c.all === 0) this.counts.delete(f.request);
  }

  override get size(): number {
    return this.live.length - this.first;
  }

  override any(request: string, test: FinishedTest): boolean {
    const c = this.counts.get(request);
    if (c === undefined) return false;
    return test === 0 ? c.all > 0 : test === 1 ? c.quiesced > 0 : c.unwritten > 0;
  }

  override record(rec: FinishedRecord, bound: number, replace: boolean): FinishedRecords {
    if (replace && this.counts.has(rec.request)) {
      // A request finishing again (rare): its earlier records leave, a walk of the list.
      this.live = this.live.slice(this.first).filter((f) => f!.request !== rec.request);
      this.first = 0;
      this.counts.delete(rec.request);
    }
    this.live.push(rec);
    this.count(rec, 1);
    while (this.size > bound) {
      // The oldest quiesced record: in the steady state the oldest of all.
      let i = this.first;
      while (i < this.live.length && !this.live[i]!.quiesced) i++;
      if (i === this.live.length) break;
      this.count(this.live[i]!, -1);
      if (i === this.first) this.live[this.first++] = undefined;
      else this.live.splice(i, 1);
    }
    if (compactable(this.first, this.live.length)) {
      this.live = this.live.slice(this.first);
      this.first = 0;
    }
    return this;
  }

  override items(): FinishedRecord[] {
    return this.live.slice(this.first) as FinishedRecord[];
  }

  override get owned(): boolean {
    return true;
  }

  override [OWN](): FinishedRecords {
    return new OwnedFinishedRecords(this.items());
  }
}
