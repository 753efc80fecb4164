import type { Socket } from 'node:net';
import type { InspectionEvent } from 'xstate';
import type { GenerationReceiveOutput, PromiseState, QuiescenceProof, TransferOutcome } from '../../machines/index.js';
import { blockLeaseMachine, generationReceiveMachine, requestLifecycleMachine } from '../../machines/index.js';
import type { EmittedAction } from '../explore/world.js';
import type { Notification } from '../native/index.js';
import type { ChildMessage, RequestSpec, ServerConfig } from './config.js';
import { ControlChannel, connectControl } from './control.js';
import type { ControlLink, ControlMessage } from './control.js';
import { PatternChecker } from './pattern.js';
import { ServerBase } from './serverBase.js';
import type { LoopStep } from './serverBase.js';
import type { Platform } from '../core/platform.js';
import { requestOf, roleOf } from '../explore/world.js';

/** What the context server's sync notification carries: the request and the pattern its blocks hold. */
interface SyncPayload {
  id: string;
  number: number;
  epoch: number;
}

interface GenerationRequest {
  spec: RequestSpec;
  blocks: number[] | null;
  /** The receiver's proof for its blocks (from its output); null = none. */
  proof: QuiescenceProof | null;
  slotHeld: boolean;
  slotReleases: number;
  recvStarted: boolean;
}

/**
 * The generation (decode) server: per request a requestLifecycle (generation role), a
 * generationReceive and a blockLease over its KV blocks — the memory the context server writes into.
 * Receive slots bound the receives in flight. Data is verified against the pattern the ready signal
 * announced before a receive may succeed; a mismatch is corruption and fails the request.
 */
export class GenerationServer extends ServerBase {
  private readonly reqs = new Map<string, GenerationRequest>();
  private readonly waitingForBlocks: string[] = [];
  private readonly slotQueue: string[] = [];
  private freeSlots: number;
  private peer: ControlLink | null = null;
  private readonly checker: PatternChecker;
  private readonly pendingFences = new Set<string>();
  private readonly reorderHold: SyncPayload[] = [];
  corruptedBlocks = 0;
  /** Requests whose blocks no longer held their own pattern when served to decode. */
  servedMismatches = 0;
  /** Requests whose actors the loop may have to step (receive worker, checker, decode). */
  private readonly live = new Set<string>();

  constructor(config: ServerConfig, emit: (m: ChildMessage) => void, inspect?: (ev: InspectionEvent) => void, platform?: Platform) {
    super(config, { lifecycle: requestLifecycleMachine, recv: generationReceiveMachine, lease: blockLeaseMachine }, emit, inspect, platform);
    this.freeSlots = config.recvSlots;
    this.checker = new PatternChecker(config.blockBytes);
    this.agent.on('notification', (n) => this.onNotification(n));
  }

  async connect(socketPath: string): Promise<void> {
    const socket: Socket = await connectControl(socketPath);
    this.attachPeer(new ControlChannel(socket, (m) => this.onControl(m), () => this.onPeerGone()));
  }

  /** Use this link to the context peer; messages come in through receiveControl, its loss through peerGone. */
  attachPeer(link: ControlLink): void {
    this.peer = link;
  }

  receiveControl(m: ControlMessage): void {
    this.onControl(m);
  }

  /** The context peer's process is gone (its control link closed). */
  peerGone(): void {
    this.onPeerGone();
  }

  submit(spec: RequestSpec): void {
    this.requests.set(spec.id, { spec, startedAt: this.platform.clock.now(), transitions: 0, logLines: 0, corrupted: false, bytes: 0, reported: false });
    this.reqs.set(spec.id, { spec, blocks: null, proof: null, slotHeld: false, slotReleases: 0, recvStarted: false });
    this.spawn(`${spec.id}.lifecycle`, { requestId: spec.id, role: 'generation' });
    this.live.add(spec.id);
    this.waitingForBlocks.push(spec.id);
    this.schedule();
  }

  cancel(id: string): void {
    if (this.host.has(`${id}.lifecycle`)) this.host.send(`${id}.lifecycle`, { type: 'CANCEL' });
    this.schedule();
  }

  /** The context peer died: it can write nothing any more, so every pending fence is confirmed. */
  private onPeerGone(): void {
    this.peer = null;
    for (const id of this.pendingFences) if (this.host.has(`${id}.lease`)) this.host.send(`${id}.lease`, { type: 'FENCE_CONFIRMED' });
    for (const id of this.pendingFences) queueMicrotask(() => this.afterLeaseStep(`${id}.lease`));
    this.pendingFences.clear();
  }

  private onControl(m: ControlMessage): void {
    const r = this.reqs.get(m.id);
    if (m.t === 'ready' && r) {
      if (r.spec.faults.includes('ready-lost')) return;
      if (this.host.in(`${m.id}.recv`, { worker: 'awaitingReady' })) {
        this.host.send(`${m.id}.recv`, { type: 'READY_SIGNAL', ready: m.ready });
        if (m.ready && r.spec.faults.includes('cancel-mid-transfer')) this.cancel(m.id);
      } else if (!m.ready) this.prove(m.id, 'notReadyBeforeWrite');
    } else if (m.t === 'fenceAck' && this.pendingFences.delete(m.id)) {
      this.host.send(`${m.id}.lease`, { type: 'FENCE_CONFIRMED' });
      queueMicrotask(() => this.afterLeaseStep(`${m.id}.lease`));
    }
    this.schedule();
  }

  /** Late proof for a lease quarantined on behalf of a request. */
  private prove(id: string, proof: QuiescenceProof): void {
    const lease = `${id}.lease`;
    if (this.host.in(lease, 'quarantined') || this.host.in(lease, 'fencing')) {
      this.host.send(lease, { type: 'QUIESCENCE_PROOF', proof });
      queueMicrotask(() => this.afterLeaseStep(lease));
    }
  }

  private onNotification(n: Notification): void {
    let sync: SyncPayload;
    try {
      sync = JSON.parse(new TextDecoder().decode(n.bytes)) as SyncPayload;
    } catch {
      return; // not ours
    }
    const id = sync.id;
    const r = this.reqs.get(id);
    if (!r) return;
    const f = r.spec.faults;
    if (f.includes('notif-drop')) return;
    if (f.includes('notif-delay')) return void setTimeout(() => this.deliverSync(sync), Math.max(1, Math.round(this.config.delays.kvTransferTimeout / 4)));
    if (f.includes('notif-reorder')) {
      // Hold it until the next notification of another request arrives (or a short while passes).
      this.reorderHold.push(sync);
      setTimeout(() => this.releaseReordered(), 5);
      return;
    }
    if (f.includes('cancel-after-data')) {
      // The data is in place; cancel before the notification is processed, then process it.
      this.cancel(id);
      return void setImmediate(() => this.deliverSync(sync));
    }
    this.releaseReordered();
    this.deliverSync(sync);
    if (f.includes('notif-dup')) this.deliverSync(sync);
  }

  private releaseReordered(): void {
    while (this.reorderHold.length > 0) this.deliverSync(this.reorderHold.pop()!);
  }

  /**
   * The sync notification: the data of this request is in place. Verify every byte against what the
   * notification says the blocks carry, then tell the receiver — which remembers it if the ready
   * signal has not arrived yet (the two travel on different channels).
   */
  private deliverSync(sync: SyncPayload): void {
    const { id } = sync;
    const r = this.reqs.get(id);
    if (!r) return;
    const recv = `${id}.recv`;
    const waiting = this.host.in(recv, { worker: 'receiving' }) || this.host.in(recv, { worker: 'awaitingReady' });
    let verified = false;
    if (r.blocks) {
      // Checked against what this side knows (its request number, its pool's epoch), never the sender's word.
      verified = this.verifyBlocks(id, r);
      if (!verified && waiting) {
        this.requests.get(id)!.corrupted = true;
        this.corruptedBlocks++;
      }
      if (verified) this.requests.get(id)!.bytes = r.blocks.length * this.pool.blockBytes;
    }
    // Corrupt data is never served: it counts as a notification that did not bring the data.
    if (waiting) this.host.send(recv, { type: 'SYNC_WAIT_ENDED', arrived: verified });
    else this.prove(id, 'terminalAndSync');
    this.schedule();
  }

  /** Every byte of the request's blocks is its own pattern: request number and this pool's epoch. */
  private verifyBlocks(id: string, r: GenerationRequest): boolean {
    const epoch = this.pool.epochOf(id);
    return r.blocks !== null && epoch !== undefined && r.blocks.every((b, i) => this.checker.verify(this.pool.view(b), r.spec.number, epoch, i));
  }

  protected route(actor: string, a: EmittedAction): void {
    const id = requestOf(actor)!;
    const role = roleOf(actor);
    const r = this.reqs.get(id);
    const p = a.params;
    if (role === 'lease') {
      if (!this.routeLeaseMetrics(a) && a.type === 'fencePeer') {
        if (this.peer) {
          this.pendingFences.add(id);
          this.peer.send({ t: 'fence', id });
        } else this.host.send(actor, { type: 'FENCE_CONFIRMED' });
      }
      queueMicrotask(() => this.afterLeaseStep(actor));
      return;
    }
    if (!r) return;
    switch (`${role}/${a.type}`) {
      case 'lifecycle/startGenerationReceive':
        this.host.send(`${id}.lease`, { type: 'EXPOSE' });
        r.recvStarted = true;
        this.spawn(`${id}.recv`, { requestId: id });
        if (r.spec.faults.includes('cancel-queued')) this.cancel(id);
        return;
      case 'lifecycle/cancelSide':
        return this.host.send(`${id}.recv`, { type: 'CANCEL' });
      case 'lifecycle/freeResources':
        // The receiver's own proof decides; a request that never started receiving exposed nothing.
        this.host.send(`${id}.lease`, { type: 'RELEASE', proof: !p.proof ? null : r.recvStarted ? r.proof : 'neverExposed' });
        queueMicrotask(() => this.afterLeaseStep(`${id}.lease`));
        return this.finish(id);
      case 'recv/requestSlot':
        this.slotQueue.push(id);
        return this.schedule();
      case 'recv/withdrawSlotRequest': {
        const i = this.slotQueue.indexOf(id);
        if (i >= 0) this.slotQueue.splice(i, 1);
        return;
      }
      case 'recv/sendRequestInfo':
        if (r.spec.faults.includes('cancel-owned')) this.cancel(id);
        return this.peer?.send({ t: 'info', id, remote: r.blocks!.map((b) => ({ regionId: this.pool.region.id, offset: b * this.pool.blockBytes, length: this.pool.blockBytes })), epoch: this.pool.epochOf(id)! });
      case 'recv/releaseSlot':
        r.slotReleases++;
        if (r.slotHeld) {
          r.slotHeld = false;
          this.freeSlots++;
        }
        r.proof = (p.proof as QuiescenceProof | null) ?? null;
        return this.schedule();
      case 'recv/reportOutcome': {
        const promise = p.promise as PromiseState;
        const outcome = p.outcome as TransferOutcome;
        if (promise === 'value') return this.host.send(`${id}.lifecycle`, { type: 'RECV_COMPLETE' });
        return this.host.send(`${id}.lifecycle`, { type: 'RECV_FAILED', reason: outcome === 'cancelled' || outcome === 'timedOut' ? outcome : 'transferFailed' });
      }
    }
  }

  protected onDone(actor: string, output: unknown): void {
    const id = requestOf(actor)!;
    if (actor.endsWith('.recv')) {
      const r = this.reqs.get(id);
      if (r) r.proof = (output as GenerationReceiveOutput).proof;
      if (this.host.has(`${id}.lifecycle`)) this.host.send(`${id}.lifecycle`, { type: 'SIDE_QUIESCENT', proof: true });
      else {
        // Its request already finished (failed closed): nothing waits for it any more.
        queueMicrotask(() => this.host.remove(actor));
        this.live.delete(id);
      }
    }
    this.schedule();
  }

  private finish(id: string): void {
    queueMicrotask(() => {
      const f = this.finalState(id);
      if (!f) return;
      const { state, reason } = f;
      const e = this.requests.get(id)!;
      this.report(id, {
        finalState: state,
        outcome: state === 'GENERATION_COMPLETE' && !e.corrupted ? 'completed' : reason === 'cancelled' || e.spec.faults.some((f) => f.startsWith('cancel')) ? 'cancelled' : 'failed',
        reason: e.corrupted ? 'corrupted' : reason,
      });
      this.host.remove(`${id}.lifecycle`);
      // A receiver still running (the request failed closed) finishes on its own and is dropped then.
      if (this.host.done(`${id}.recv`) || !this.host.has(`${id}.recv`)) {
        this.host.remove(`${id}.recv`);
        this.live.delete(id);
      }
      this.schedule();
    });
  }

  protected iterate(only?: LoopStep): boolean {
    let more = false;
    const does = (k: LoopStep) => only === undefined || only === k;
    // Admission: schedule requests whose KV blocks fit.
    while (does('admit') && this.waitingForBlocks.length > 0) {
      const id = this.waitingForBlocks[0]!;
      if (!this.host.in(`${id}.lifecycle`, 'DISAGG_GENERATION_INIT')) {
        this.waitingForBlocks.shift();
        continue;
      }
      const r = this.reqs.get(id)!;
      const blocks = this.pool.allocate(id, r.spec.blocks);
      if (!blocks) break;
      this.waitingForBlocks.shift();
      r.blocks = blocks;
      this.spawn(`${id}.lease`, { leaseId: id });
      this.host.send(`${id}.lease`, { type: 'ALLOCATE' });
      this.host.send(`${id}.lifecycle`, { type: 'SCHEDULED' });
      more = true;
    }
    // Receive slots, first come first served.
    while (does('slot') && this.freeSlots > 0 && this.slotQueue.length > 0) {
      const id = this.slotQueue.shift()!;
      const r = this.reqs.get(id);
      if (!r || !this.host.in(`${id}.recv`, { worker: 'awaitingSlot' })) continue;
      this.freeSlots--;
      r.slotHeld = true;
      this.host.send(`${id}.recv`, { type: 'SLOT_GRANTED' });
      more = true;
    }
    for (const id of this.live) {
      const recv = `${id}.recv`;
      const s = this.host.actor(recv);
      if (s) {
        const v = s.value as { worker: unknown; future: unknown };
        if (does('worker') && v.worker === 'queued') (this.host.send(recv, { type: 'WORKER_POP' }), (more = true));
        if (does('poll') && v.future === 'pending' && s.context.promise !== 'pending') (this.host.send(recv, { type: 'STATUS_POLL' }), (more = true));
      }
      // Decoding is simulated: it starts and ends on the next iterations.
      const lc = `${id}.lifecycle`;
      const state = this.host.actor(lc)?.value;
      if (!does('decode')) continue;
      if (state === 'DISAGG_GENERATION_TRANS_COMPLETE') {
        // Verified again when served, not only at receipt: a late write in between is corruption.
        const r = this.reqs.get(id);
        if (r && !this.verifyBlocks(id, r)) {
          this.requests.get(id)!.corrupted = true;
          this.servedMismatches++;
        }
        this.host.send(lc, { type: 'DECODE_START' });
        more = true;
      }
      else if (state === 'GENERATION_IN_PROGRESS') (this.host.send(lc, { type: 'DECODE_DONE' }), (more = true));
    }
    return more;
  }

  /** Receive slots held right now and slot releases per request (S9 accounting, for tests). */
  slotAccounting(): { free: number; total: number; doubleReleases: number } {
    let doubleReleases = 0;
    for (const r of this.reqs.values()) if (r.slotReleases > 1) doubleReleases++;
    return { free: this.freeSlots, total: this.config.recvSlots, doubleReleases };
  }

  override close(): void {
    this.peer?.close();
    super.close();
  }
}
