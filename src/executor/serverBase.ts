import { createWriteStream } from 'node:fs';
import type { WriteStream } from 'node:fs';
import type { AnyStateMachine, InspectionEvent } from 'xstate';
import { ActorHost } from '../engine/host.js';
import type { LifecycleHost, TransitionRecord } from '../engine/host.js';
import { PureHost } from '../engine/pureHost.js';
import type { EmittedAction } from '../explore/world.js';
import { Agent } from '../native/index.js';
import { BlockPool } from './pool.js';
import type { ChildMessage, RequestReport, RequestSpec, ServerConfig, ServerStats } from './config.js';
import { requestOf } from '../explore/world.js';
import { outcomeLabel, XferMetrics } from '../metrics/index.js';

/**
 * The kinds of step an executor iteration takes: the sender or receiver worker's, the status checker's,
 * and on the generation side admission, receive-slot grants and (simulated) decoding.
 */
export type LoopStep = 'worker' | 'poll' | 'admit' | 'slot' | 'decode';

/** Per-request bookkeeping a server keeps beside the actors. */
export interface RequestEntry {
  spec: RequestSpec;
  startedAt: number;
  transitions: number;
  logLines: number;
  corrupted: boolean;
  bytes: number;
  reported: boolean;
}

const percentile = (sorted: number[], p: number) => sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? 0;

/**
 * What both servers share: the agent and its block pool, the actor host that embeds the machines, the
 * executor loop, per-request bookkeeping, trace and metrics. A subclass supplies routing and the loop's
 * steps. Messages to the harness go through `emit` (process IPC in a child, a callback in tests).
 */
export abstract class ServerBase {
  readonly agent: Agent;
  readonly pool: BlockPool;
  readonly host: LifecycleHost;
  readonly requests = new Map<string, RequestEntry>();
  readonly quarantine = { entered: 0, releasedByProof: 0, releasedByFence: 0 };
  private readonly stateSince = new Map<string, { key: string; at: number }>();
  private readonly timeInState = new Map<string, number[]>();
  private readonly trace?: WriteStream;
  /** Prometheus metrics, when the server is asked to serve them (`metricsPort`). */
  readonly metrics?: XferMetrics;
  private scheduled = false;
  private closed = false;
  private seq = 0;

  constructor(
    readonly config: ServerConfig,
    machines: Record<string, AnyStateMachine>,
    protected readonly emit: (m: ChildMessage) => void,
    inspect?: (ev: InspectionEvent) => void,
  ) {
    this.agent = new Agent(config.name, { backend: config.backend, progress: config.progress, ...(config.copyThreads ? { copyThreads: config.copyThreads } : {}) });
    this.pool = new BlockPool(this.agent, config.blockBytes, config.poolBlocks);
    if (config.tracePath) this.trace = createWriteStream(config.tracePath, { flags: 'a' });
    if (config.metricsPort !== undefined) {
      const m = (this.metrics = new XferMetrics({ labels: { server: config.name } }));
      m.track(config.role, 'requests', () => [...this.requests.values()].filter((e) => !e.reported).length);
      m.track(config.role, 'leases_quarantined', () => this.quarantine.entered - this.quarantine.releasedByProof - this.quarantine.releasedByFence);
      m.track(config.role, 'blocks_held', () => this.pool.stats().heldBlocks);
    }
    const common = {
      machines,
      delays: config.delays,
      route: (_h: unknown, actor: string, action: EmittedAction) => this.route(actor, action),
      onDone: (_h: unknown, actor: string, output: unknown) => this.onDone(actor, output),
      onTransition: (r: TransitionRecord) => this.onTransition(r),
    };
    // Live actors when someone watches them (the inspector needs their inspection stream); otherwise
    // the same machines in reducer mode, several times cheaper per event.
    this.host = inspect || config.host === 'actors' ? new ActorHost({ ...common, idPrefix: config.role === 'context' ? 'ctx/' : 'gen/', recordEvents: config.tracePath !== undefined, ...(inspect ? { inspect } : {}) }) : new PureHost(common);
  }

  protected abstract route(actor: string, action: EmittedAction): void;
  protected abstract onDone(actor: string, output: unknown): void;
  /** One executor iteration; returns true when more work is ready right away. */
  protected abstract iterate(only?: LoopStep): boolean;

  /** Manual loop: run one iteration, or only its worker steps or only its status polls. */
  stepLoop(only?: LoopStep): boolean {
    return this.iterate(only);
  }

  /**
   * How asynchronous native completions reach the transfer handles; default: at once. A replay test
   * holds them until the explored path says the backend delivers them.
   */
  nativeDelivery?: (actor: string, event: { type: 'STATUS'; status: 'DONE' | 'ERROR' } | { type: 'ABORTED' }) => void;

  /** Spawn an actor of a request, recording its creation in the trace. */
  spawn(name: string, input: unknown): void {
    this.trace?.write(`${JSON.stringify({ seq: this.seq++, t: Date.now(), kind: 'spawn', server: this.config.role, actor: name, input })}\n`);
    this.host.spawn(name, input);
  }

  /** Run the executor loop soon (an event may have made work). */
  schedule(): void {
    if (this.scheduled || this.closed || this.config.loop === 'manual') return;
    this.scheduled = true;
    setImmediate(() => {
      this.scheduled = false;
      if (this.closed) return;
      if (this.iterate()) this.schedule();
    });
  }

  entryOf(actor: string): RequestEntry | undefined {
    const id = requestOf(actor);
    return id === undefined ? undefined : this.requests.get(id);
  }

  /** The request's lifecycle as it finished: its top-level (terminal) state and error reason. */
  protected finalState(id: string): { state: string; reason: string } | null {
    const lc = this.host.actor(`${id}.lifecycle`);
    if (!lc) return null;
    return { state: typeof lc.value === 'string' ? lc.value : Object.keys(lc.value as object)[0]!, reason: String(lc.context.errorReason) };
  }

  protected report(id: string, r: Omit<RequestReport, 'id' | 'role' | 'logLines' | 'transitions' | 'startedAt' | 'endedAt' | 'corrupted' | 'bytes'>): void {
    const e = this.requests.get(id);
    if (!e || e.reported) return;
    e.reported = true;
    this.metrics?.requestFinished(this.config.role, outcomeLabel(r.outcome, r.reason));
    this.emit({
      t: 'done',
      report: { id, role: this.config.role, ...r, corrupted: e.corrupted, bytes: e.bytes, logLines: e.logLines, transitions: e.transitions, startedAt: e.startedAt, endedAt: Date.now() },
    });
  }

  private onTransition(r: TransitionRecord): void {
    // A deadline fired on its own: the loop may have work (a worker step, a poll).
    if (r.event.type.startsWith('xstate.after')) this.schedule();
    this.metrics?.transition(r);
    const key = typeof r.to === 'string' ? r.to : JSON.stringify(r.to);
    const now = performance.now();
    const prev = this.stateSince.get(r.actor);
    const changed = !prev || prev.key !== key;
    if (prev && changed) {
      const k = `${r.machine}:${prev.key}`;
      let list = this.timeInState.get(k);
      if (!list) this.timeInState.set(k, (list = []));
      list.push(now - prev.at);
    }
    if (r.status !== 'active') this.stateSince.delete(r.actor);
    else if (changed) this.stateSince.set(r.actor, { key, at: now });
    const e = this.entryOf(r.actor);
    if (e && changed && prev) {
      e.transitions++;
      // One log line per state transition, never more (no "Cannot cancel request" loop).
      e.logLines++;
      if (process.env.XFERSTATE_LOG === '1') this.emit({ t: 'log', line: `${this.config.role} ${r.actor}: ${prev.key} --${r.event.type}--> ${key}` });
    }
    if (this.trace) this.trace.write(`${JSON.stringify({ seq: this.seq++, t: Date.now(), kind: 'transition', server: this.config.role, actor: r.actor, machine: r.machine, event: r.event, from: r.from, to: r.to })}\n`);
  }

  /** Metrics actions every blockLease asks for; returns true when handled. */
  protected routeLeaseMetrics(action: EmittedAction): boolean {
    this.metrics?.leaseAction(this.config.role, action);
    switch (action.type) {
      case 'quarantineEntered':
        this.quarantine.entered++;
        return true;
      case 'quarantineReleased':
        if (action.params.by === 'fence') this.quarantine.releasedByFence++;
        else this.quarantine.releasedByProof++;
        return true;
      case 'retireBlocks':
        this.pool.retire(String(action.params.leaseId));
        return true;
    }
    return false;
  }

  /** Forget a lease's actor once its blocks are back in the pool or retired. */
  protected afterLeaseStep(lease: string): void {
    const s = this.host.actor(lease);
    if (!s) return;
    if (s.matches('free' as never) && s.context.epoch > 0) {
      this.pool.giveBack(String(s.context.leaseId));
      this.host.remove(lease);
    } else if (s.status === 'done') {
      this.host.remove(lease);
    }
  }

  stats(): ServerStats {
    const timeInState: ServerStats['timeInState'] = {};
    for (const [k, list] of this.timeInState) {
      const sorted = [...list].sort((a, b) => a - b);
      timeInState[k] = [Number(percentile(sorted, 50).toFixed(3)), Number(percentile(sorted, 99).toFixed(3)), sorted.length];
    }
    const stuck = [...this.requests.entries()].filter(([, e]) => !e.reported).map(([id]) => id);
    const cpu = process.cpuUsage();
    return { role: this.config.role, pool: this.pool.stats(), quarantine: { ...this.quarantine }, stuck, timeInState, cpuUserMs: cpu.user / 1000, cpuSystemMs: cpu.system / 1000 };
  }

  /** Leases still quarantined or fencing (they resolve by proof, fence or retirement within bounded time). */
  pendingLeases(): number {
    return this.host.names().filter((n) => n.endsWith('.lease')).length;
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.host.stopAll();
    this.trace?.end();
    this.agent.close();
  }
}
