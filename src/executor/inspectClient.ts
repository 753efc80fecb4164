import type { InspectionEvent } from 'xstate';

/**
 * Forward a server's inspection events to an inspector over WebSocket (the @statelyai/inspect
 * protocol). Loaded only when --inspect is given, so a burst without it carries no socket.
 */
export async function connectInspector(url: string): Promise<(ev: InspectionEvent) => void> {
  const { createWebSocketInspector } = (await import('@statelyai/inspect')) as unknown as {
    createWebSocketInspector(o: { url: string }): { inspect: (ev: InspectionEvent) => void; stop(): void };
  };
  const inspector = createWebSocketInspector({ url });
  process.once('exit', () => inspector.stop());
  return (ev) => inspector.inspect(ev);
}
