import { fork } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, readFileSync, appendFileSync, existsSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { compiledEntry } from '../core/workerPool.js';
import { reapStaleSegments } from '../native/index.js';
import type { ChildMessage, FaultName, ParentMessage, RequestReport, RequestSpec, ServerConfig, ServerStats } from './config.js';
import { burstDelays, FAULTS } from './config.js';
import type { TraceMarker } from './trace.js';
import { OperationalError, UsageError, systemErrorText } from '../errors.js';

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
  /** Stop the burst early (Ctrl-C): runBurst then throws a BurstStoppedError with the counts so far. */
  signal?: AbortSignal;
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
  /**
   * Times each fault's point acted in the servers (from their stats; a context server killed by
   * peer-kill takes its counts with it). Injected says which requests carried a fault; fired, that it did something.
   */
  faultsFired: Record<string, number>;
  peerRestarts: number;
  serverCpuMs: { context: number; generation: number };
  /**
   * RSS of each server after the first 10 % of requests and after the last. A context server restarted
   * by peer-kill is measured from 10 % of requests after its restart, so both numbers are one process's.
   */
  memory: BurstMemory;
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
  const beside = new URL('./child.js', import.meta.url);
  const built = new URL('../../dist/src/executor/child.js', import.meta.url);
  const entry = compiledEntry(beside, built);
  if (entry === null) throw new OperationalError('serverStartFailed', `the server entry is not built: run 'npm run build' (looked for ${fileURLToPath(beside)} and ${fileURLToPath(built)})`);
  return entry;
}

type ServerRole = 'context' | 'generation';

/** What a failed write to a server's channel does: nothing; the server's 'exit' says how it ended. */
const ignoreSendError = (): void => {};

export class ServerProcess {
  readonly child: ChildProcess;
  private readonly waiters: Array<{ match: (m: ChildMessage) => boolean; resolve: (m: ChildMessage) => void; reject: (e: Error) => void }> = [];
  exited = false;

  /** Set when the process exits without being asked to (a crash): how it ended, in words. */
  crashed: string | null = null;
  /** The server's own last word before it stopped (its 'fatal' message), if it said one. */
  fatal: string | null = null;
  expectExit = false;

  constructor(
    readonly role: ServerRole,
    onMessage: (m: ChildMessage) => void,
    onCrash?: () => void,
  ) {
    const entry = serverEntry();
    // XFERSTATE_SERVER_NODE_ARGS passes flags to the server processes (e.g. --cpu-prof for profiling).
    const execArgv = process.env.XFERSTATE_SERVER_NODE_ARGS?.split(' ').filter(Boolean) ?? [];
    this.child = fork(entry, [], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'], serialization: 'advanced', execArgv });
    this.child.on('message', (raw) => {
      const m = raw as ChildMessage;
      if (m.t === 'fatal') this.fatal = m.message;
      // A server exits by itself once it has sent its stats: that exit is not a crash.
      if (m.t === 'stats') this.expectExit = true;
      for (const w of [...this.waiters]) if (w.match(m)) (this.waiters.splice(this.waiters.indexOf(w), 1), w.resolve(m));
      onMessage(m);
    });
    // A fork that cannot even start (EAGAIN, ENOMEM) reports here and then 'exit' or nothing at all: it
    // has no pid. A process that did start ends with 'exit', which says how; an error it raises on the
    // way (a write to its channel as it dies: EPIPE) is not how it ended. Taken for a failed start, such
    // an error once made a server killed by SIGKILL mid-burst read "could not be started (write EPIPE)".
    this.child.on('error', (err) => {
      if (this.exited || this.child.pid !== undefined) return;
      this.exited = true;
      this.crashed = `could not be started (${err.message})`;
      this.failWaiters();
      onCrash?.();
    });
    this.child.on('exit', (code, signal) => {
      this.exited = true;
      if (!this.expectExit) {
        this.crashed = signal ? `was killed by ${signal}` : `exited with code ${code ?? '-'}`;
        onCrash?.();
      }
      this.failWaiters();
    });
  }

  get pid(): number | undefined {
    return this.child.pid;
  }

  /** "the generation server (pid 123) was killed by SIGKILL", with the server's own message when it left one. */
  describeCrash(): string {
    return `the ${this.role} server (pid ${this.pid ?? '-'}) ${this.crashed ?? 'stopped'}${this.fatal ? `: ${this.fatal}` : ''}`;
  }

  private failWaiters(): void {
    for (const w of this.waiters.splice(0)) w.reject(new Error(`the ${this.role} server exited`));
  }

  send(m: ParentMessage): void {
    // A failed write (the process is dying) is left to 'exit' to report; with no callback it would be
    // an 'error' event.
    if (!this.exited && this.child.connected) this.child.send(m, undefined, undefined, ignoreSendError);
  }

  /** The next message of a kind; rejects at once when the process is gone or goes, else after timeoutMs. */
  next<T extends ChildMessage['t']>(t: T, timeoutMs = 30_000): Promise<Extract<ChildMessage, { t: T }>> {
    return new Promise((resolve, reject) => {
      if (this.exited) return reject(new Error(`the ${this.role} server exited`));
      const timer = setTimeout(() => {
        this.waiters.splice(this.waiters.findIndex((w) => w.resolve === done), 1);
        reject(new Error(`the ${this.role} server did not answer '${t}' within ${timeoutMs} ms`));
      }, timeoutMs);
      const done = (m: ChildMessage) => (clearTimeout(timer), resolve(m as Extract<ChildMessage, { t: T }>));
      this.waiters.push({ match: (m) => m.t === t, resolve: done, reject: (e) => (clearTimeout(timer), reject(e)) });
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

/** The burst stopped before its end (a server died, or it was interrupted): the error carries what was counted up to then. */
export class BurstStoppedError extends OperationalError {
  constructor(
    kind: 'serverDied' | 'interrupted' | 'terminated',
    message: string,
    readonly partial: PartialBurstReport,
  ) {
    super(kind, message);
  }
}

/** Resident set sizes of both servers, from the 10 % mark to the end of the requests (MB; null when not measured). */
export interface BurstMemory {
  context: { rssStartMB: number | null; rssEndMB: number | null };
  generation: { rssStartMB: number | null; rssEndMB: number | null };
}

/** What a run that stopped early can still say: the requests that finished, and where it stopped. */
export interface PartialBurstReport {
  /** server: the one that died, or null when the run was interrupted. */
  aborted: { server: ServerRole | null; cause: string; submitted: number; finished: number; inFlight: number };
  completed: number;
  cancelled: number;
  failed: number;
  failedByReason: Record<string, number>;
  corrupted: number;
  latencyMs: { p50: number; p99: number };
  wallMs: number;
  faultsInjected: Record<string, number>;
  peerRestarts: number;
}

/** Fail before the burst, not after it, when the trace cannot be written. */
function prepareTraceFile(path: string): void {
  try {
    writeFileSync(path, '');
  } catch (err) {
    throw new OperationalError('cannotWrite', `cannot write the trace to '${path}': ${systemErrorText(err)}`);
  }
}

/** Checks runBurst makes itself, for callers that do not come through the CLI. */
function checkOptions(o: BurstOptions): void {
  for (const [name, v, min] of [
    ['concurrency', o.concurrency, 1],
    ['requests', o.requests, 1],
    ['blockBytes', o.blockBytes, 64],
    ['blocksPerRequest', o.blocksPerRequest, 1],
    ['kvTransferTimeoutMs', o.kvTransferTimeoutMs, 10],
    ['recvSlots', o.recvSlots, 1],
  ] as const) {
    if (!Number.isSafeInteger(v) || v < min) throw new UsageError(`${name} must be an integer ≥ ${min}, got ${v}`);
  }
  if (o.blockBytes % 8 !== 0) throw new UsageError(`block size must be a multiple of 8 bytes (the verification pattern is an 8-byte word), got ${o.blockBytes}`);
}

const MB = (bytes: number | null) => (bytes === null ? null : Math.round((bytes / (1 << 20)) * 10) / 10);

/**
 * 1P1D burst: a context server and a generation server as child processes, M requests at concurrency
 * N, each request optionally with one seeded fault, and the zero counters that matter: corrupted,
 * leaked blocks and stuck requests. A server that does not start, or dies, ends the run at once with an
 * OperationalError (a BurstStoppedError carries the counts so far); nothing is left behind either way.
 */
export async function runBurst(o: BurstOptions): Promise<BurstReport> {
  checkOptions(o);
  if (o.tracePath) prepareTraceFile(o.tracePath);
  const dir = mkdtempSync(join(tmpdir(), 'xferstate-burst-'));
  const delays = burstDelays(o.kvTransferTimeoutMs);
  // Room for every request in flight plus a quarter for quarantined leases.
  const poolBlocks = Math.ceil(o.blocksPerRequest * o.concurrency * 1.25) + o.blocksPerRequest;
  // The burst report prints time in state: the servers keep it.
  const base = { blockBytes: o.blockBytes, poolBlocks, backend: o.backend, progress: 'thread' as const, recvSlots: o.recvSlots, delays, timeInState: true };
  const random = rng(o.seed);
  const reports = new Map<string, { context?: RequestReport; generation?: RequestReport }>();
  const submittedAt = new Map<string, number>();
  /** Requests given a user-cancel fault: a failure of theirs is counted as the cancel it was. */
  const userCancelled = new Set<string>();
  const onContext = new Set<string>();
  const faultsInjected: Record<string, number> = {};
  const stats: ServerStats[] = [];
  let finished = 0;
  let peerRestarts = 0;
  let wake: (() => void) | null = null;
  /** One trace file per server process, joined into o.tracePath at the end between begin/end records. */
  type TracePart = { path: string; process: string; server: ServerRole; p?: ServerProcess; ended?: 'killed' };
  const traceParts: TracePart[] = [];

  const onMessage = (role: ServerRole) => (m: ChildMessage) => {
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

  const servers: ServerProcess[] = [];
  /** Fork a server and wait for 'ready'; a server that exits or fails first is reported at once. */
  let firstCrash: ServerProcess | null = null;
  const startServer = async (role: ServerRole, config: ServerConfig, part: TracePart | null): Promise<{ p: ServerProcess; ready: Extract<ChildMessage, { t: 'ready' }> }> => {
    const p: ServerProcess = new ServerProcess(role, onMessage(role), () => {
      firstCrash ??= p;
      wake?.();
    });
    servers.push(p);
    if (part) part.p = p;
    p.send({ t: 'init', config });
    try {
      return { p, ready: await p.next('ready') };
    } catch (err) {
      if (!p.exited) await p.kill();
      const pool = `${config.poolBlocks} blocks × ${config.blockBytes} bytes = ${((config.poolBlocks * config.blockBytes) / 2 ** 30).toFixed(1)} GiB`;
      throw new OperationalError('serverStartFailed', `the ${role} server did not start (block pool ${pool}): ${p.fatal ?? p.crashed ?? (err as Error).message}`);
    }
  };

  const startContext = async (incarnation: number) => {
    const socketPath = join(dir, `ctx-${incarnation}.sock`);
    const tracePath = o.tracePath ? join(dir, `trace-ctx-${incarnation}.jsonl`) : undefined;
    const part: TracePart | null = tracePath ? { path: tracePath, process: `ctx-${incarnation}`, server: 'context' } : null;
    if (part) traceParts.push(part);
    const config: ServerConfig = { ...base, role: 'context', name: `ctx-${incarnation}-${process.pid}`, socketPath, ...(tracePath ? { tracePath } : {}), ...(o.inspectUrl ? { inspectUrl: o.inspectUrl } : {}), ...(o.metricsPort !== undefined ? { metricsPort: o.metricsPort } : {}) };
    const { p } = await startServer('context', config, part);
    return { p, socketPath, part };
  };

  const rss: Record<ServerRole, { start: Promise<number | null> | null; end: Promise<number | null> | null }> = { context: { start: null, end: null }, generation: { start: null, end: null } };
  const askRss = (p: ServerProcess): Promise<number | null> => {
    p.send({ t: 'memory' });
    return p.next('memory', 10_000).then((m) => m.rssBytes, () => null);
  };
  const memoryMark = Math.max(1, Math.ceil(o.requests / 10));
  let contextStartedAt = 0;

  let ok = false;
  let stoppedBy: ServerProcess | null = null;
  const t0 = performance.now();
  let next = 0;
  try {
    let ctx = await startContext(0);
    const genTrace = o.tracePath ? join(dir, 'trace-gen.jsonl') : undefined;
    const genPart: TracePart | null = genTrace ? { path: genTrace, process: 'gen', server: 'generation' } : null;
    if (genPart) traceParts.push(genPart);
    const { p: gen, ready: genReady } = await startServer('generation', { ...base, role: 'generation', name: `gen-${process.pid}`, socketPath: ctx.socketPath, ...(genTrace ? { tracePath: genTrace } : {}), ...(o.inspectUrl ? { inspectUrl: o.inspectUrl } : {}), ...(o.metricsPort !== undefined ? { metricsPort: o.metricsPort && o.metricsPort + 1 } : {}) }, genPart);
    ctx.p.send({ t: 'peer', metadata: genReady.metadata });

    const perRequestFaults = o.faults.filter((f) => f !== 'peer-kill');
    const killAt = o.faults.includes('peer-kill') ? Math.floor(o.requests / 3) : -1;
    const inFlight = () => next - finished;
    // The first to die is the cause: its peer may die of it a moment later (e.g. on a lost connection).
    const crashed = () => firstCrash;

    const onAbort = () => wake?.();
    o.signal?.addEventListener('abort', onAbort);
    while (finished < o.requests && !o.signal?.aborted && !(stoppedBy = crashed())) {
      while (next < o.requests && inFlight() < o.concurrency) {
        const id = `r${next}`;
        const faults: FaultName[] = [];
        if (perRequestFaults.length > 0 && random() < o.faultRate) faults.push(perRequestFaults[Math.floor(random() * perRequestFaults.length)]!);
        for (const f of faults) faultsInjected[f] = (faultsInjected[f] ?? 0) + 1;
        if (faults.some((f) => f.startsWith('cancel'))) userCancelled.add(id);
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
          if (ctx.part) ctx.part.ended = 'killed';
          faultsInjected['peer-kill'] = 1;
          for (const lost of onContext) onMessage('context')({ t: 'done', report: lostReport(lost) });
          reapStaleSegments();
          ctx = await startContext(++peerRestarts);
          // Growth is measured within one process: the new one's start mark is 10 % of requests from now.
          rss.context.start = null;
          contextStartedAt = finished;
          ctx.p.send({ t: 'peer', metadata: genReady.metadata });
          gen.send({ t: 'peerRestarted', socketPath: ctx.socketPath });
        }
      }
      if (rss.generation.start === null && finished >= memoryMark) rss.generation.start = askRss(gen);
      if (rss.context.start === null && finished >= contextStartedAt + memoryMark) rss.context.start = askRss(ctx.p);
      if (finished >= o.requests || crashed() || o.signal?.aborted) continue;
      // Every request ends within its deadlines; a run that stops progressing is reported as stuck.
      const progressed = await new Promise<boolean>((resolve) => {
        const timer = setTimeout(() => resolve(false), delays.quiescenceTimeout + delays.kvTransferTimeout * 4 + 5000);
        wake = () => (clearTimeout(timer), (wake = null), resolve(true));
      });
      if (!progressed) break;
    }
    o.signal?.removeEventListener('abort', onAbort);
    const wallMs = performance.now() - t0;
    if (!stoppedBy && !o.signal?.aborted) {
      rss.context.end = askRss(ctx.p);
      rss.generation.end = askRss(gen);
      await Promise.all([rss.context.end, rss.generation.end]);
      ctx.p.send({ t: 'finish' });
      gen.send({ t: 'finish' });
      const drain = delays.quarantineMaxAge + 2 * delays.fenceTimeout + 10_000;
      await Promise.all([ctx.p.next('stats', drain).catch(() => null), gen.next('stats', drain).catch(() => null)]);
      stoppedBy = crashed();
    }
    const where = `after ${finished} of ${o.requests} requests had finished (${next - finished} in flight); partial report on stdout`;
    if (o.signal?.aborted) {
      const reason: unknown = o.signal.reason;
      const sig = typeof reason === 'string' && reason.startsWith('SIG') ? reason : 'SIGINT';
      const cause = `interrupted by ${sig}`;
      throw new BurstStoppedError(sig === 'SIGTERM' ? 'terminated' : 'interrupted', `${cause} ${where}`, summarizePartial(null, cause, reports, submittedAt, userCancelled, next, finished, wallMs, faultsInjected, peerRestarts));
    }
    if (stoppedBy) {
      const partial = summarizePartial(stoppedBy.role, stoppedBy.describeCrash(), reports, submittedAt, userCancelled, next, finished, wallMs, faultsInjected, peerRestarts);
      throw new BurstStoppedError('serverDied', `${stoppedBy.describeCrash()} ${where}`, partial);
    }
    const report = summarize(o, reports, submittedAt, userCancelled, stats, wallMs, faultsInjected, peerRestarts);
    const [cs, ce, gs, ge] = await Promise.all([rss.context.start, rss.context.end, rss.generation.start, rss.generation.end]);
    report.memory = { context: { rssStartMB: MB(cs ?? null), rssEndMB: MB(ce ?? null) }, generation: { rssStartMB: MB(gs ?? null), rssEndMB: MB(ge ?? null) } };
    ok = true;
    return report;
  } finally {
    // A normal end lets the servers exit by themselves; after a failure nobody waits for them.
    await Promise.all(servers.map((p) => (ok ? p.exit(5000) : p.kill())));
    reapStaleSegments();
    // The trace so far is kept even when the run failed: it is what shows how.
    if (o.tracePath) joinTrace(o.tracePath, traceParts.map((t) => ({ ...t, ended: t.ended ?? (ok ? 'finished' : t.p?.crashed ? 'died' : 'killed') })));
    rmSync(dir, { recursive: true, force: true });
  }
}

function lostReport(id: string): RequestReport {
  const now = Date.now();
  return { id, role: 'context', finalState: 'PROCESS_KILLED', outcome: 'failed', reason: 'peerKilled', corrupted: false, bytes: 0, logLines: 0, transitions: 0, startedAt: now, endedAt: now };
}

/**
 * Join the servers' trace files into one, each between a begin and an end record (its process, how it
 * ended, how many records it wrote), so that check-trace can tell a whole trace from a cut one. A killed
 * process may have been stopped inside a line: that torn line is dropped and the end record says so.
 */
function joinTrace(path: string, parts: Array<{ path: string; process: string; server: ServerRole; ended: 'finished' | 'killed' | 'died' }>): void {
  try {
    writeFileSync(path, '');
    for (const part of parts) {
      let text = existsSync(part.path) ? readFileSync(part.path, 'utf8') : '';
      const torn = text.length > 0 && !text.endsWith('\n');
      if (torn) text = text.slice(0, text.lastIndexOf('\n') + 1);
      const records = text === '' ? 0 : text.split('\n').length - 1;
      const begin: TraceMarker = { kind: 'begin', process: part.process, server: part.server };
      const end: TraceMarker = { kind: 'end', process: part.process, server: part.server, records, ended: part.ended, ...(torn ? { torn } : {}) };
      appendFileSync(path, `${JSON.stringify(begin)}\n${text}${JSON.stringify(end)}\n`);
    }
  } catch {
    // Checked writable before the run; a failure now must not hide the run's own outcome.
  }
}

type Reports = Map<string, { context?: RequestReport; generation?: RequestReport }>;

/** Outcome counts over the requests both servers have reported. */
function tally(reports: Reports, submittedAt: Map<string, number>, userCancelled: ReadonlySet<string>) {
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
    // The servers report what the machines decided; a request the harness cancelled on purpose that
    // ended failed (the cancel raced an error) is counted with the cancels it was made to be.
    const outcome = (x: RequestReport) => (x.outcome === 'failed' && userCancelled.has(id) ? 'cancelled' : x.outcome);
    logLines.push(g.logLines + c.logLines);
    transitions.push(g.transitions + c.transitions);
    latencies.push(Math.max(g.endedAt, c.endedAt) - (submittedAt.get(id) ?? g.startedAt));
    if (outcome(g) === 'completed' && outcome(c) === 'completed') {
      completed++;
      bytes += g.bytes;
    } else if (outcome(g) === 'cancelled' || outcome(c) === 'cancelled') cancelled++;
    else {
      failed++;
      const reason = outcome(g) === 'failed' ? g.reason : c.reason;
      failedByReason[reason] = (failedByReason[reason] ?? 0) + 1;
    }
  }
  const sorted = [...latencies].sort((a, b) => a - b);
  const latencyMs = { p50: Number(percentile(sorted, 50).toFixed(2)), p99: Number(percentile(sorted, 99).toFixed(2)) };
  return { completed, cancelled, failed, corrupted, bytes, failedByReason, latencyMs, logLines, transitions };
}

function summarizePartial(
  server: ServerRole | null,
  cause: string,
  reports: Reports,
  submittedAt: Map<string, number>,
  userCancelled: ReadonlySet<string>,
  submitted: number,
  finished: number,
  wallMs: number,
  faultsInjected: Record<string, number>,
  peerRestarts: number,
): PartialBurstReport {
  const t = tally(reports, submittedAt, userCancelled);
  return {
    aborted: { server, cause, submitted, finished, inFlight: submitted - finished },
    completed: t.completed,
    cancelled: t.cancelled,
    failed: t.failed,
    failedByReason: t.failedByReason,
    corrupted: t.corrupted,
    latencyMs: t.latencyMs,
    wallMs: Math.round(wallMs),
    faultsInjected,
    peerRestarts,
  };
}

function summarize(
  o: BurstOptions,
  reports: Reports,
  submittedAt: Map<string, number>,
  userCancelled: ReadonlySet<string>,
  stats: ServerStats[],
  wallMs: number,
  faultsInjected: Record<string, number>,
  peerRestarts: number,
): BurstReport {
  const { completed, cancelled, failed, corrupted, bytes, failedByReason, latencyMs, logLines, transitions } = tally(reports, submittedAt, userCancelled);
  const stuckIds = new Set<string>();
  for (let i = 0; i < o.requests; i++) {
    const r = reports.get(`r${i}`);
    if (!r?.context || !r.generation) stuckIds.add(`r${i}`);
  }
  for (const s of stats) for (const id of s.stuck) if (!(s.role === 'context' && reports.get(id)?.context)) stuckIds.add(id);
  const tis: BurstReport['timeInStateMs'] = {};
  for (const s of stats) for (const [k, [p50, p99, count]] of Object.entries(s.timeInState)) tis[`${s.role}/${k}`] = { p50, p99, count };
  const sum = (f: (s: ServerStats) => number) => stats.reduce((n, s) => n + f(s), 0);
  const cpu = (role: string) => Math.round(stats.filter((s) => s.role === role).reduce((n, s) => n + s.cpuUserMs + s.cpuSystemMs, 0));
  const faultsFired: Record<string, number> = {};
  for (const s of stats) for (const [f, n] of Object.entries(s.faultsFired ?? {})) faultsFired[f] = (faultsFired[f] ?? 0) + n;
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
    logLinesPerRequest: { max: logLines.reduce((a, b) => Math.max(a, b), 0), mean: Number((logLines.reduce((a, b) => a + b, 0) / Math.max(1, logLines.length)).toFixed(1)) },
    transitionsPerRequest: { max: transitions.reduce((a, b) => Math.max(a, b), 0), mean: Number((transitions.reduce((a, b) => a + b, 0) / Math.max(1, transitions.length)).toFixed(1)) },
    timeInStateMs: tis,
    requestsPerSecond: Number((reports.size / (wallMs / 1000)).toFixed(1)),
    gbps: Number((bytes / (wallMs / 1000) / 1e9).toFixed(3)),
    latencyMs,
    wallMs: Math.round(wallMs),
    faultsInjected,
    faultsFired,
    peerRestarts,
    serverCpuMs: { context: cpu('context'), generation: cpu('generation') },
    memory: { context: { rssStartMB: null, rssEndMB: null }, generation: { rssStartMB: null, rssEndMB: null } },
  };
}

export function parseFaults(list: string | undefined): FaultName[] {
  if (!list) return [];
  if (list === 'all') return [...FAULTS];
  const names = list.split(',').map((s) => s.trim()).filter(Boolean);
  for (const n of names) if (!(FAULTS as readonly string[]).includes(n)) throw new UsageError(`unknown fault '${n}'; known: ${FAULTS.join(', ')}, or all`);
  return names as FaultName[];
}
