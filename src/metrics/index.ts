import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Counter, Gauge, Registry } from 'prom-client';

/**
 * Prometheus metrics an embedding engine (or xferstate's own servers) mounts: requests by outcome,
 * quarantine entered and left (by proof or by fence), blocks retired, time in each machine state as
 * histograms, and gauges of what is in flight now. Names follow vLLM / SGLang's style for the same path
 * (a `_total` counter per outcome). Everything is fed from what the host already reports — transition
 * records and the blockLease's metric actions — so no machine changes for it.
 */
export interface XferMetricsOptions {
  /** Registry to register on (e.g. your engine's own); default: a new one. */
  registry?: Registry;
  /** Metric name prefix; default `xferstate_`. */
  prefix?: string;
  /** Labels on every metric (e.g. `{ server: 'ctx-0' }`). */
  labels?: Record<string, string>;
  /** Buckets (seconds) of the time-in-state histogram. */
  buckets?: number[];
}

/** A finished request, as counted: `timedOut` is kept apart from other failures. */
export type RequestOutcomeLabel = 'completed' | 'cancelled' | 'timedOut' | 'failed';

/** The part of a host's transition record the metrics read (ActorHost / EngineHost `onTransition`). */
export interface TransitionLike {
  actor: string;
  machine: string;
  to: unknown;
  status: string;
}

const DEFAULT_BUCKETS = [0.0005, 0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 10, 30, 60];

export class XferMetrics {
  readonly registry: Registry;
  readonly requests: Counter<'role' | 'outcome'>;
  readonly quarantineEntered: Counter<'role'>;
  readonly quarantineLeft: Counter<'role' | 'by'>;
  readonly blocksRetired: Counter<'role'>;
  readonly timeInState: StateTimeHistogram;
  readonly inFlight: Gauge<'role' | 'what'>;
  readonly events: Counter<'role' | 'name'>;
  /** Per actor, the leaf states it is in and since when. */
  private readonly since = new Map<string, Array<{ state: string; at: number }>>();
  private readonly gauges = new Map<string, () => number>();

  constructor(opts: XferMetricsOptions = {}, private readonly now: () => number = () => performance.now()) {
    this.registry = opts.registry ?? new Registry();
    if (opts.labels) this.registry.setDefaultLabels(opts.labels);
    const p = opts.prefix ?? 'xferstate_';
    const registers = [this.registry];
    this.requests = new Counter({ name: `${p}requests_total`, help: 'Requests finished, by role and outcome (completed, cancelled, timedOut, failed)', labelNames: ['role', 'outcome'], registers });
    this.quarantineEntered = new Counter({ name: `${p}quarantine_entered_total`, help: 'KV block leases released without proof of quiescence (quarantined)', labelNames: ['role'], registers });
    this.quarantineLeft = new Counter({ name: `${p}quarantine_left_total`, help: 'Quarantined leases made reusable, by late proof or by a confirmed peer fence', labelNames: ['role', 'by'], registers });
    this.blocksRetired = new Counter({ name: `${p}leases_retired_total`, help: 'Leases whose blocks left the pool for good (fence not confirmed)', labelNames: ['role'], registers });
    this.timeInState = new StateTimeHistogram(`${p}time_in_state_seconds`, 'Time an actor spent in a state before leaving it', opts.buckets ?? DEFAULT_BUCKETS);
    this.registry.registerMetric(this.timeInState as never);
    this.events = new Counter({ name: `${p}events_total`, help: 'Other protocol events the servers count (errorResponse, cancelSent, cancelRefused)', labelNames: ['role', 'name'], registers });
    const gauges = this.gauges;
    this.inFlight = new Gauge({
      name: `${p}in_flight`,
      help: 'What is in flight now: requests, quarantined leases, held blocks (read when scraped)',
      labelNames: ['role', 'what'],
      registers,
      collect() {
        for (const [key, read] of gauges) {
          const [role, what] = key.split('\u0000') as [string, string];
          this.set({ role, what }, read());
        }
      },
    });
  }

  /** A gauge read when scraped, e.g. `track('context', 'requests', () => server.inFlight())`. */
  track(role: string, what: string, read: () => number): void {
    this.gauges.set(`${role}\u0000${what}`, read);
  }

  /**
   * Feed every transition record: time in state is observed when an actor leaves a state (or finishes).
   * States are leaf paths (`receiving`, `worker.receiving`, `DISAGG_TRANS_ERROR.awaitingQuiescence`), so
   * each region of a parallel machine is timed on its own.
   */
  transition(r: TransitionLike): void {
    const before = this.since.get(r.actor);
    // Most machines are flat and most records repeat the current state: no allocation on that path.
    if (r.status === 'active' && typeof r.to === 'string' && before !== undefined && before.length === 1 && before[0]!.state === r.to) return;
    const t = this.now();
    const leaves = r.status === 'active' ? leafPaths(r.to) : [];
    const next: Array<{ state: string; at: number }> = leaves.map((state) => ({ state, at: before?.find((b) => b.state === state)?.at ?? t }));
    if (before) for (const b of before) if (!leaves.includes(b.state)) this.timeInState.observe(r.machine, b.state, (t - b.at) / 1000);
    if (next.length > 0) this.since.set(r.actor, next);
    else this.since.delete(r.actor);
  }

  /** Forget an actor removed before it finished (its current state is not observed). */
  forget(actor: string): void {
    this.since.delete(actor);
  }

  /**
   * Feed a blockLease's metric actions: `quarantineEntered`, `quarantineReleased { by }`, `retireBlocks`.
   * Returns true when the action was one of them.
   */
  leaseAction(role: string, action: { type: string; params?: unknown }): boolean {
    switch (action.type) {
      case 'quarantineEntered':
        this.quarantineEntered.inc({ role });
        return true;
      case 'quarantineReleased':
        this.quarantineLeft.inc({ role, by: (action.params as { by?: string } | undefined)?.by === 'fence' ? 'fence' : 'proof' });
        return true;
      case 'retireBlocks':
        this.blocksRetired.inc({ role });
        return true;
    }
    return false;
  }

  /**
   * Feed a server's metric effect by name (src/core/effects.ts `MetricName`, plus `leaseRetired`):
   * quarantine names go to the quarantine counters, the rest to `events_total`.
   */
  metric(role: string, name: string): void {
    if (name === 'quarantineEntered') this.quarantineEntered.inc({ role });
    else if (name === 'quarantineReleasedByProof') this.quarantineLeft.inc({ role, by: 'proof' });
    else if (name === 'quarantineReleasedByFence') this.quarantineLeft.inc({ role, by: 'fence' });
    else if (name === 'leaseRetired') this.blocksRetired.inc({ role });
    else this.events.inc({ role, name });
  }

  /** Count a finished request. */
  requestFinished(role: string, outcome: RequestOutcomeLabel): void {
    this.requests.inc({ role, outcome });
  }
}

/** `'a'` → ['a']; `{ x: { y: 'z' }, f: 'p' }` → ['x.y.z', 'f.p']. */
function leafPaths(value: unknown, prefix = '', out: string[] = []): string[] {
  if (typeof value === 'string') out.push(prefix + value);
  else if (typeof value === 'object' && value !== null) {
    for (const k in value) {
      const v = (value as Record<string, unknown>)[k];
      if (typeof v === 'string') out.push(`${prefix}${k}.${v}`);
      else if (typeof v === 'object' && v !== null && Object.keys(v).length > 0) leafPaths(v, `${prefix}${k}.`, out);
      else out.push(prefix + k);
    }
  }
  return out;
}

/**
 * A Prometheus histogram by (machine, state), kept as plain bucket counts and rendered by prom-client
 * when scraped. It is fed on every state change of every actor, where prom-client's own Histogram
 * (label hashing, exemplar bookkeeping) costs several microseconds per observation.
 */
export class StateTimeHistogram {
  readonly type = 'histogram';
  readonly aggregator = 'sum';
  private readonly series = new Map<string, { machine: string; state: string; counts: Float64Array; sum: number; count: number }>();

  constructor(
    readonly name: string,
    readonly help: string,
    private readonly buckets: readonly number[],
  ) {}

  observe(machine: string, state: string, seconds: number): void {
    const key = `${machine}\u0000${state}`;
    let s = this.series.get(key);
    if (!s) this.series.set(key, (s = { machine, state, counts: new Float64Array(this.buckets.length), sum: 0, count: 0 }));
    const i = this.buckets.findIndex((b) => seconds <= b);
    if (i >= 0) s.counts[i]!++;
    s.sum += seconds;
    s.count++;
  }

  /** prom-client's metric protocol: the values a Histogram would export. */
  async get(): Promise<{ name: string; help: string; type: string; aggregator: string; values: Array<{ labels: Record<string, string | number>; value: number; metricName: string }> }> {
    const values: Array<{ labels: Record<string, string | number>; value: number; metricName: string }> = [];
    for (const s of this.series.values()) {
      let acc = 0;
      this.buckets.forEach((le, i) => {
        acc += s.counts[i]!;
        values.push({ labels: { le, machine: s.machine, state: s.state }, value: acc, metricName: `${this.name}_bucket` });
      });
      values.push({ labels: { le: '+Inf', machine: s.machine, state: s.state }, value: s.count, metricName: `${this.name}_bucket` });
      values.push({ labels: { machine: s.machine, state: s.state }, value: s.sum, metricName: `${this.name}_sum` });
      values.push({ labels: { machine: s.machine, state: s.state }, value: s.count, metricName: `${this.name}_count` });
    }
    return { name: this.name, help: this.help, type: this.type, aggregator: this.aggregator, values };
  }

  reset(): void {
    this.series.clear();
  }
}

/** A finished request's outcome label from a server report (`failed` with reason `timedOut` counts as timedOut). */
export function outcomeLabel(outcome: 'completed' | 'cancelled' | 'failed' | 'timedOut', reason?: string): RequestOutcomeLabel {
  return outcome === 'failed' && reason === 'timedOut' ? 'timedOut' : outcome;
}

export interface MetricsEndpoint {
  url: string;
  port: number;
  close(): Promise<void>;
}

/**
 * Serve `registry` as Prometheus text on `GET /metrics`, on loopback unless another host is given
 * explicitly (request ids never leave the machine by accident). Port 0 picks a free one.
 */
export async function serveMetrics(registry: Registry, opts: { port?: number; host?: string } = {}): Promise<MetricsEndpoint> {
  const host = opts.host ?? '127.0.0.1';
  const server = createServer((req, res) => {
    if (req.method !== 'GET' || (req.url ?? '').split('?')[0] !== '/metrics') {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('not found: GET /metrics\n');
      return;
    }
    registry.metrics().then(
      (text) => res.writeHead(200, { 'content-type': registry.contentType }).end(text),
      (err: unknown) => res.writeHead(500, { 'content-type': 'text/plain' }).end(`${String(err)}\n`),
    );
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port ?? 0, host, () => resolve());
  });
  server.unref();
  const port = (server.address() as AddressInfo).port;
  return {
    url: `http://${host}:${port}/metrics`,
    port,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

export { Registry };
