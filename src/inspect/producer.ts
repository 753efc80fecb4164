import { randomUUID } from 'node:crypto';
import type { InspectionEvent } from 'xstate';
import WebSocket from 'ws';

/**
 * A producer: forwards a process's xstate inspection events to an inspector over WebSocket in the
 * @statelyai/inspect wire format (its `createInspector` does the conversion; this owns the socket and
 * fixes three things for a multi-process executor):
 * - names: an actor is named by its `id`, else its `systemId` (Stately's client sends only `actorRef.id`,
 *   so an actor created with just a systemId shows as `blockLease x:0`);
 * - session ids: xstate's (`x:12`) are per process and restart at `x:0`, so each is qualified with this
 *   producer's own random id — two processes (or one restarted) never merge their timelines;
 * - no bogus first entry: Stately's client reads the actor's snapshot a macrotask after creation, when it
 *   may already be a later state; the `@xstate.actor` message carries none, and the first
 *   `@xstate.snapshot` (caused by `xstate.init`) gives the real initial state.
 * The socket is open before the caller starts its actors, the queue is bounded (events beyond it are
 * counted as dropped, never block the producer), and `flush()` waits for what was sent.
 */
export interface InspectProducer {
  /** Pass as `createActor(…, { inspect })` (or ActorHost / EngineHost `inspect`). */
  inspect(ev: InspectionEvent): void;
  /** This producer's id: the prefix of every session id it sends. */
  readonly producerId: string;
  /** Wait (bounded) for what was queued to be sent, then close the socket. */
  flush(timeoutMs?: number): Promise<void>;
  dropped(): number;
}

export interface InspectProducerOptions {
  /** Unsent bytes beyond which events are dropped (and counted); default 8 MiB. */
  maxBufferedBytes?: number;
  /** Prefix of this producer's session ids; default a random 8-hex id. */
  producerId?: string;
}

type Converted = Record<string, unknown> & { type?: string; sessionId?: string };

export async function connectInspector(url: string, opts: InspectProducerOptions = {}): Promise<InspectProducer> {
  const maxBuffered = opts.maxBufferedBytes ?? 8 * 1024 * 1024;
  const producerId = opts.producerId ?? randomUUID().slice(0, 8);
  const ws = new WebSocket(url);
  await new Promise<void>((resolve, reject) => {
    ws.once('open', () => resolve());
    ws.once('error', reject);
  });
  ws.on('error', () => {});
  let dropped = 0;
  /** Names of actors whose `@xstate.actor` message is still to be converted, by raw session id. */
  const names = new Map<string, string>();
  const { createInspector } = (await import('@statelyai/inspect')) as unknown as {
    createInspector(adapter: { send(ev: unknown): void }): { inspect: { next(ev: InspectionEvent): void } };
  };
  const inspector = createInspector({
    send(ev) {
      const e = ev as Converted;
      if (e.type === '@xstate.actor' && typeof e.sessionId === 'string') {
        const name = names.get(e.sessionId);
        names.delete(e.sessionId);
        if (name !== undefined) e.name = name;
        e.snapshot = { status: 'active' };
      }
      if (ws.readyState !== WebSocket.OPEN || ws.bufferedAmount > maxBuffered) {
        dropped++;
        return;
      }
      for (const k of ['sessionId', 'rootId', 'parentId', 'sourceId']) if (typeof e[k] === 'string') e[k] = `${producerId}/${e[k] as string}`;
      ws.send(JSON.stringify(e));
    },
  });
  return {
    producerId,
    inspect(ev) {
      if (ev.type === '@xstate.actor') {
        const ref = ev.actorRef as unknown as { id: string; sessionId: string; options?: { systemId?: string } };
        const name = ref.id !== ref.sessionId ? ref.id : ref.options?.systemId;
        if (name !== undefined) names.set(ref.sessionId, name);
      }
      inspector.inspect.next(ev);
    },
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
