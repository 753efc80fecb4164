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
 * The request ids a server-wide machine (admission, peerSession) holds an entry for, each with a value:
 * a persistent map. One event touches one entry; in a list each step copied and scanned every entry,
 * so a step cost the number of requests in flight (at 4,096 in flight the admission machine's steps
 * alone took a fifth of the servers' CPU). Contexts stay immutable, as the explorer keeps every snapshot
 * it visits: `with` and `without` return a new table sharing all but one path of the old one (immutable's
 * hash array mapped trie: O(log32 n) time and allocation).
 *
 * It serialises with its ids sorted, so tables with the same entries give the same text whatever order
 * they were built in: the explorer's state keys, the lockstep check and the inspector read that text,
 * and the order of grants or starts is not part of any state.
 */
export class RequestTable<V> {
  private static readonly EMPTY = new RequestTable<never>(HashMap<string, never>());
  private constructor(private readonly entries: HashMap<string, V>) {}

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
    return this.ids().map((k) => [k, this.entries.get(k)!]);
  }

  toJSON(): Record<string, V> {
    const out: Record<string, V> = {};
    // The explorer serialises every snapshot it meets: the common small cases skip the sort.
    if (this.entries.size === 0) return out;
    if (this.entries.size === 1) {
      for (const [k, v] of this.entries) out[k] = v;
      return out;
    }
    for (const k of this.ids()) out[k] = this.entries.get(k)!;
    return out;
  }
}
