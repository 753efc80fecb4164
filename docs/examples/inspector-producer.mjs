// A producer in its own process streaming its actors to an inspector over WebSocket.
// Run:  node docs/examples/inspector-producer.mjs ws://127.0.0.1:7777   (an inspector started with `npx xferstate inspect`)
// or with no URL: it starts an inspector of its own, streams to it, and prints what the inspector saw.
import { blockLeaseMachine, EngineHost } from 'xferstate';
import { connectInspector, startInspector } from 'xferstate/inspect';

const own = process.argv[2] ? null : await startInspector({ port: 0 });
const producer = await connectInspector(process.argv[2] ?? own.wsUrl);
const host = new EngineHost({
  machines: { lease: blockLeaseMachine },
  actions: { lease: { quarantineEntered() {}, quarantineReleased() {}, fencePeer() {}, retireBlocks() {}, returnBlocks() {}, withdrawFence() {} } },
  inspect: producer.inspect, // each actor is named by its id, `r1.lease`; session ids carry producer.producerId
});
host.spawn('r1.lease', { leaseId: 'r1' });
host.send('r1.lease', { type: 'ALLOCATE' });
host.send('r1.lease', { type: 'EXPOSE' });
host.send('r1.lease', { type: 'RELEASE', proof: null }); // no proof: quarantined
await producer.flush(); // before the process exits: what was sent has left the socket

if (own) {
  const get = async (path) => (await fetch(new URL(path, own.url))).json();
  let actors = [];
  let timeline = { entries: [] };
  // The inspector ingests on its own timer: wait (bounded) until it has seen the actor's four states.
  for (let i = 0; i < 200 && timeline.entries.filter((e) => e.kind === 'state').length < 4; i++) {
    await new Promise((r) => setTimeout(r, 10));
    ({ actors } = await get('/api/actors'));
    if (actors.length > 0) timeline = await get(`/api/actors/${encodeURIComponent(actors[0].id)}/timeline`);
  }
  console.log(JSON.stringify({ actors: actors.map((a) => `${a.name} ${a.id}`), states: timeline.entries.filter((e) => e.kind === 'state').map((e) => `${e.state} (${e.event})`) }));
  await own.close();
}
host.stopAll();
