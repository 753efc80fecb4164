import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { Worker } from 'node:worker_threads';
import type { AnyStateMachine, InspectionEvent } from 'xstate';
import { createMachine } from 'xstate';
import type { WebSocket } from 'ws';
import { WebSocketServer } from 'ws';
import { OperationalError, UsageError, systemErrorText } from '../errors.js';
import { BoundedQueue } from './buffer.js';
import type { CounterexampleResult } from './counterexamples.js';
import { counterexampleCatalog } from './counterexamples.js';
import type { DiagramEntry } from './diagrams.js';
import { diagramEntries, machineToSvg } from './diagrams.js';
import type { Ingested, StatelyInspectionMessage, TimelineEntry } from './model.js';
import { ActorTable } from './model.js';

export interface InspectorOptions {
  /** TCP port; 0 (the default) picks a free one. */
  port?: number;
  /** Interface to bind. Defaults to 127.0.0.1: the page shows request ids and states, so it is not exposed unless asked. */
  host?: string;
  /** Inspection events waiting to be processed; beyond this they are dropped and counted (default 10 000). */
  maxBufferedEvents?: number;
  /** Timeline entries kept per actor (ring buffer, default 200). */
  timelinePerActor?: number;
  /** Actors kept in the table; the oldest finished ones are evicted first (default 10 000). */
  maxActors?: number;
  /** Timeline entries queued per page; beyond this they are dropped for that page and counted (default 1 000). */
  maxQueuedPerClient?: number;
  /** A page whose socket has more than this many bytes unsent is skipped until it catches up (default 1 MiB). */
  clientHighWaterBytes?: number;
  /** How often queued events are processed and pushed to pages, in ms (default 50). */
  flushIntervalMs?: number;
  /**
   * Also forward every event to Stately's hosted inspector through @statelyai/inspect's Sky inspector
   * (needs internet; it prints a stately.ai link). Off by default; never used by the tests.
   */
  stately?: boolean;
}

export interface InspectorStats {
  /** Inspection events accepted and processed. */
  received: number;
  /** Inspection events dropped because the inspector fell behind (queue full). */
  droppedIngest: number;
  /** Timeline entries dropped for pages that did not keep up (summed over every page ever connected). */
  droppedClients: number;
  /** Actors evicted from the table (maxActors). */
  evicted: number;
  actors: number;
  pages: number;
  producers: number;
  startedAt: number;
}

export interface Inspector {
  /** http://host:port/ — the page. Producers connect their @statelyai/inspect WebSocket to the same host:port. */
  url: string;
  /** WebSocket URL for `createWebSocketInspector({ url })` producers in other processes. */
  wsUrl: string;
  port: number;
  /** xstate's inspection observer: `createActor(logic, { inspect })`. O(1), never throws, never blocks. */
  inspect: (ev: InspectionEvent) => void;
  /** Events dropped so far: ingest drops plus per-page drops. */
  dropped(): number;
  stats(): InspectorStats;
  /** Process queued events and push them to pages now (tests use it to avoid waiting on the flush timer). */
  flush(): void;
  /** Resolves once no page is connected any more (after at least one connected) — for `--exit-on-close`. */
  pagesGone(): Promise<void>;
  /** Close every socket, the worker and the server. Idempotent. */
  close(): Promise<void>;
}

interface StatelyForwarder {
  inspect: { next(ev: InspectionEvent): void };
  adapter?: { send(ev: unknown): void };
  stop(): void;
}

interface PageClient {
  ws: WebSocket;
  dirty: Set<string>;
  selected: string | null;
  entries: BoundedQueue<{ actor: string; entry: TimelineEntry }>;
}

const VIEWER_PATH = '/viewer';

export async function startInspector(options: InspectorOptions = {}): Promise<Inspector> {
  const host = options.host ?? '127.0.0.1';
  const port = options.port ?? 0;
  if (!Number.isInteger(port) || port < 0 || port > 65_535) throw new UsageError(`port must be an integer in 0..65535, got ${port}`);
  const flushMs = options.flushIntervalMs ?? 50;
  const highWater = options.clientHighWaterBytes ?? 1 << 20;
  const maxQueuedPerClient = options.maxQueuedPerClient ?? 1000;
  const ingest = new BoundedQueue<Ingested>(options.maxBufferedEvents ?? 10_000);
  const pages = new Set<PageClient>();
  const producers = new Set<WebSocket>();
  let droppedClients = 0;
  let closed = false;
  let everHadPage = false;
  const pagesGoneWaiters: Array<() => void> = [];
  const startedAt = Date.now();

  const diagrams = new DiagramRegistry();
  const table = new ActorTable(diagrams, { timelinePerActor: options.timelinePerActor ?? 200, maxActors: options.maxActors ?? 10_000 }, (actorId, entry) => {
    for (const p of pages) {
      p.dirty.add(actorId);
      if (entry && p.selected === actorId && !p.entries.offer({ actor: actorId, entry })) droppedClients++;
    }
  });

  const stats = (): InspectorStats => ({
    received: table.received,
    droppedIngest: ingest.dropped,
    droppedClients,
    evicted: table.evicted,
    actors: table.size,
    pages: pages.size,
    producers: producers.size,
    startedAt,
  });

  let timer: NodeJS.Timeout | null = null;
  const schedule = () => {
    if (timer || closed) return;
    timer = setTimeout(flush, flushMs);
    timer.unref();
  };

  function flush(): void {
    if (timer) clearTimeout(timer);
    timer = null;
    for (const item of ingest.drain()) table.apply(item);
    const now = Date.now();
    for (const p of pages) {
      if (p.ws.readyState !== p.ws.OPEN) continue;
      if (p.dirty.size === 0 && p.entries.length === 0) continue;
      // Backpressure: a page that is not reading keeps its (bounded) backlog; the producer is never held up.
      if (p.ws.bufferedAmount > highWater) {
        schedule();
        continue;
      }
      const actors = [...p.dirty].map((id) => table.summary(id)).filter((a) => a !== null);
      const removed = [...p.dirty].filter((id) => table.summary(id) === null);
      p.dirty.clear();
      send(p.ws, { type: 'update', now, stats: { ...stats(), pageDropped: p.entries.dropped }, actors, removed, entries: p.entries.take(500) });
      if (p.entries.length > 0) schedule();
    }
  }

  // Forwarding to Stately's hosted inspector, only when asked (it needs internet).
  let stately: StatelyForwarder | null = null;
  if (options.stately) {
    const mod = await import('@statelyai/inspect');
    let warned = false;
    const onerror = (e: unknown) => {
      // PartySocket retries on its own; one line is enough.
      if (!warned) console.error(`stately inspector: cannot reach Stately (${(e as { message?: string })?.message || 'connection failed'}); retrying in the background`);
      warned = true;
    };
    stately = mod.createSkyInspector({ onerror }) as unknown as StatelyForwarder;
  }

  const inspect = (ev: InspectionEvent): void => {
    // Microsteps and actions are not part of the @statelyai/inspect protocol; skip them before any work.
    if (closed || (ev.type !== '@xstate.actor' && ev.type !== '@xstate.event' && ev.type !== '@xstate.snapshot')) return;
    if (ingest.offer({ src: 'xstate', ev, t: Date.now() })) schedule();
    if (stately) {
      try {
        stately.inspect.next(ev);
      } catch {
        // Forwarding is best effort and must never reach the producer.
      }
    }
  };

  const ingestWire = (data: unknown) => {
    let msg: unknown;
    try {
      msg = JSON.parse(String(data));
    } catch {
      return;
    }
    for (const m of Array.isArray(msg) ? msg : [msg]) {
      const t = (m as { type?: unknown } | null)?.type;
      if (t !== '@xstate.actor' && t !== '@xstate.event' && t !== '@xstate.snapshot') continue;
      if (ingest.offer({ src: 'wire', msg: m as StatelyInspectionMessage, t: Date.now() })) schedule();
      stately?.adapter?.send(m);
    }
  };

  const counterexamples = new CounterexampleService();
  const assets = await loadAssets();

  const server = createServer((req, res) => {
    handle(req, res).catch((e: unknown) => {
      if (!res.headersSent) res.writeHead(500, { 'content-type': 'text/plain' });
      res.end(String((e as Error)?.message ?? e));
    });
  });

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://localhost');
    const path = url.pathname;
    if (req.method !== 'GET') return text(res, 405, 'GET only');
    if (path === '/' || path === '/index.html') return raw(res, 200, 'text/html; charset=utf-8', assets['index.html']);
    if (path === '/app.js') return raw(res, 200, 'text/javascript; charset=utf-8', assets['app.js']);
    if (path === '/app.css') return raw(res, 200, 'text/css; charset=utf-8', assets['app.css']);
    if (path === '/favicon.ico') return raw(res, 204, 'image/x-icon', '');
    if (path === '/api/machines') return json(res, 200, diagrams.list());
    if (path.startsWith('/diagrams/') && path.endsWith('.svg')) {
      const key = decodeURIComponent(path.slice('/diagrams/'.length, -'.svg'.length));
      const svg = await diagrams.svg(key);
      return svg === null ? text(res, 404, `no diagram '${key}'`) : raw(res, 200, 'image/svg+xml', svg);
    }
    if (path === '/api/actors') {
      flush();
      return json(res, 200, { now: Date.now(), stats: stats(), actors: table.summaries() });
    }
    const tl = /^\/api\/actors\/([^/]+)\/timeline$/.exec(path);
    if (tl) {
      const t = table.timeline(decodeURIComponent(tl[1]!));
      return t ? json(res, 200, t) : text(res, 404, 'no such actor');
    }
    if (path === '/api/counterexamples') return json(res, 200, counterexampleCatalog());
    if (path === '/api/counterexample') {
      const scenario = url.searchParams.get('scenario') ?? '';
      const variant = url.searchParams.get('variant') ?? '';
      if (!counterexampleCatalog().some((c) => c.scenario === scenario && c.variant === variant)) return text(res, 404, `no regression variant '${variant}' in scenario '${scenario}'`);
      return json(res, 200, await counterexamples.get(scenario, variant));
    }
    return text(res, 404, 'not found');
  }

  const wss = new WebSocketServer({ noServer: true, maxPayload: 16 << 20 });
  server.on('upgrade', (req, socket, head) => {
    if (closed) return socket.destroy();
    wss.handleUpgrade(req, socket, head, (ws) => {
      const path = new URL(req.url ?? '/', 'http://localhost').pathname;
      if (path === VIEWER_PATH) attachPage(ws);
      else attachProducer(ws);
    });
  });

  function attachProducer(ws: WebSocket): void {
    producers.add(ws);
    ws.on('message', ingestWire);
    ws.on('close', () => producers.delete(ws));
    ws.on('error', () => producers.delete(ws));
  }

  function attachPage(ws: WebSocket): void {
    flush();
    const p: PageClient = { ws, dirty: new Set(), selected: null, entries: new BoundedQueue(maxQueuedPerClient) };
    pages.add(p);
    everHadPage = true;
    send(ws, { type: 'hello', now: Date.now(), stats: { ...stats(), pageDropped: 0 }, actors: table.summaries() });
    ws.on('message', (data) => {
      let msg: { type?: string; id?: string | null };
      try {
        msg = JSON.parse(String(data)) as typeof msg;
      } catch {
        return;
      }
      if (msg.type === 'select') {
        p.selected = typeof msg.id === 'string' ? msg.id : null;
        const t = p.selected ? table.timeline(p.selected) : null;
        send(ws, { type: 'timeline', id: p.selected, ...(t ?? { entries: [], total: 0, overwritten: 0 }) });
      }
    });
    const gone = () => {
      if (!pages.delete(p)) return;
      if (pages.size === 0 && everHadPage) for (const w of pagesGoneWaiters.splice(0)) w();
    };
    ws.on('close', gone);
    ws.on('error', gone);
  }

  try {
    await listen(server, port, host);
  } catch (err) {
    // Nothing started so far may outlive the failure (a worker, Stately's socket would keep the process up).
    await counterexamples.close();
    stately?.stop();
    wss.close();
    throw err;
  }
  const boundPort = (server.address() as AddressInfo).port;
  const hostForUrl = host.includes(':') ? `[${host}]` : host;

  let closing: Promise<void> | null = null;
  return {
    url: `http://${hostForUrl}:${boundPort}/`,
    wsUrl: `ws://${hostForUrl}:${boundPort}`,
    port: boundPort,
    inspect,
    dropped: () => ingest.dropped + droppedClients,
    stats,
    flush,
    pagesGone: () =>
      new Promise<void>((resolve) => {
        if (closed || (everHadPage && pages.size === 0)) resolve();
        else pagesGoneWaiters.push(resolve);
      }),
    close() {
      closing ??= (async () => {
        closed = true;
        if (timer) clearTimeout(timer);
        timer = null;
        for (const p of pages) p.ws.terminate();
        for (const ws of producers) ws.terminate();
        pages.clear();
        producers.clear();
        for (const w of pagesGoneWaiters.splice(0)) w();
        await counterexamples.close();
        stately?.stop();
        await new Promise<void>((resolve) => wss.close(() => resolve()));
        server.closeAllConnections();
        await new Promise<void>((resolve) => server.close(() => resolve()));
      })();
      return closing;
    },
  };
}

/** Listen, or fail with one line that names the address and why (in use, not permitted, no such address). */
function listen(server: Server, port: number, host: string): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    const fail = (err: unknown) => {
      const e = err as { code?: string };
      const why = e.code === 'EACCES' ? `permission denied${port < 1024 ? ' (ports below 1024 need privileges)' : ''}` : e.code === 'ENOTFOUND' || e.code === 'EAI_AGAIN' ? `unknown host` : systemErrorText(err);
      reject(new OperationalError('portUnavailable', `cannot listen on ${host}:${port}: ${why}${e.code === 'EADDRINUSE' ? ' (another process has it; pick another --port, or 0 for a free one)' : ''}`));
    };
    server.once('error', fail);
    server.listen(port, host, () => {
      server.off('error', fail);
      resolve();
    });
  });
}

function send(ws: WebSocket, msg: unknown): void {
  try {
    ws.send(JSON.stringify(msg));
  } catch {
    // A socket closing under us is not the producer's problem.
  }
}

function json(res: ServerResponse, status: number, body: unknown): void {
  raw(res, status, 'application/json; charset=utf-8', JSON.stringify(body));
}

function text(res: ServerResponse, status: number, body: string): void {
  raw(res, status, 'text/plain; charset=utf-8', body);
}

function raw(res: ServerResponse, status: number, type: string, body: string): void {
  res.writeHead(status, { 'content-type': type, 'cache-control': 'no-store' });
  res.end(body);
}

/** The page's files ship in src/inspect/page/ (tsc does not copy them to dist/, so dist looks there too). */
async function loadAssets(): Promise<Record<'index.html' | 'app.js' | 'app.css', string>> {
  const here = fileURLToPath(new URL('./page/', import.meta.url));
  const candidates = [here, here.replace(/[\\/]dist[\\/]src[\\/]inspect[\\/]/, '/src/inspect/')];
  const dir = candidates.find((d) => existsSync(`${d}/index.html`));
  if (!dir) throw new Error(`inspector page assets not found in ${candidates.join(' or ')}`);
  const [html, js, css] = await Promise.all(['index.html', 'app.js', 'app.css'].map((f) => readFile(`${dir}/${f}`, 'utf8')));
  return { 'index.html': html!, 'app.js': js!, 'app.css': css! };
}

/**
 * Diagrams the page can ask for: the production machines and regression variants (rendered on first
 * request and cached), plus machines first seen at run time — in process (their own definition) or over
 * the wire (rebuilt from the @statelyai/inspect `definition` JSON).
 */
class DiagramRegistry {
  private readonly entries = new Map<string, { meta: Omit<DiagramEntry, 'machine'>; machine: AnyStateMachine }>();
  private readonly svgs = new Map<string, Promise<string>>();
  private readonly byConfig = new Map<unknown, string>();

  constructor() {
    for (const e of diagramEntries({ variants: true })) {
      const { machine, ...meta } = e;
      this.entries.set(e.key, { meta, machine });
      if (!this.byConfig.has(machine.config)) this.byConfig.set(machine.config, e.key);
    }
  }

  list(): Array<Omit<DiagramEntry, 'machine'> & { svg: string }> {
    return [...this.entries.values()].map((e) => ({ ...e.meta, svg: `/diagrams/${encodeURIComponent(e.meta.key)}.svg` }));
  }

  /** Identity of the config first (survives `machine.provide()`), then the production machine with that id. */
  forMachine(machine: AnyStateMachine): string {
    const byConfig = this.byConfig.get(machine.config);
    if (byConfig) return byConfig;
    const prod = this.entries.get(machine.id);
    if (prod && prod.meta.kind === 'production') return machine.id;
    const key = `runtime.${machine.id}`;
    if (!this.entries.has(key)) {
      this.entries.set(key, { meta: { key, id: machine.id, kind: 'variant' }, machine });
      this.byConfig.set(machine.config, key);
    }
    return key;
  }

  forDefinition(machineId: string, definition: string | undefined): string | null {
    const prod = this.entries.get(machineId);
    if (prod && prod.meta.kind === 'production') return machineId;
    const variant = [...this.entries.values()].find((e) => e.meta.id === machineId);
    if (variant) return variant.meta.key;
    if (!definition) return null;
    const key = `runtime.${machineId}`;
    if (this.entries.has(key)) return key;
    try {
      const machine = createMachine(JSON.parse(definition) as never) as unknown as AnyStateMachine;
      this.entries.set(key, { meta: { key, id: machineId, kind: 'variant' }, machine });
      return key;
    } catch {
      return null;
    }
  }

  machineFor(key: string): AnyStateMachine | null {
    return this.entries.get(key)?.machine ?? null;
  }

  svg(key: string): Promise<string> | null {
    const e = this.entries.get(key);
    if (!e) return null;
    let p = this.svgs.get(key);
    if (!p) {
      p = machineToSvg(e.machine);
      this.svgs.set(key, p);
    }
    return p;
  }
}

/**
 * Explorer runs for the counterexample viewer, in a worker thread so a multi-second exploration never
 * stalls the producer's event loop. Results are cached per combination.
 */
class CounterexampleService {
  private worker: Worker | null = null;
  private nextId = 1;
  private readonly pending = new Map<number, { resolve(r: CounterexampleResult): void; reject(e: Error): void }>();
  private readonly cache = new Map<string, Promise<CounterexampleResult>>();

  get(scenario: string, variant: string): Promise<CounterexampleResult> {
    const key = `${scenario}\u0000${variant}`;
    let p = this.cache.get(key);
    if (!p) {
      p = this.run(scenario, variant);
      p.catch(() => this.cache.delete(key));
      this.cache.set(key, p);
    }
    return p;
  }

  private run(scenario: string, variant: string): Promise<CounterexampleResult> {
    const w = this.ensureWorker();
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      w.postMessage({ id, scenario, variant });
    });
  }

  private ensureWorker(): Worker {
    if (this.worker) return this.worker;
    // Built: the sibling .js. From source (vitest, tsx): the .ts, loaded through tsx's API inside the worker.
    let w: Worker;
    if (import.meta.url.endsWith('.ts')) {
      const entry = new URL('./counterexampleWorker.ts', import.meta.url).href;
      // tsx's ESM entry (its `import` export); the CommonJS one cannot load the ESM half from a worker.
      const tsx = pathToFileURL(join(dirname(createRequire(import.meta.url).resolve('tsx/package.json')), 'dist/esm/api/index.mjs')).href;
      w = new Worker(`import(${JSON.stringify(tsx)}).then(({ tsImport }) => tsImport(${JSON.stringify(entry)}, ${JSON.stringify(entry)}))`, { eval: true });
    } else {
      w = new Worker(new URL('./counterexampleWorker.js', import.meta.url));
    }
    w.unref();
    w.on('message', (m: { id: number; result?: CounterexampleResult; error?: string }) => {
      const p = this.pending.get(m.id);
      if (!p) return;
      this.pending.delete(m.id);
      if (m.error !== undefined) p.reject(new Error(m.error));
      else p.resolve(m.result!);
    });
    const fail = (e: Error) => {
      for (const p of this.pending.values()) p.reject(e);
      this.pending.clear();
      this.worker = null;
    };
    w.on('error', fail);
    w.on('exit', (code) => fail(new Error(`counterexample worker exited (${code})`)));
    this.worker = w;
    return w;
  }

  async close(): Promise<void> {
    const w = this.worker;
    this.worker = null;
    if (w) await w.terminate();
  }
}
