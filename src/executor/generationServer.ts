import type { Socket } from 'node:net';
import type { InspectionEvent } from 'xstate';
import type { Platform } from '../core/platform.js';
import type { Address, Effect, EffectSink, LoopKind } from '../core/wiring.js';
import type { Notification } from '../native/index.js';
import type { ChildMessage, ServerConfig, ServerStats } from './config.js';
import { ControlChannel, connectControl } from './control.js';
import type { ControlLink, ControlMessage } from './control.js';
import { PatternChecker, sliceOf } from './pattern.js';
import type { SyncNote } from './syncNote.js';
import { parseSyncNote } from './syncNote.js';
import type { EmittedAction } from '../explore/world.js';
import { ServerBase } from './serverBase.js';

/**
 * The generation (decode) server: it interprets the generation side's wiring. Per request a
 * requestLifecycle, a generationReceive and a blockLease over the KV blocks the context server writes
 * into; per server an admission (blocks), a receive-slot admission and a fenceClient. Incoming data is
 * verified against what this side knows (its request number, its pool's epoch for the allocation) when
 * the sync notification arrives and again when it is served; the machines decide what that means.
 */
export class GenerationServer extends ServerBase {
  private peer: ControlLink | null = null;
  private readonly checker: PatternChecker;
  private readonly reorderHold: SyncNote[] = [];
  corruptedBlocks = 0;
  /** Requests whose blocks no longer held their own pattern when served to decode. */
  servedMismatches = 0;

  constructor(config: ServerConfig, emit: (m: ChildMessage) => void, inspect?: (ev: InspectionEvent) => void, platform?: Platform) {
    super({ ...config, role: 'generation' }, emit, inspect, platform);
    this.checker = new PatternChecker(config.blockBytes);
    this.agent.on('notification', this.onNotification.bind(this));
  }

  async connect(socketPath: string): Promise<void> {
    const socket: Socket = await connectControl(socketPath);
    this.attachPeer(new ControlChannel(socket, this.receiveControl.bind(this), () => this.peerGone()));
  }

  /** Use this link to the context peer; messages come in through receiveControl, its loss through peerGone. */
  attachPeer(link: ControlLink): void {
    this.peer = link;
    this.stimulus({ kind: 'peerConnected' });
  }

  receiveControl(m: ControlMessage): void {
    if (m.t === 'ready' && this.faults.has(m.id, 'ready-lost')) return;
    this.stimulus({ kind: 'control', msg: m });
    if (m.t === 'ready' && m.ready && this.faults.has(m.id, 'cancel-mid-transfer')) this.cancel(m.id);
  }

  /** The context peer's process is gone (its control link closed). */
  peerGone(): void {
    this.peer = null;
    this.stimulus({ kind: 'peerGone' });
  }

  private onNotification(n: Notification): void {
    const sync = parseSyncNote(n.bytes);
    if (!sync) return; // not ours
    const id = sync.id;
    if (this.faults.has(id, 'notif-drop')) return;
    if (this.faults.has(id, 'notif-delay')) {
      this.platform.clock.setTimeout(() => !this.isClosed && this.deliverSync(sync), Math.max(1, Math.round(this.config.delays.kvTransferTimeout / 4)));
      return;
    }
    if (this.faults.has(id, 'notif-reorder')) {
      // Held until the next notification of another request arrives (or a short while passes).
      this.reorderHold.push(sync);
      this.platform.clock.setTimeout(() => !this.isClosed && this.releaseReordered(), 5);
      return;
    }
    if (this.faults.has(id, 'cancel-after-data')) {
      // The data is in place; the user cancels before the notification is processed.
      this.cancel(id);
      this.platform.defer(() => !this.isClosed && this.deliverSync(sync));
      return;
    }
    this.releaseReordered();
    this.deliverSync(sync);
    if (this.faults.has(id, 'notif-dup')) this.deliverSync(sync);
  }

  private releaseReordered(): void {
    while (this.reorderHold.length > 0) this.deliverSync(this.reorderHold.pop()!);
  }

  /** True when every byte of the lease's blocks (or of one handle's slice of each) is its own pattern. */
  private verify(request: string, share?: { index: number; of: number }): boolean {
    const lease = this.pool.lease(request);
    if (!lease || lease.number === 0) return false;
    if (!share || this.pool.region.kind === 'device') return lease.blocks.every((b, i) => this.pool.holds(b, lease.number, lease.epoch, i, this.checker));
    const { offset, length } = sliceOf(this.pool.blockBytes, share.index, share.of);
    return lease.blocks.every((b, i) => this.checker.verify(this.pool.view(b).subarray(offset, offset + length), lease.number, lease.epoch, i));
  }

  /**
   * A share of the request's data is in place. If its blocks are wrong, the sync is a failure; if the
   * whole request now verifies, the sync is the proof the receiver (or a quarantined lease) waits for;
   * otherwise other shares are still landing and nothing is said yet.
   */
  private deliverSync(sync: SyncNote): void {
    if (!this.pool.lease(sync.id)) return; // blocks already back in the pool: nothing to prove
    const shareOk = this.verify(sync.id, sync);
    // One handle's share is the whole request: it was just checked, byte for byte.
    const all = shareOk && (sync.of === 1 || this.verify(sync.id));
    if (shareOk && !all) return;
    const e = this.requests.get(sync.id);
    if (!all) this.corruptedBlocks++;
    else if (e) e.bytes = this.pool.lease(sync.id)!.blocks.length * this.pool.blockBytes;
    this.stimulus({ kind: 'sync', request: sync.id, ok: all });
  }

  protected override afterLoop(request: string, step: LoopKind): void {
    // The lifecycle took DECODE_START: the blocks are being served. Verified again now, not only at
    // receipt (a late write in between is corruption); the lifecycle decides what a mismatch means.
    if (step !== 'decodeStart') return;
    const ok = this.verify(request);
    if (!ok) {
      const e = this.requests.get(request);
      if (e) e.corrupted = true;
      this.servedMismatches++;
    }
    this.stimulus({ kind: 'served', request, ok });
  }

  protected override afterSpawn(at: Address): void {
    // Fault 'cancel-queued': the user cancels as soon as the receive is queued.
    if ('request' in at && at.role === 'recv' && this.faults.has(at.request, 'cancel-queued')) this.cancel(at.request);
  }

  protected dispatchAction(s: EffectSink, from: Address, a: EmittedAction): void {
    this.wiring.actionInto(s, from, a);
  }

  protected sideEffect(e: Effect): void {
    switch (e.type) {
      case 'control.send':
        this.peer?.send(e.msg);
        return;
      case 'control.sendInfo': {
        const lease = this.pool.lease(e.request);
        if (!lease) throw new Error(`generation server: request info for ${e.request}, which holds no blocks`);
        this.peer?.send({ t: 'info', id: e.request, remote: { region: this.pool.region.id, blocks: lease.blocks, epoch: lease.epoch } });
        // Fault 'cancel-owned': the user cancels right after the slot was advertised.
        if (this.faults.has(e.request, 'cancel-owned')) this.cancel(e.request);
        return;
      }
      default:
        throw new Error(`generation server: no interpreter for effect ${e.type}`);
    }
  }

  protected override integrity(): NonNullable<ServerStats['integrity']> {
    return { poisonBroken: this.pool.poisonBroken, receiptMismatches: this.corruptedBlocks, servedMismatches: this.servedMismatches };
  }

  override close(): void {
    this.peer?.close();
    super.close();
  }
}
