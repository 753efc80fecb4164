import type { InspectionEvent } from 'xstate';

/**
 * Forward a server's inspection events to an inspector over WebSocket (the @statelyai/inspect
 * protocol). Loaded only when --inspect is given, so a burst without it carries no socket.
 */
export async function connectInspector(url: string): Promise<(ev: InspectionEvent) => void> {
  const { createWebSocketInspector } = (await import('@statelyai/inspect')) as unknown as {
    createWebSocketInspector(o: { url: string }): { inspect: { next(ev: InspectionEvent): void } | ((ev: InspectionEvent) => void); stop(): void };
  };
  const inspector = createWebSocketInspector({ url });
  process.once('exit', () => inspector.stop());
  const target = inspector.inspect;
  return typeof target === 'function' ? target : (ev) => target.next(ev);
}
