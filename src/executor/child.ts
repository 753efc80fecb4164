import type { WriteStream } from 'node:fs';
import type { ChildMessage, ParentMessage } from './config.js';
import { ContextServer } from './contextServer.js';
import { GenerationServer } from './generationServer.js';
import { connectInspector } from './inspectClient.js';
import type { InspectClient } from './inspectClient.js';
import { serveMetrics } from '../metrics/index.js';

/**
 * A server process (context or generation), started by the burst harness with an IPC channel. It does
 * what the harness says and reports each request as it finishes; on 'finish' it waits (bounded) for
 * quarantined leases to resolve, reports its stats and exits.
 */
let server: ContextServer | GenerationServer | null = null;
let inspector: InspectClient | undefined;
const emit = (m: ChildMessage) => process.send?.(m);

/**
 * Tell the harness why this process stops, in one line, and exit. An XferError (the native layer refused:
 * a pool that does not fit, a peer that vanished) is the operator's to read; anything else is a bug and
 * its stack goes to the log as well.
 */
function fatal(phase: 'start' | 'run', err: unknown): void {
  const e = err instanceof Error ? err : new Error(String(err));
  if (e.name !== 'XferError') emit({ t: 'log', line: `server error: ${e.stack ?? e.message}` });
  const m: ChildMessage = { t: 'fatal', phase, message: e.message.split('\n')[0]! };
  // Exit once the IPC channel has carried the message out (or failed to: the harness is gone).
  if (process.send) process.send(m, undefined, {}, () => process.exit(3));
  else process.exit(3);
}

process.on('message', (raw: unknown) => {
  const m = raw as ParentMessage;
  void handle(m).catch((err: unknown) => fatal(m.t === 'init' ? 'start' : 'run', err));
});
process.on('uncaughtException', (err) => fatal(server ? 'run' : 'start', err));
// Ctrl-C signals the whole process group; the harness decides how the run ends and stops us itself.
process.on('SIGINT', () => {});
process.on('disconnect', () => {
  server?.close();
  process.exit(0);
});

async function handle(m: ParentMessage): Promise<void> {
  switch (m.t) {
    case 'init': {
      const c = m.config;
      inspector = c.inspectUrl ? await connectInspector(c.inspectUrl) : undefined;
      const inspect = inspector ? (ev: Parameters<InspectClient['inspect']>[0]) => inspector!.inspect(ev) : undefined;
      if (c.role === 'context') {
        const s = new ContextServer(c, emit, inspect);
        await s.listen();
        server = s;
      } else {
        const s = new GenerationServer(c, emit, inspect);
        await s.connect(c.socketPath);
        server = s;
      }
      // `ps` and /proc/PID/cmdline then say which server a process is (xferstate-ctx, xferstate-gen).
      process.title = c.role === 'context' ? 'xferstate-ctx' : 'xferstate-gen';
      if (server.metrics && c.metricsPort !== undefined) emit({ t: 'log', line: `metrics (${c.role}): ${(await serveMetrics(server.metrics.registry, { port: c.metricsPort })).url}` });
      emit({ t: 'ready', name: c.name, metadata: Buffer.from(server.agent.exportMetadata()).toString('base64') });
      return;
    }
    case 'peer':
      if (server instanceof ContextServer) server.loadPeer(new Uint8Array(Buffer.from(m.metadata, 'base64')));
      return;
    case 'peerRestarted':
      if (server instanceof GenerationServer) await server.connect(m.socketPath);
      return;
    case 'request':
      server?.submit(m.spec);
      return;
    case 'cancel':
      server?.cancel(m.id);
      return;
    case 'memory':
      emit({ t: 'memory', rssBytes: process.memoryUsage.rss() });
      return;
    case 'finish': {
      const s = server!;
      const bound = Date.now() + s.config.delays.quarantineMaxAge + 2 * s.config.delays.fenceTimeout + 2000;
      while (s.pendingLeases() > 0 && Date.now() < bound) await new Promise((r) => setTimeout(r, 10));
      emit({ t: 'stats', stats: s.stats() });
      s.close();
      await Promise.all([inspector?.flush(), traceFlushed(s)]);
      setImmediate(() => process.exit(0));
      return;
    }
  }
}

/**
 * close() ends the trace stream, but its last writes are still queued: exiting at once would cut the
 * trace's tail, and check-trace would (rightly) call the histories incomplete. The stream is the server's
 * own; ServerBase has no public way to await it yet, so this reads it by name, bounded to 5 s.
 */
function traceFlushed(s: ContextServer | GenerationServer): Promise<void> {
  const trace = (s as unknown as { trace?: WriteStream }).trace;
  if (!trace || trace.writableFinished || trace.destroyed) return Promise.resolve();
  return new Promise((resolve) => {
    const timer = setTimeout(resolve, 5000);
    const done = () => (clearTimeout(timer), resolve());
    trace.once('finish', done);
    trace.once('error', done);
  });
}
