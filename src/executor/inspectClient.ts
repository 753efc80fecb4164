import type { InspectionEvent } from 'xstate';
import WebSocket from 'ws';

/**
 * Forward a server's inspection events to an inspector over WebSocket in the @statelyai/inspect
 * format (its `createInspector` does the conversion; this owns the socket). The socket is open before
 * the server starts, the queue is bounded (events beyond it are counted as dropped, never block the
 * executor), and `flush()` waits for what was sent before the process exits.
 */
export interface InspectClient {
  inspect(ev: InspectionEvent): void;
  flush(timeoutMs?: number): Promise<void>;
  dropped(): number;
}

const MAX_BUFFERED_BYTES = 8 * 1024 * 1024;

export async function connectInspector(url: string): Promise<InspectClient> {
  const ws = new WebSocket(url);
  await new Promise<void>((resolve, reject) => {
    ws.once('open', () => resolve());
    ws.once('error', reject);
  });
  ws.on('error', () => {});
  let dropped = 0;
  const { createInspector } = (await import('@statelyai/inspect')) as unknown as {
    createInspector(adapter: { send(ev: unknown): void }): { inspect: { next(ev: InspectionEvent): void } };
  };
  const inspector = createInspector({
    send(ev) {
      if (ws.readyState !== WebSocket.OPEN || ws.bufferedAmount > MAX_BUFFERED_BYTES) {
        dropped++;
        return;
      }
      // xstate session ids ("x:12") are per process: qualify them so two servers' actors never merge.
      const e = ev as Record<string, unknown>;
      for (const k of ['sessionId', 'rootId', 'parentId', 'sourceId']) if (typeof e[k] === 'string') e[k] = `${process.pid}/${e[k]}`;
      ws.send(JSON.stringify(e));
    },
  });
  return {
    inspect: (ev) => inspector.inspect.next(ev),
    dropped: () => dropped,
    async flush(timeoutMs = 2000) {
      // The adapter converts events a macrotask later; then wait for the socket to drain.
      await new Promise((r) => setTimeout(r, 10));
      const until = Date.now() + timeoutMs;
      while (ws.readyState === WebSocket.OPEN && ws.bufferedAmount > 0 && Date.now() < until) await new Promise((r) => setTimeout(r, 5));
      ws.close();
    },
  };
}
