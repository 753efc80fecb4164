import type { Server, Socket } from 'node:net';
import type { InspectionEvent } from 'xstate';
import type { ContextSendOutput, PromiseState, TransferHandleOutput, TransferOutcome } from '../../machines/index.js';
import { blockLeaseMachine, contextSendMachine, requestLifecycleMachine, transferHandleMachine } from '../../machines/index.js';
import type { EmittedAction } from '../explore/world.js';
import type { TransferHandle } from '../native/index.js';
import type { ChildMessage, RequestSpec, ServerConfig } from './config.js';
import { ControlChannel, listenControl } from './control.js';
import type { ControlLink, ControlMessage } from './control.js';
import { routeNativeHandle } from './nativeHandle.js';
import type { NativeHandleBinding } from './nativeHandle.js';
import { fillBlock } from './pattern.js';
import { ServerBase } from './serverBase.js';
import type { LoopStep } from './serverBase.js';
import type { Platform } from '../core/platform.js';
import { requestOf, roleOf } from '../explore/world.js';

interface ContextRequest {
  spec: RequestSpec;
  blocks: number[] | null;
  epoch: number;
  remote: ControlMessage & { t: 'info' } | null;
  native: TransferHandle | null;
  binding: NativeHandleBinding | null;
}

/**
 * The context (prefill) server: per request a requestLifecycle (context role), a contextSend, one
 * transferHandle for its WRITE and a blockLease for its source blocks, all driven by the executor loop
 * (sender worker steps, status-checker polls) and by the generation peer over the control channel.
 */
export class ContextServer extends ServerBase {
  private readonly reqs = new Map<string, ContextRequest>();
  private readonly waitingForBlocks: RequestSpec[] = [];
  /** Request infos that arrived before the request did (the peer asked first). */
  private readonly earlyInfo = new Map<string, ControlMessage & { t: 'info' }>();
  private readonly finishedIds = new Set<string>();
  /** contextSend actors alive: the loop's worker steps and polls look only at these. */
  private readonly sends = new Set<string>();
  private peer: ControlLink | null = null;
  private server: Server | null = null;
  private remoteAgent = '';

  constructor(config: ServerConfig, emit: (m: ChildMessage) => void, inspect?: (ev: InspectionEvent) => void, platform?: Platform) {
    super(config, { lifecycle: requestLifecycleMachine, send: contextSendMachine, handle: transferHandleMachine, lease: blockLeaseMachine }, emit, inspect, platform);
  }

  async listen(): Promise<void> {
    this.server = await listenControl(this.config.socketPath, (socket: Socket) => {
      this.peer?.close();
      this.attachPeer(new ControlChannel(socket, (m) => this.onControl(m), () => {}));
    });
  }

  /** Use this link to the generation peer (a new one replaces the old). Messages come in through receiveControl. */
  attachPeer(link: ControlLink): void {
    this.peer?.close();
    this.peer = link;
  }

  /** A control message from the generation peer. */
  receiveControl(m: ControlMessage): void {
    this.onControl(m);
  }

  loadPeer(metadata: Uint8Array): void {
    this.remoteAgent = this.agent.loadRemoteMetadata(metadata);
  }

  submit(spec: RequestSpec): void {
    this.requests.set(spec.id, { spec, startedAt: this.platform.clock.now(), transitions: 0, logLines: 0, corrupted: false, bytes: 0, reported: false });
    this.reqs.set(spec.id, { spec, blocks: null, epoch: 0, remote: null, native: null, binding: null });
    this.waitingForBlocks.push(spec);
    this.admit();
  }

  cancel(id: string): void {
    if (this.host.has(`${id}.lifecycle`)) this.host.send(`${id}.lifecycle`, { type: 'CANCEL' });
    this.schedule();
  }

  /** Prefill: requests wait for blocks (admission), then fill them and become ready to send. */
  private admit(): void {
    while (this.waitingForBlocks.length > 0) {
      const spec = this.waitingForBlocks[0]!;
      const blocks = this.pool.allocate(spec.id, spec.blocks);
      if (!blocks) return;
      this.waitingForBlocks.shift();
      const r = this.reqs.get(spec.id)!;
      r.blocks = blocks;
      this.spawn(`${spec.id}.lease`, { leaseId: spec.id });
      this.host.send(`${spec.id}.lease`, { type: 'ALLOCATE' });
      r.epoch = this.pool.epochOf(spec.id)!;
      this.spawn(`${spec.id}.lifecycle`, { requestId: spec.id, role: 'context' });
      if (spec.faults.includes('cancel-ctx-queued')) {
        this.host.send(`${spec.id}.lifecycle`, { type: 'CONTEXT_DONE' });
        this.host.send(`${spec.id}.lifecycle`, { type: 'CANCEL' });
      } else this.host.send(`${spec.id}.lifecycle`, { type: 'CONTEXT_DONE' });
    }
  }

  private onControl(m: ControlMessage): void {
    if (m.t === 'info') {
      const r = this.reqs.get(m.id);
      if (!r) {
        // Unknown: either not arrived yet (keep the info) or long finished (answer not-ready: no data follows).
        if (this.finishedIds.has(m.id)) this.peer?.send({ t: 'ready', id: m.id, ready: false, epoch: 0, requestNumber: 0 });
        else this.earlyInfo.set(m.id, m);
        return;
      }
      // The fault 'timeout' drops the peer's request info: the sender never learns it was asked.
      if (r.spec.faults.includes('timeout')) return;
      r.remote = m;
      if (this.host.has(`${m.id}.send`)) this.host.send(`${m.id}.send`, { type: 'REQUEST_INFO' });
      else this.earlyInfo.set(m.id, m);
    } else if (m.t === 'fence') {
      void this.fence(m.id);
    }
    this.schedule();
  }

  /** Answer a generation-side fence once no transfer of ours can write into that request's blocks. */
  private async fence(id: string): Promise<void> {
    const r = this.reqs.get(id);
    if (r?.native) await r.native.whenQuiesced();
    this.peer?.send({ t: 'fenceAck', id });
  }

  protected route(actor: string, a: EmittedAction): void {
    const id = requestOf(actor)!;
    const role = roleOf(actor);
    const r = this.reqs.get(id);
    const p = a.params;
    if (role === 'lease') {
      if (!this.routeLeaseMetrics(a) && a.type === 'fencePeer') {
        // Our own transfer reads these blocks: the fence is its quiescence.
        const h = r?.native;
        void (h ? h.whenQuiesced() : Promise.resolve()).then(() => this.host.send(actor, { type: 'FENCE_CONFIRMED' }));
      }
      queueMicrotask(() => this.afterLeaseStep(actor));
      return;
    }
    if (!r) return;
    switch (`${role}/${a.type}`) {
      case 'lifecycle/startContextSend': {
        this.spawn(`${id}.send`, { requestId: id });
        this.sends.add(`${id}.send`);
        const early = this.earlyInfo.get(id);
        if (early && !r.spec.faults.includes('timeout')) {
          this.earlyInfo.delete(id);
          r.remote = early;
          this.host.send(`${id}.send`, { type: 'REQUEST_INFO' });
        }
        return;
      }
      case 'lifecycle/cancelSide':
        return this.host.send(`${id}.send`, { type: 'CANCEL' });
      case 'lifecycle/freeResources':
        this.host.send(`${id}.lease`, { type: 'RELEASE', proof: p.proof ? 'terminalStatus' : null });
        queueMicrotask(() => this.afterLeaseStep(`${id}.lease`));
        return this.finish(id);
      case 'send/sendReadySignal':
        return this.peer?.send({ t: 'ready', id, ready: true, epoch: r.epoch, requestNumber: r.spec.number });
      case 'send/signalPeer':
        if (p.notReady) this.peer?.send({ t: 'ready', id, ready: false, epoch: r.epoch, requestNumber: r.spec.number });
        return;
      case 'send/startTransfers': {
        this.host.send(`${id}.lease`, { type: 'EXPOSE' });
        // The KV the request computed, tagged with the epoch the receiver's pool chose for its blocks.
        r.blocks!.forEach((b, i) => fillBlock(this.pool.view(b), r.spec.number, r.remote!.epoch, i));
        this.spawn(`${id}.handle`, { handleId: id, semantics: this.agent.semantics });
        const native = this.agent.createTransfer({
          op: 'WRITE',
          local: r.blocks!.map((b) => ({ region: this.pool.region, offset: b * this.pool.blockBytes, length: this.pool.blockBytes })),
          remote: r.remote!.remote,
          remoteAgent: this.remoteAgent,
          // The sync notification names what the blocks carry, so the receiver can verify them even when
          // the notification overtakes the ready signal.
          notification: new TextEncoder().encode(JSON.stringify({ id, number: r.spec.number, epoch: r.epoch })),
        });
        r.native = native;
        r.binding = {
          agent: this.agent,
          handle: native,
          posted: false,
          onEvent: () => this.schedule(),
          failAfterPost: r.spec.faults.includes('fail'),
          ...(this.nativeDelivery ? { deliver: this.nativeDelivery } : {}),
        };
        // 'stall': the transfer is created but never posted; the sender's deadline must end it.
        if (!r.spec.faults.includes('stall')) this.host.send(`${id}.handle`, { type: 'POST' });
        return;
      }
      case 'send/cancelTransfers':
        return this.host.send(`${id}.handle`, { type: 'CANCEL' });
      case 'send/reportOutcome': {
        const promise = p.promise as PromiseState;
        const outcome = p.outcome as TransferOutcome;
        if (promise === 'value') return this.host.send(`${id}.lifecycle`, { type: 'SEND_COMPLETE' });
        return this.host.send(`${id}.lifecycle`, { type: 'SEND_FAILED', reason: outcome === 'cancelled' || outcome === 'timedOut' ? outcome : 'transferFailed' });
      }
      default:
        if (role === 'handle' && r.native) {
          routeNativeHandle(this.host, actor, a, r.binding!);
          // Count delivered bytes when the transfer completes.
          if (a.type === 'postTransfer') void r.native.whenTerminal().then((status) => status === 'DONE' && (this.requests.get(id)!.bytes = r.native!.totalBytes));
        }
    }
  }

  protected onDone(actor: string, output: unknown): void {
    const id = requestOf(actor)!;
    if (actor.endsWith('.handle')) {
      const o = output as TransferHandleOutput;
      this.host.send(`${id}.send`, { type: 'TRANSFERS_SETTLED', outcome: o.outcome, quiesced: o.quiesced });
    } else if (actor.endsWith('.send')) {
      this.host.send(`${id}.lifecycle`, { type: 'SIDE_QUIESCENT', proof: (output as ContextSendOutput).quiesced });
    }
    this.schedule();
  }

  /** The lifecycle freed (or quarantined) the request: report it and drop its actors. */
  private finish(id: string): void {
    queueMicrotask(() => {
      const f = this.finalState(id);
      if (!f) return;
      const { state, reason } = f;
      this.report(id, { finalState: state, outcome: state === 'DISAGG_CONTEXT_COMPLETE' ? 'completed' : reason === 'cancelled' ? 'cancelled' : 'failed', reason });
      // A side still draining (the request failed closed) finishes on its own deadlines.
      for (const role of ['lifecycle', 'send', 'handle']) if (this.host.done(`${id}.${role}`) || role === 'lifecycle') this.host.remove(`${id}.${role}`);
      if (!this.host.has(`${id}.send`)) this.sends.delete(`${id}.send`);
      this.finishedIds.add(id);
      this.admit();
    });
  }

  protected iterate(only?: LoopStep): boolean {
    let more = false;
    for (const name of this.sends) {
      const s = this.host.actor(name);
      if (!s) {
        this.sends.delete(name);
        continue;
      }
      const v = s.value as { sender: unknown; future: unknown };
      // Sender worker: one step per iteration, so status polls interleave as in the real worker.
      if ((only === undefined || only === 'worker') && typeof v.sender === 'object' && v.sender !== null && 'unwinding' in v.sender) {
        this.host.send(name, { type: 'WORKER_STEP' });
        more = true;
      }
      // Status checker: poll ready futures.
      if ((only === undefined || only === 'poll') && v.future === 'pending' && s.context.promise !== 'pending') {
        this.host.send(name, { type: 'STATUS_POLL' });
        more = true;
      }
    }
    return more;
  }

  override close(): void {
    this.server?.close();
    this.peer?.close();
    super.close();
  }
}
