import type { Server, Socket } from 'node:net';
import type { InspectionEvent } from 'xstate';
import type { Platform } from '../core/platform.js';
import type { RemoteRef } from '../../machines/index.js';
import type { Address, Effect, EffectSink, LoopKind, RequestAddress } from '../core/wiring.js';
import { XferError } from '../native/index.js';
import type { Region, TerminalStatus, TransferHandle } from '../native/index.js';
import type { ChildMessage, ServerConfig } from './config.js';
import { ControlChannel, listenControl } from './control.js';
import type { ControlLink, ControlMessage } from './control.js';
import type { EmittedAction } from '../explore/world.js';
import { ServerBase } from './serverBase.js';
import { sliceOf } from './pattern.js';
import { encodeSyncNote } from './syncNote.js';

/** The native layer refused because the peer's agent is gone (its process died): not a bug of ours. */
const peerGone = (err: unknown): boolean => err instanceof XferError && err.code === 'PEER_GONE';

/** One native transfer of one handle actor. */
interface NativeTransfer {
  handle: TransferHandle | null;
  posted: boolean;
  /** The KV this handle's slice carries: written just before the post (see post()). */
  kv: { blocks: readonly number[]; number: number; epoch: number; offset: number; length: number } | null;
}

/** A request's native transfers by handle index, and how many of them are recorded. */
interface RequestNatives {
  byIndex: (NativeTransfer | undefined)[];
  live: number;
}

/**
 * The context (prefill) server: it interprets the context side's wiring. Per request a
 * requestLifecycle, a contextSend, N transferHandles and a blockLease; per server a peerSession (infos
 * and fences from the generation peer, whatever state the request is in) and an admission (KV blocks).
 * The server performs what they ask — native transfers into the peer's blocks, control messages — and
 * turns what happens back into events. It decides nothing.
 */
export class ContextServer extends ServerBase {
  private peer: ControlLink | null = null;
  private server: Server | null = null;
  private remoteAgent = '';
  /**
   * Native transfers by request, then by handle index; a record lives until its transfer is quiescent,
   * a request's list until its last record goes. Keyed by the request id the server already holds (a
   * key per handle actor was a name built and hashed per transfer).
   */
  private readonly natives = new Map<string, RequestNatives>();

  constructor(config: ServerConfig, emit: (m: ChildMessage) => void, inspect?: (ev: InspectionEvent) => void, platform?: Platform) {
    super({ ...config, role: 'context' }, emit, inspect, platform);
  }

  async listen(): Promise<void> {
    this.server = await listenControl(this.config.socketPath, (socket: Socket) => {
      this.attachPeer(new ControlChannel(socket, this.receiveControl.bind(this), () => !this.isClosed && this.peerGone()));
    });
  }

  /** Use this link to the generation peer (a new one replaces the old). Messages come in through receiveControl. */
  attachPeer(link: ControlLink): void {
    this.peer?.close();
    this.peer = link;
  }

  loadPeer(metadata: Uint8Array): void {
    this.remoteAgent = this.agent.loadRemoteMetadata(metadata);
  }

  /** The generation peer's connection closed (its process is gone). */
  peerGone(): void {
    this.stimulus({ kind: 'peerGone' });
  }

  /** A control message from the generation peer. */
  receiveControl(m: ControlMessage): void {
    // Fault 'timeout': the peer's request info is lost, so the sender never learns it was asked.
    if (m.t === 'info' && this.faults.has(m.id, 'timeout')) return;
    this.stimulus({ kind: 'control', msg: m });
  }

  protected override afterLoop(request: string, step: LoopKind): void {
    // Fault 'cancel-ctx-queued': the user cancels right after prefill, while the request is queued to send.
    if (step === 'prefill' && this.faults.has(request, 'cancel-ctx-queued')) this.cancel(request);
  }

  protected dispatchAction(s: EffectSink, from: Address, a: EmittedAction): void {
    this.wiring.actionInto(s, from, a);
  }

  protected sideEffect(e: Effect): void {
    switch (e.type) {
      case 'control.send':
        this.peer?.send(e.msg);
        return;
      case 'prefill.fill':
        // The request's KV is written when its transfer is created (tagged with the receiver's allocation).
        return;
      case 'native.create':
        this.create(e.handle, e.remote, e.index, e.of);
        return;
      case 'native.post':
        this.post(e.handle);
        return;
      case 'native.abort':
        this.abort(e.handle);
        return;
      case 'native.release':
        this.release(e.handle);
        return;
      case 'native.whenQuiesced':
        this.whenQuiesced(e.request, e.lease);
        return;
      default:
        throw new Error(`context server: no interpreter for effect ${e.type}`);
    }
  }

  /**
   * Handle `index` of `of` writes slice `index` of every block (one slice per remote rank, as a
   * tensor-parallel peer splits each KV block), so every handle carries part of every block.
   */
  private create(at: RequestAddress, remote: RemoteRef | null, index: number, of: number): void {
    const lease = this.pool.lease(at.request);
    const spec = this.requests.get(at.request)?.spec;
    if (!remote || !lease || !spec || remote.blocks.length !== lease.blocks.length) {
      // Nothing to write into (or the request is gone): the handle's post fails at once.
      this.setNative(at, { handle: null, posted: false, kv: null });
      return;
    }
    const bb = this.pool.blockBytes;
    const slice = sliceOf(bb, index, of);
    let handle: TransferHandle;
    try {
      handle = this.createNative(lease.blocks, remote, slice, at.request, index, of);
    } catch (err) {
      // The peer's agent is gone: there is nothing to write into, and the handle's post fails at once.
      if (!peerGone(err)) throw err;
      this.setNative(at, { handle: null, posted: false, kv: null });
      return;
    }
    this.setNative(at, { handle, posted: false, kv: { blocks: lease.blocks, number: spec.number, epoch: remote.epoch, offset: slice.offset, length: slice.length } });
  }

  private nativeAt(at: RequestAddress): NativeTransfer | undefined {
    return this.natives.get(at.request)?.byIndex[at.index ?? 0];
  }

  private setNative(at: RequestAddress, n: NativeTransfer): void {
    let r = this.natives.get(at.request);
    const i = at.index ?? 0;
    // A request's first record in a list made with it (one handle is the usual case): an empty list took
    // a builtin call to grow at its first store.
    if (r === undefined && i === 0) return void this.natives.set(at.request, { byIndex: [n], live: 1 });
    if (r === undefined) this.natives.set(at.request, (r = { byIndex: [], live: 0 }));
    if (r.byIndex[i] === undefined) r.live++;
    r.byIndex[i] = n;
  }

  /** Forget `n` if it is still the record at `at` (a record made again since stays). */
  private dropNative(at: RequestAddress, n: NativeTransfer | undefined): void {
    const r = this.natives.get(at.request);
    const i = at.index ?? 0;
    if (n === undefined || r === undefined || r.byIndex[i] !== n) return;
    r.byIndex[i] = undefined;
    if (--r.live === 0) this.natives.delete(at.request);
  }

  private createNative(blocks: readonly number[], remote: RemoteRef, slice: { offset: number; length: number }, request: string, index: number, of: number): TransferHandle {
    const bb = this.pool.blockBytes;
    // Loops, not map callbacks: a callback is a closure per call, and its optimized code did not outlive a
    // server. Arrays of their final length: a push onto [] changed its elements kind and grew it, a
    // builtin call per list.
    const region = this.pool.region;
    const local = new Array<{ region: Region; offset: number; length: number }>(blocks.length);
    for (let i = 0; i < blocks.length; i++) local[i] = { region, offset: blocks[i]! * bb + slice.offset, length: slice.length };
    const rb = remote.blocks;
    const far = new Array<{ regionId: number; offset: number; length: number }>(rb.length);
    for (let i = 0; i < rb.length; i++) far[i] = { regionId: remote.region, offset: rb[i]! * bb + slice.offset, length: slice.length };
    return this.agent.createTransfer({
      op: 'WRITE',
      local,
      remote: far,
      remoteAgent: this.remoteAgent,
      notification: encodeSyncNote({ id: request, index, of }),
    });
  }

  /** The native transfer behind a handle actor (conformance and the simulator read it; null before create). */
  nativeOf(handle: RequestAddress): TransferHandle | null {
    return this.nativeAt(handle)?.handle ?? null;
  }

  private post(at: RequestAddress): void {
    const n = this.nativeAt(at);
    if (!n?.handle) {
      this.stimulus({ kind: 'native', handle: at, status: 'ERROR' });
      return;
    }
    // Fault 'stall': the transfer is created but never posted; the handle's deadline must end it.
    if (this.faults.has(at.request, 'stall')) return;
    // The KV the request computed, tagged with the epoch the receiver's pool chose for its blocks:
    // this handle's slice of every block, written right before the post, so the copy reads it while
    // it is still in cache (written at create, a burst of creates evicted it before the copies ran).
    const kv = n.kv;
    if (kv) for (let i = 0; i < kv.blocks.length; i++) this.pool.fillRange(kv.blocks[i]!, kv.offset, kv.length, kv.number, kv.epoch, i);
    const h = n.handle;
    try {
      h.post();
    } catch (err) {
      // The peer's agent is gone (its process died after asking): nothing was posted, so nothing can
      // write; the transfer failed, as a backend reports a transfer to a dead peer. Anything else is a bug.
      if (!peerGone(err)) throw err;
      this.stimulus({ kind: 'native', handle: at, status: 'ERROR' });
      return;
    }
    n.posted = true;
    // Fault 'fail': the backend fails the transfer right after post (an abort it reports as ERROR).
    if (this.faults.has(at.request, 'fail') && (this.config.semantics ?? this.agent.semantics).canAbortInFlight) h.abort();
    void h.whenTerminal().then(this.terminal.bind(this, at, h));
  }

  /** A posted transfer's terminal status (bound per transfer: a closure's optimized code did not outlive a server). */
  private terminal(at: RequestAddress, h: TransferHandle, status: TerminalStatus): void {
    this.complete('native', at, status, this.deliverTerminal.bind(this, at, h, status));
  }

  private deliverTerminal(at: RequestAddress, h: TransferHandle, status: TerminalStatus): void {
    if (status === 'DONE') {
      const e = this.requests.get(at.request);
      if (e) e.bytes += h.totalBytes;
    }
    this.stimulus({ kind: 'native', handle: at, status });
  }

  private abort(at: RequestAddress): void {
    const n = this.nativeAt(at);
    // Without abort the handle is only no longer wanted: polling goes on to a terminal status.
    if (!n?.handle || !n.posted || n.handle.released || !(this.config.semantics ?? this.agent.semantics).canAbortInFlight) return;
    const res = n.handle.abort();
    if (res.aborted) void n.handle.whenQuiesced().then(() => this.complete('abort', at, undefined, () => this.stimulus({ kind: 'native', handle: at, status: 'ABORTED' })));
  }

  private release(at: RequestAddress): void {
    const n = this.nativeAt(at);
    if (!n?.handle) {
      this.dropNative(at, n);
      this.performInbound({ kind: 'release', handle: at, accepted: true, quiesced: true });
      return;
    }
    const h = n.handle;
    const res = h.release();
    // The record lives until nothing can touch the buffers (a fence waits on it).
    if (res.quiesced) this.dropNative(at, n);
    else void h.whenQuiesced().then(() => this.dropNative(at, n));
    this.performInbound({ kind: 'release', handle: at, accepted: res.accepted, quiesced: res.quiesced });
  }

  /** Answer a fence of our own source lease once every native transfer of the request is quiescent. */
  private whenQuiesced(request: string, lease: RequestAddress): void {
    const waits: Promise<void>[] = [];
    const r = this.natives.get(request);
    if (r !== undefined) for (const n of r.byIndex) if (n?.handle) waits.push(n.handle.whenQuiesced());
    void Promise.all(waits).then(() => this.complete('quiesced', lease, undefined, () => this.stimulus({ kind: 'quiesced', lease })));
  }

  override close(): void {
    this.server?.close();
    this.peer?.close();
    super.close();
  }
}
