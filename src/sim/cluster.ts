import type { Platform } from '../core/platform.js';
import type { ChildMessage, RequestReport, RequestSpec, ServerConfig } from '../executor/config.js';
import { burstDelays } from '../executor/config.js';
import { ContextServer } from '../executor/contextServer.js';
import { GenerationServer } from '../executor/generationServer.js';
import { SimClock } from './clock.js';
import type { LinkFaults } from './network.js';
import { SimLink } from './network.js';
import type { Rng } from './rng.js';

/** What one seed chooses about the world (TigerBeetle's swarm options). */
export interface SimShape {
  requests: number;
  blocksPerRequest: number;
  blockBytes: number;
  /** Blocks in each pool: small, so blocks are reused constantly. */
  ctxPoolBlocks: number;
  genPoolBlocks: number;
  recvSlots: number;
  kvTransferTimeoutMs: number;
  links: LinkFaults;
  /** Per-step probabilities of a user cancel and of a context-server crash. */
  cancelRate: number;
  crashRate: number;
  partitionRate: number;
  /** Relative weights of the scheduler's kinds of step. */
  weights: Record<StepKind, number>;
  /** Regression variants swapped into both servers (canaries that must be caught). */
  variants: string[];
  /**
   * 'manual' (default): the executor loops run only when the scheduler steps them. 'auto': as in
   * production, each server also runs its own loop (a request's loop steps right after its stimulus,
   * slices of the rest deferred), and the scheduler's loop steps come on top.
   */
  loop?: 'manual' | 'auto';
  /**
   * Servers keep time-in-state histograms, which puts them on the observer path that metrics and traces
   * take (every transition passed on); without it they take the quiet one. The schedule is the same.
   */
  timeInState?: boolean;
  /**
   * The servers' host of machines: 'pure' (the default, as deployed: compiled steps in place) or
   * 'actors' (live xstate actors, the oracle the simulator compares the default with: `simulate
   * --against-xstate`). Not drawn from the seed.
   */
  host?: 'pure' | 'actors';
}

export type StepKind = 'submit' | 'deliver' | 'loop' | 'native' | 'time';

let incarnations = 0;

/**
 * The production ContextServer and GenerationServer in one process on a seeded world: virtual time
 * (SimClock), the control channel as two SimLinks, both agents in manual progress (nothing moves
 * unless the scheduler steps it), and crash/restart of the context server. The servers are the real
 * classes, constructed as production constructs them, with the Platform and links injected.
 */
export class SimCluster {
  readonly clock = new SimClock();
  readonly platform: Platform;
  ctx!: ContextServer;
  gen!: GenerationServer;
  toGen!: SimLink;
  toCtx!: SimLink;
  readonly specs = new Map<string, RequestSpec>();
  /** Reports per side and request; more than one is a violation (a future settled twice). */
  readonly reports = { context: new Map<string, RequestReport[]>(), generation: new Map<string, RequestReport[]>() };
  /** Requests the crashed context incarnations held: they end with the process. */
  readonly lostWithCrash = new Set<string>();
  /** Requests the crashed generation incarnations held. */
  readonly lostWithGenCrash = new Set<string>();
  private readonly ctxHas = new Set<string>();
  private readonly genHas = new Set<string>();
  private readonly deferred: Array<() => void> = [];
  ctxIncarnation = 0;
  genIncarnation = 0;

  constructor(
    readonly seed: number,
    readonly shape: SimShape,
    private readonly rng: Rng,
  ) {
    // Deferred work runs after the current step, in the order it was deferred.
    this.platform = { clock: this.clock, defer: (fn) => void this.deferred.push(fn) };
    this.startGeneration();
    this.startContext();
  }

  private startGeneration(): void {
    this.genIncarnation++;
    this.gen = new GenerationServer(this.config('generation'), (m) => this.onChild('generation', m), undefined, this.platform);
  }

  /** Connect the two current incarnations: metadata and a fresh pair of links. */
  private link(): void {
    this.ctx.loadPeer(this.gen.agent.exportMetadata());
    const now = () => this.clock.now();
    this.toGen = new SimLink('ctx→gen', this.rng, now, this.shape.links, (m) => this.gen.receiveControl(m));
    this.toCtx = new SimLink('gen→ctx', this.rng, now, this.shape.links, (m) => this.ctx.receiveControl(m));
    this.ctx.attachPeer(this.toGen);
    this.gen.attachPeer(this.toCtx);
  }

  private config(role: 'context' | 'generation'): ServerConfig {
    const s = this.shape;
    return {
      role,
      name: `sim${this.seed}-${role === 'context' ? 'ctx' : 'gen'}${++incarnations}-${process.pid}`,
      socketPath: '',
      blockBytes: s.blockBytes,
      poolBlocks: role === 'context' ? s.ctxPoolBlocks : s.genPoolBlocks,
      backend: 'shm',
      progress: 'manual',
      loop: s.loop ?? 'manual',
      chunkBytes: 4096,
      recvSlots: s.recvSlots,
      delays: burstDelays(s.kvTransferTimeoutMs),
      host: s.host ?? 'pure',
      ...(s.timeInState ? { timeInState: true } : {}),
      ...(s.variants.length > 0 ? { variants: s.variants } : {}),
    };
  }

  private startContext(): void {
    this.ctxIncarnation++;
    this.ctx = new ContextServer(this.config('context'), (m) => this.onChild('context', m), undefined, this.platform);
    this.link();
  }

  /** Server log lines (XFERSTATE_LOG=1), for reading a failing schedule. */
  onLog?: (line: string) => void;

  private onChild(role: 'context' | 'generation', m: ChildMessage): void {
    if (m.t === 'log') this.onLog?.(m.line);
    if (m.t !== 'done') return;
    const map = this.reports[role];
    const list = map.get(m.report.id) ?? [];
    list.push(m.report);
    map.set(m.report.id, list);
  }

  /** Run what the servers deferred during the last step (and what that defers in turn). */
  runDeferred(): void {
    for (let i = 0; i < this.deferred.length; i++) this.deferred[i]!();
    this.deferred.length = 0;
  }

  /** Actors alive in both servers (bounded memory: finished requests leave nothing behind). */
  actors(): number {
    return this.ctx.host.names().length + this.gen.host.names().length;
  }

  submitGeneration(spec: RequestSpec): void {
    this.specs.set(spec.id, spec);
    this.genHas.add(spec.id);
    this.gen.submit(spec);
  }

  submitContext(spec: RequestSpec): void {
    this.specs.set(spec.id, spec);
    this.ctxHas.add(spec.id);
    this.ctx.submit(spec);
  }

  /** Kill the context server (its agent closes: copies stop, its mappings go), then start a new one. */
  crashContext(): void {
    for (const id of this.ctxHas) if (!this.reports.context.has(id)) this.lostWithCrash.add(id);
    this.ctxHas.clear();
    this.toGen.close();
    this.toCtx.close();
    this.ctx.close();
    this.gen.peerGone();
    this.startContext();
  }

  /** Kill the generation server (its pool and requests go with it), then start a new one. */
  crashGeneration(): void {
    for (const id of this.genHas) if (!this.reports.generation.has(id)) this.lostWithGenCrash.add(id);
    this.genHas.clear();
    this.toGen.close();
    this.toCtx.close();
    this.gen.close();
    // The context server learns that its peer's connection closed.
    this.ctx.peerGone();
    this.startGeneration();
    this.link();
  }

  setLinkFaults(f: LinkFaults, partitioned: boolean): void {
    this.toGen.faults = f;
    this.toCtx.faults = f;
    this.toGen.partitioned = partitioned;
    this.toCtx.partitioned = partitioned;
  }

  close(): void {
    this.toGen.close();
    this.toCtx.close();
    this.ctx.close();
    this.gen.close();
  }
}
