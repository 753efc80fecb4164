import { fork } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, readFileSync, appendFileSync, existsSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { reapStaleSegments } from '../native/index.js';
import type { ChildMessage, FaultName, ParentMessage, RequestReport, RequestSpec, ServerConfig, ServerStats } from './config.js';
import { burstDelays, FAULTS } from './config.js';
import { UsageError } from '../errors.js';

export interface BurstOptions {
  concurrency: number;
  requests: number;
  faults: FaultName[];
  /** Share of requests that get one fault (when faults are given). */
  faultRate: number;
  seed: number;
  blockBytes: number;
  blocksPerRequest: number;
  backend: string;
  kvTransferTimeoutMs: number;
  recvSlots: number;
  tracePath?: string;
  inspectUrl?: string;
  /** Serve each server's Prometheus metrics on loopback: the context server on this port, the generation server on the next (0: free ports). */
  metricsPort?: number;
  onProgress?(done: number, total: number): void;
}

export interface BurstReport {
  requests: number;
  completed: number;
  cancelled: number;
  failed: number;
  failedByReason: Record<string, number>;
  corrupted: number;
  leakedBlocks: number;
  retiredBlocks: number;
  stuck: number;
  quarantine: { entered: number; releasedByProof: number; releasedByFence: number };
  logLinesPerRequest: { max: number; mean: number };
  transitionsPerRequest: { max: number; mean: number };
  timeInStateMs: Record<string, { p50: number; p99: number; count: number }>;
  requestsPerSecond: number;
  gbps: number;
  latencyMs: { p50: number; p99: number };
  wallMs: number;
  faultsInjected: Record<string, number>;
  peerRestarts: number;
  serverCpuMs: { context: number; generation: number };
}

/** mulberry32: small, seeded, reproducible. */
export function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const percentile = (sorted: number[], p: number) => sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? 0;

/** The compiled server entry: beside this module in dist/, or dist/ when this module runs from source (tests). */
function serverEntry(): string {
  const beside = fileURLToPath(new URL('./child.js', import.meta.url));
  if (existsSync(beside)) return beside;
  const built = fileURLToPath(new URL('../../dist/src/executor/child.js', import.meta.url));
  if (existsSync(built)) return built;
  throw new Error(`server entry not built: run 'npm run build' (looked for ${beside} and ${built})`);
}

class ServerProcess {
  readonly child: ChildProcess;
  private readonly waiters: Array<{ match: (m: ChildMessage) => boolean; resolve: (m: ChildMessage) => void }> = [];
  exited = false;

  /** Set when the process exits without being asked to (a crash), with its exit code or signal. */
  crashed: string | null = null;
  expectExit = false;

  constructor(onMessage: (m: ChildMessage) => void, onCrash?: () => void) {
    const entry = serverEntry();
    // XFERSTATE_SERVER_NODE_ARGS passes flags to the server processes (e.g. --cpu-prof for profiling).
    const execArgv = process.env.XFERSTATE_SERVER_NODE_ARGS?.split(' ').filter(Boolean) ?? [];
    this.child = fork(entry, [], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'], serialization: 'advanced', execArgv });
    this.child.on('message', (raw) => {
      const m = raw as ChildMessage;
      for (const w of [...this.waiters]) if (w.match(m)) (this.waiters.splice(this.waiters.indexOf(w), 1), w.resolve(m));
      onMessage(m);
    });
    this.child.on('exit', (code, signal) => {
      this.exited = true;
      if (!this.expectExit) {
        this.crashed = `exit code ${code ?? '-'}, signal ${signal ?? '-'}`;
        onCrash?.();
      }
    });
  }

  send(m: ParentMessage): void {
    if (!this.exited && this.child.connected) this.child.send(m);
  }

  next<T extends ChildMessage['t']>(t: T, timeoutMs = 30_000): Promise<Extract<ChildMessage, { t: T }>> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`server did not answer '${t}' within ${timeoutMs} ms`)), timeoutMs);
      this.waiters.push({ match: (m) => m.t === t, resolve: (m) => (clearTimeout(timer), resolve(m as Extract<ChildMessage, { t: T }>)) });
    });
  }

  /** Wait for the process to exit by itself, then kill it if it did not. */
  async exit(graceMs: number): Promise<void> {
    this.expectExit = true;
    if (this.exited) return;
    await new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, graceMs);
      this.child.once('exit', () => (clearTimeout(timer), resolve()));
    });
    await this.kill();
  }

  kill(): Promise<void> {
    this.expectExit = true;
    return new Promise((resolve) => {
      if (this.exited) return resolve();
      this.child.once('exit', () => resolve());
      this.child.kill('SIGKILL');
    });
  }
}

/**
 * 1P1D burst: a context server and a generation server as child processes, M requests at concurrency
 * N, each request optionally with one seeded fault, and the zero counters that matter: corrupted,
 * leaked blocks and stuck requests.
 */
export async function runBurst(o: BurstOptions): Promise<BurstReport> {
  const dir = mkdtempSync(join(tmpdir(), 'xferstate-burst-'));
  const delays = burstDelays(o.kvTransferTimeoutMs);
  // Room for every request in flight plus a quarter for quarantined leases.
  const poolBlocks = Math.ceil(o.blocksPerRequest * o.concurrency * 1.25) + o.blocksPerRequest;
  const base = { blockBytes: o.blockBytes, poolBlocks, backend: o.backend, progress: 'thread' as const, recvSlots: o.recvSlots, delays };
  const random = rng(o.seed);
  const reports = new Map<string, { context?: RequestReport; generation?: RequestReport }>();
  const submittedAt = new Map<string, number>();
  const onContext = new Set<string>();
  const faultsInjected: Record<string, number> = {};
  const stats: ServerStats[] = [];
  let finished = 0;
  let peerRestarts = 0;
  let wake: (() => void) | null = null;
  const traceParts: string[] = [];

  const onMessage = (role: 'context' | 'generation') => (m: ChildMessage) => {
    if (m.t === 'log') process.stderr.write(`${m.line}\n`);
    if (m.t === 'stats') stats.push(m.stats);
    if (m.t !== 'done') return;
    const entry = reports.get(m.report.id) ?? {};
    entry[role] = m.report;
    if (role === 'context') onContext.delete(m.report.id);
    reports.set(m.report.id, entry);
    if (entry.context && entry.generation) {
      finished++;
      o.onProgress?.(finished, o.requests);
      wake?.();
    }
  };

  const startContext = async (incarnation: number) => {
    const socketPath = join(dir, `ctx-${incarnation}.sock`);
    const tracePath = o.tracePath ? join(dir, `trace-ctx-${incarnation}.jsonl`) : undefined;
    if (tracePath) traceParts.push(tracePath);
    const p = new ServerProcess(onMessage('context'), () => wake?.());
    const config: ServerConfig = { ...base, role: 'context', name: `ctx-${incarnation}-${process.pid}`, socketPath, ...(tracePath ? { tracePath } : {}), ...(o.inspectUrl ? { inspectUrl: o.inspectUrl } : {}), ...(o.metricsPort !== undefined ? { metricsPort: o.metricsPort } : {}) };
    p.send({ t: 'init', config });
    await p.next('ready');
    return { p, socketPath };
  };

  let ctx = await startContext(0);
  const gen = new ServerProcess(onMessage('generation'), () => wake?.());
  const genTrace = o.tracePath ? join(dir, 'trace-gen.jsonl') : undefined;
  if (genTrace) traceParts.push(genTrace);
  gen.send({ t: 'init', config: { ...base, role: 'generation', name: `gen-${process.pid}`, socketPath: ctx.socketPath, ...(genTrace ? { tracePath: genTrace } : {}), ...(o.inspectUrl ? { inspectUrl: o.inspectUrl } : {}), ...(o.metricsPort !== undefined ? { metricsPort: o.metricsPort && o.metricsPort + 1 } : {}) } });
  const genReady = await gen.next('ready');
  ctx.p.send({ t: 'peer', metadata: genReady.metadata });

  const perRequestFaults = o.faults.filter((f) => f !== 'peer-kill');
  const killAt = o.faults.includes('peer-kill') ? Math.floor(o.requests / 3) : -1;
  const t0 = performance.now();
  let next = 0;
  const inFlight = () => next - finished;

  try {
    while (finished < o.requests) {
      while (next < o.requests && inFlight() < o.concurrency) {
        const id = `r${next}`;
        const faults: FaultName[] = [];
        if (perRequestFaults.length > 0 && random() < o.faultRate) faults.push(perRequestFaults[Math.floor(random() * perRequestFaults.length)]!);
        for (const f of faults) faultsInjected[f] = (faultsInjected[f] ?? 0) + 1;
        const spec: RequestSpec = { id, number: next + 1, blocks: o.blocksPerRequest, faults };
        submittedAt.set(id, Date.now());
        gen.send({ t: 'request', spec });
        ctx.p.send({ t: 'request', spec });
        onContext.add(id);
        next++;
        if (next === killAt) {
          // Kill the context server mid-transfer; its in-flight requests fail on the context side.
          await new Promise((r) => setTimeout(r, 2));
          await ctx.p.kill();
          faultsInjected['peer-kill'] = 1;
          for (const lost of onContext) onMessage('context')({ t: 'done', report: lostReport(lost) });
          reapStaleSegments();
          ctx = await startContext(++peerRestarts);
          ctx.p.send({ t: 'peer', metadata: genReady.metadata });
          gen.send({ t: 'peerRestarted', socketPath: ctx.socketPath });
        }
      }
      for (const [role, p] of [['context', ctx.p], ['generation', gen]] as const) {
        if (p.crashed) throw new Error(`the ${role} server crashed (${p.crashed}); its stderr is above`);
      }
      // Every request ends within its deadlines; a run that stops progressing is reported as stuck.
      const progressed = await new Promise<boolean>((resolve) => {
        const timer = setTimeout(() => resolve(false), delays.quiescenceTimeout + delays.kvTransferTimeout * 4 + 5000);
        wake = () => (clearTimeout(timer), (wake = null), resolve(true));
      });
      if (!progressed) break;
    }
    const wallMs = performance.now() - t0;
    ctx.p.send({ t: 'finish' });
    gen.send({ t: 'finish' });
    const drain = delays.quarantineMaxAge + 2 * delays.fenceTimeout + 10_000;
    await Promise.all([ctx.p.next('stats', drain).catch(() => null), gen.next('stats', drain).catch(() => null)]);
    if (o.tracePath) {
      writeFileSync(o.tracePath, '');
      for (const part of traceParts) if (existsSync(part)) appendFileSync(o.tracePath, readFileSync(part));
    }
    return summarize(o, reports, submittedAt, stats, wallMs, faultsInjected, peerRestarts);
  } finally {
    await Promise.all([ctx.p.exit(5000), gen.exit(5000)]);
    reapStaleSegments();
    rmSync(dir, { recursive: true, force: true });
  }
}

function lostReport(id: string): RequestReport {
  const now = Date.now();
  return { id, role: 'context', finalState: 'PROCESS_KILLED', outcome: 'failed', reason: 'peerKilled', corrupted: false, bytes: 0, logLines: 0, transitions: 0, startedAt: now, endedAt: now };
}

function summarize(
  o: BurstOptions,
  reports: Map<string, { context?: RequestReport; generation?: RequestReport }>,
  submittedAt: Map<string, number>,
  stats: ServerStats[],
  wallMs: number,
  faultsInjected: Record<string, number>,
  peerRestarts: number,
): BurstReport {
  let completed = 0;
  let cancelled = 0;
  let failed = 0;
  let corrupted = 0;
  let bytes = 0;
  const failedByReason: Record<string, number> = {};
  const latencies: number[] = [];
  const logLines: number[] = [];
  const transitions: number[] = [];
  for (const [id, r] of reports) {
    const g = r.generation;
    const c = r.context;
    if (!g || !c) continue;
    if (g.corrupted) corrupted++;
    logLines.push(g.logLines + c.logLines);
    transitions.push(g.transitions + c.transitions);
    latencies.push(Math.max(g.endedAt, c.endedAt) - (submittedAt.get(id) ?? g.startedAt));
    if (g.outcome === 'completed' && c.outcome === 'completed') {
      completed++;
      bytes += g.bytes;
    } else if (g.outcome === 'cancelled' || c.outcome === 'cancelled') cancelled++;
    else {
      failed++;
      const reason = g.outcome === 'failed' ? g.reason : c.reason;
      failedByReason[reason] = (failedByReason[reason] ?? 0) + 1;
    }
  }
  const stuckIds = new Set<string>();
  for (let i = 0; i < o.requests; i++) {
    const r = reports.get(`r${i}`);
    if (!r?.context || !r.generation) stuckIds.add(`r${i}`);
  }
  for (const s of stats) for (const id of s.stuck) if (!(s.role === 'context' && reports.get(id)?.context)) stuckIds.add(id);
  const sorted = [...latencies].sort((a, b) => a - b);
  const tis: BurstReport['timeInStateMs'] = {};
  for (const s of stats) for (const [k, [p50, p99, count]] of Object.entries(s.timeInState)) tis[`${s.role}/${k}`] = { p50, p99, count };
  const sum = (f: (s: ServerStats) => number) => stats.reduce((n, s) => n + f(s), 0);
  const cpu = (role: string) => Math.round(stats.filter((s) => s.role === role).reduce((n, s) => n + s.cpuUserMs + s.cpuSystemMs, 0));
  return {
    requests: o.requests,
    completed,
    cancelled,
    failed,
    failedByReason,
    corrupted,
    // A server that never reported stats (it was killed) lost its whole pool with its process.
    leakedBlocks: sum((s) => s.pool.heldBlocks),
    retiredBlocks: sum((s) => s.pool.retiredBlocks),
    stuck: stuckIds.size,
    quarantine: { entered: sum((s) => s.quarantine.entered), releasedByProof: sum((s) => s.quarantine.releasedByProof), releasedByFence: sum((s) => s.quarantine.releasedByFence) },
    logLinesPerRequest: { max: Math.max(0, ...logLines), mean: Number((logLines.reduce((a, b) => a + b, 0) / Math.max(1, logLines.length)).toFixed(1)) },
    transitionsPerRequest: { max: Math.max(0, ...transitions), mean: Number((transitions.reduce((a, b) => a + b, 0) / Math.max(1, transitions.length)).toFixed(1)) },
    timeInStateMs: tis,
    requestsPerSecond: Number((reports.size / (wallMs / 1000)).toFixed(1)),
    gbps: Number((bytes / (wallMs / 1000) / 1e9).toFixed(3)),
    latencyMs: { p50: Number(percentile(sorted, 50).toFixed(2)), p99: Number(percentile(sorted, 99).toFixed(2)) },
    wallMs: Math.round(wallMs),
    faultsInjected,
    peerRestarts,
    serverCpuMs: { context: cpu('context'), generation: cpu('generation') },
  };
}

export function parseFaults(list: string | undefined): FaultName[] {
  if (!list) return [];
  if (list === 'all') return [...FAULTS];
  const names = list.split(',').map((s) => s.trim()).filter(Boolean);
  for (const n of names) if (!(FAULTS as readonly string[]).includes(n)) throw new UsageError(`unknown fault '${n}'; known: ${FAULTS.join(', ')}, or all`);
  return names as FaultName[];
}
