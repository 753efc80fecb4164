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

process.on('message', (raw: unknown) => {
  void handle(raw as ParentMessage).catch((err: unknown) => {
    emit({ t: 'log', line: `server error: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}` });
    process.exit(3);
  });
});
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
    case 'finish': {
      const s = server!;
      const bound = Date.now() + s.config.delays.quarantineMaxAge + 2 * s.config.delays.fenceTimeout + 2000;
      while (s.pendingLeases() > 0 && Date.now() < bound) await new Promise((r) => setTimeout(r, 10));
      emit({ t: 'stats', stats: s.stats() });
      s.close();
      await inspector?.flush();
      setImmediate(() => process.exit(0));
      return;
    }
  }
}
