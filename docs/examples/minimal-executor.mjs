// A minimal executor loop of someone else's, embedding xferstate's machines.
// Run it after `npm ci`:  node docs/examples/minimal-executor.mjs
//
// One process, two agents (a sender and a receiver). Each request gets a transferHandle actor for its
// WRITE and a blockLease actor for its source blocks; the engine (this file) provides the machines'
// named actions: native calls through routeNativeHandle, and block bookkeeping. Every third request is
// cancelled mid-flight; a cancelled request's blocks return to the pool only with proof of quiescence.
import { ActorHost, Agent, BlockPool, blockLeaseMachine, fillBlock, PatternChecker, routeNativeHandle, transferHandleMachine } from 'xferstate';

const BLOCK = 64 * 1024;
const REQUESTS = 24;
const sender = new Agent(`example-sender-${process.pid}`);
const receiver = new Agent(`example-receiver-${process.pid}`);
const src = new BlockPool(sender, BLOCK, 8);
const dst = new BlockPool(receiver, BLOCK, REQUESTS);
const receiverName = sender.loadRemoteMetadata(receiver.exportMetadata());
const checker = new PatternChecker(BLOCK);
const bindings = new Map();
const results = { completed: 0, cancelled: 0, verified: 0, quarantined: 0 };

const host = new ActorHost({
  machines: { handle: transferHandleMachine, lease: blockLeaseMachine },
  // Production deadlines would be seconds; an example wants them short.
  delays: { kvTransferTimeout: 2000, drainTimeout: 500, quarantineMaxAge: 500, fenceTimeout: 500 },
  route(h, actor, action) {
    const id = actor.split('.')[0];
    if (actor.endsWith('.handle')) return routeNativeHandle(h, actor, action, bindings.get(id));
    if (action.type === 'quarantineEntered') results.quarantined++;
    if (action.type === 'fencePeer') h.send(actor, { type: 'FENCE_CONFIRMED' }); // our own transfer: nothing else writes
  },
  onDone(h, actor, output) {
    // The handle ended: release its source blocks with the handle's proof (or none → quarantine).
    const id = actor.split('.')[0];
    h.send(`${id}.lease`, { type: 'RELEASE', proof: output.quiesced ? 'terminalStatus' : null });
    if (output.outcome === 'succeeded') {
      results.completed++;
      if (checker.verify(dst.view(dst.blocksOf(id)[0]), Number(id.slice(1)), 1, 0)) results.verified++;
    } else results.cancelled++;
  },
});

// The loop: admit requests while source blocks are free; give blocks back when their lease says so.
let next = 0;
while (results.completed + results.cancelled < REQUESTS) {
  while (next < REQUESTS && src.allocate(`r${next}`, 1)) {
    const id = `r${next++}`;
    host.spawn(`${id}.lease`, { leaseId: id });
    host.send(`${id}.lease`, { type: 'ALLOCATE' });
    fillBlock(src.view(src.blocksOf(id)[0]), Number(id.slice(1)), 1, 0);
    const target = dst.allocate(id, 1)[0];
    const handle = sender.createTransfer({
      op: 'WRITE',
      local: [{ region: src.region, offset: src.blocksOf(id)[0] * BLOCK, length: BLOCK }],
      remote: [{ regionId: dst.region.id, offset: target * BLOCK, length: BLOCK }],
      remoteAgent: receiverName,
    });
    bindings.set(id, { agent: sender, handle, posted: false });
    host.spawn(`${id}.handle`, { handleId: id, semantics: sender.semantics });
    host.send(`${id}.lease`, { type: 'EXPOSE' });
    host.send(`${id}.handle`, { type: 'POST' });
    if (next % 3 === 0) host.send(`${id}.handle`, { type: 'CANCEL' });
  }
  await new Promise((r) => setTimeout(r, 1));
  for (const name of host.names()) {
    if (name.endsWith('.lease') && host.in(name, 'free')) {
      src.giveBack(name.split('.')[0]);
      host.remove(name);
    }
  }
}
// Wait (bounded) for quarantined leases to be released by proof or fence.
for (let i = 0; i < 2000 && host.names().some((n) => n.endsWith('.lease') && !host.in(n, 'free')); i++) await new Promise((r) => setTimeout(r, 1));
const held = host.names().filter((n) => n.endsWith('.lease') && !host.in(n, 'free')).length;
console.log(JSON.stringify({ ...results, leasesStillHeld: held }));
host.stopAll();
sender.close();
receiver.close();
process.exitCode = results.verified === results.completed && held === 0 ? 0 : 1;
