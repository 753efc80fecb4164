// The inspector in the producer's own process: pass its `inspect` to the host (or to createActor).
// Run:  node docs/examples/inspector-in-process.mjs
import { EngineHost, transferHandleMachine } from 'xferstate';
import { startInspector } from 'xferstate/inspect';

const inspector = await startInspector({ port: 0 }); // 127.0.0.1, a free port
console.log(`inspector: ${inspector.url}`);
const host = new EngineHost({
  machines: { handle: transferHandleMachine },
  actions: { handle: { postTransfer() {}, abortTransfer() {}, releaseHandle() {} } },
  inspect: inspector.inspect, // every actor of the run
});
host.spawn('r1.handle', { handleId: 'r1', semantics: { canAbortInFlight: false, releaseInFlightQuiesces: false } });
host.send('r1.handle', { type: 'POST' });
inspector.flush();
const { actors } = await (await fetch(new URL('/api/actors', inspector.url))).json();
console.log(JSON.stringify({ actors: actors.map((a) => `${a.name} ${a.state}`), dropped: inspector.dropped() }));
host.stopAll();
await inspector.close(); // sockets, worker and server closed
