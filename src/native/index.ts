/**
 * Typed facade over the native NIXL-shaped transfer agent (native/, node-addon-api).
 *
 * Mirrors NIXL's agent: register memory, export/load metadata, create a transfer (WRITE/READ,
 * descriptor lists, remote agent, optional notification), post, status, release, abort, and
 * notifications. Every failure is an XferError with a typed `code`. See docs/native.md.
 */
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

// ---------------------------------------------------------------------------------------------
// Errors

export const XFER_ERROR_CODES = [
  'INVALID_ARGUMENT',
  'NOT_REGISTERED',
  'OUT_OF_RANGE',
  'LENGTH_MISMATCH',
  'UNKNOWN_REMOTE',
  'BAD_METADATA',
  'DOUBLE_RELEASE',
  'REPOST_ACTIVE',
  'CLOSED',
  'PEER_GONE',
  'IN_USE',
  'BACKEND',
  'RELEASED',
  'ABORTED',
  'NOT_SUPPORTED',
] as const;

export type XferErrorCode = (typeof XFER_ERROR_CODES)[number];

const errorCodeSet: ReadonlySet<string> = new Set<string>(XFER_ERROR_CODES);

export function isXferErrorCode(value: unknown): value is XferErrorCode {
  return typeof value === 'string' && errorCodeSet.has(value);
}

export class XferError extends Error {
  readonly code: XferErrorCode;
  constructor(code: XferErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'XferError';
    this.code = code;
  }
}

function toXferError(error: unknown): XferError {
  if (error instanceof XferError) return error;
  if (error instanceof Error) {
    const code: unknown = (error as Error & { code?: unknown }).code;
    if (isXferErrorCode(code)) return new XferError(code, error.message, { cause: error });
    // A TypeError from the engine itself (e.g. a getter on a detached value) is bad input too.
    if (error instanceof TypeError) return new XferError('INVALID_ARGUMENT', error.message, { cause: error });
    return new XferError('BACKEND', error.message, { cause: error });
  }
  return new XferError('BACKEND', String(error));
}

function native<T>(body: () => T): T {
  try {
    return body();
  } catch (error) {
    throw toXferError(error);
  }
}

// ---------------------------------------------------------------------------------------------
// Public types

export type TransferOp = 'WRITE' | 'READ';
export type TransferStatus = 'NOT_POSTED' | 'IN_PROGRESS' | 'DONE' | 'ERROR';
export type TerminalStatus = 'DONE' | 'ERROR';
export type ProgressMode = 'thread' | 'manual';

export interface AgentOptions {
  /** Backend name; default $XFERSTATE_BACKEND, else 'shm' (always built in). See availableBackends(). */
  backend?: string;
  /** 'thread' (default): copy and progress threads. 'manual': nothing moves except step(). */
  progress?: ProgressMode;
  /** Copy-engine chunk size in bytes (4 KiB .. 64 MiB, default 256 KiB). */
  chunkBytes?: number;
  /** Copy threads in 'thread' mode (1..16, default 2). */
  copyThreads?: number;
}

/** Where a region's bytes live. */
export type MemoryKind = 'host' | 'device';

/**
 * What a native backend promises; state machines read this instead of assuming. (The machines'
 * own two-field view is `BackendSemantics` in machines/common.ts.)
 */
export interface NativeSemantics {
  backend: string;
  canAbortInFlight: boolean;
  releaseInFlightAccepted: boolean;
  releaseInFlightQuiesces: boolean;
  notificationAfterData: boolean;
  notificationOnReleasedTransfer: boolean;
  terminalImpliesQuiesced: boolean;
  repostActiveRejected: boolean;
  terminalStatusSticky: boolean;
  crossProcess: boolean;
  manualProgress: boolean;
  maxNotificationBytes: number;
  chunkBytes: number;
  /** bytesDone grows chunk by chunk while in flight, and a manual step() copies one chunk (shm);
   * false where the bytes move as one unit (a cuda launch, a NIXL request). */
  chunkedProgress: boolean;
}

/** A region of a loaded peer: `id` goes into `RemoteDescriptor.regionId`. */
export interface RemoteRegion {
  id: number;
  size: number;
}

export interface PostOptions {
  /** Run the handle again after its previous run ended (DONE or ERROR). Without it a second post is refused. */
  repost?: boolean;
}

/** What `Agent.baselineCopy` copies: the first `length` bytes of `local` into the peer's region. */
export interface BaselineCopyRequest {
  local: Region;
  remoteAgent: string;
  remoteRegionId: number;
  length: number;
  /** Descriptor size the transfer being compared uses (memcpy pieces never cross it). */
  blockBytes: number;
  threads: number;
  chunkBytes: number;
}

export interface LocalDescriptor {
  region: Region;
  offset: number;
  length: number;
}

export interface RemoteDescriptor {
  regionId: number;
  offset: number;
  length: number;
}

export interface TransferRequest {
  op: TransferOp;
  local: readonly LocalDescriptor[];
  remote: readonly RemoteDescriptor[];
  remoteAgent: string;
  notification?: Uint8Array;
}

export interface ReleaseResult {
  /** The backend accepted the release (the handle is gone either way once this returns). */
  accepted: boolean;
  /** The engine no longer touches either buffer. If false, await handle.whenQuiesced(). */
  quiesced: boolean;
}

export interface AbortResult {
  /** A running transfer was told to stop (false when nothing was running). */
  aborted: boolean;
  quiesced: boolean;
}

export interface Notification {
  from: string;
  bytes: Uint8Array;
}

export type StepResult =
  | { kind: 'idle' }
  | { kind: 'notification'; from: string; bytes: Uint8Array }
  | {
      kind: 'chunk';
      transferId: number;
      chunkIndex: number;
      bytes: number;
      bytesDone: number;
      totalBytes: number;
      status: TransferStatus;
    }
  | { kind: 'notification-retry'; transferId: number; bytesDone: number; totalBytes: number; status: TransferStatus }
  /** An injected error (handle.injectError()) ended the transfer in this step: status ERROR, nothing copied. */
  | { kind: 'fault'; transferId: number; bytesDone: number; totalBytes: number; status: TransferStatus };

/** Which step to take in manual progress (see Agent.step and docs/native.md, "Ordering"). */
export type StepChoice = { transferId: number } | { notification: true };

/** Every choice manual progress offers now: a deterministic scheduler picks one. */
export interface PendingWork {
  /** Transfers with a chunk to copy, in the order plain step() takes them. */
  chunks: number[];
  /** Transfers whose notification waits for room in the receiver's mailbox. */
  notificationRetries: number[];
  /** Notifications arrived in this agent's mailbox that step() has not taken yet. */
  notifications: number;
}

/** Native record counts: what a long-running process checks for growth. */
export interface AgentStats {
  /** Transfer records in the backend (not released, or released while still in flight). */
  transfers: number;
  regions: number;
  remotes: number;
  /** Transfer handles the facade still tracks. */
  handles: number;
}

// ---------------------------------------------------------------------------------------------
// The native binding (shape checked once at load time)

interface NativeRegion {
  id: number;
  size: number;
  name: string;
  /** Absent for device memory and caller-owned memory (no host view the agent owns). */
  buffer?: ArrayBuffer;
  kind?: MemoryKind;
}

interface NativeInfo {
  status: TransferStatus;
  bytesDone: number;
  totalBytes: number;
  quiesced: boolean;
  error?: XferErrorCode;
}

interface NativeEvent {
  kind: 'terminal' | 'quiesced' | 'notification';
  transferId: number;
  status: TransferStatus;
  bytesDone: number;
  error?: XferErrorCode;
}

interface NativeAgentInstance {
  semantics(): NativeSemantics;
  registerMemory(size: number): NativeRegion;
  deregisterMemory(regionId: number): void;
  registerMemoryOfKind?(size: number, kind: MemoryKind): NativeRegion;
  registerExternalHost?(view: Uint8Array): NativeRegion;
  registerExternalDevice?(device: number, address: bigint, length: number): NativeRegion;
  fillPattern?(regionId: number, offset: number, length: number, word: Uint8Array): void;
  verifyPattern?(regionId: number, offset: number, length: number, word: Uint8Array): number;
  exportMetadata(): Uint8Array;
  loadRemoteMetadata(blob: Uint8Array): string;
  invalidateRemote(name: string): void;
  createTransfer(
    op: TransferOp,
    local: Float64Array,
    remote: Float64Array,
    remoteAgent: string,
    notification: Uint8Array | undefined,
  ): number;
  post(id: number): void;
  status(id: number): TransferStatus;
  info(id: number): NativeInfo;
  release(id: number): ReleaseResult;
  abort(id: number): ReleaseResult;
  sendNotification(remote: string, bytes: Uint8Array): void;
  pollNotifications(): Notification[];
  step(): StepResult;
  stepTransfer(id: number): StepResult;
  stepNotification(): StepResult;
  injectError(id: number): void;
  pendingWork(): PendingWork;
  stats(): Omit<AgentStats, 'handles'>;
  remoteRegions(name: string): RemoteRegion[];
  baselineCopy(
    localRegionId: number,
    remoteAgent: string,
    remoteRegionId: number,
    length: number,
    blockBytes: number,
    threads: number,
    chunkBytes: number,
  ): void;
  compareWithRemote(localRegionId: number, remoteAgent: string, remoteRegionId: number, length: number): number;
  drainEvents(): NativeEvent[];
  /** Up to out.length / 5 events as [kind, transferId, status, bytesDone, error] numbers; returns how many. */
  drainEventsPacked?(out: Float64Array): number;
  close(): void;
}

interface NativeBinding {
  NativeAgent: new (
    name: string,
    backend: string,
    progress: ProgressMode,
    chunkBytes: number,
    copyThreads: number,
    onEvents: () => void,
  ) => NativeAgentInstance;
  availableBackends(): string[];
  reapStaleSegments(): number;
  segmentPrefix: string;
  builtWithNixl: boolean;
  /** ErrorCode names by index: the error field of drainEventsPacked. */
  eventErrorCodes?: string[];
  builtWithCuda?: boolean;
  cudaDeviceStatus?(): string;
  cudaContiguousCopyGBps?(bytes: number, reps: number): number;
}

const ADDON_FILE = 'xferstate_native.node';

/** Where the compiled addon is: $XFERSTATE_NATIVE_ADDON, else native/build/Release above this file. */
export function addonPath(): string {
  const override = process.env.XFERSTATE_NATIVE_ADDON;
  if (override) return path.resolve(override);
  let dir = path.dirname(fileURLToPath(import.meta.url));
  for (let depth = 0; depth < 6; depth++) {
    const candidate = path.join(dir, 'native', 'build', 'Release', ADDON_FILE);
    if (existsSync(candidate)) return candidate;
    dir = path.dirname(dir);
  }
  throw new XferError('BACKEND', 'native addon not built: run `npm ci` (or `npm run install`)');
}

function isNativeBinding(value: unknown): value is NativeBinding {
  if (typeof value !== 'object' || value === null) return false;
  const v = value as Record<string, unknown>;
  return (
    typeof v.NativeAgent === 'function' &&
    typeof v.availableBackends === 'function' &&
    typeof v.reapStaleSegments === 'function' &&
    typeof v.segmentPrefix === 'string'
  );
}

let binding: NativeBinding | undefined;

// drainEventsPacked's number fields, decoded: status by index, error codes by index (from the addon).
const PACKED_FIELDS = 5;
const PACKED_EVENTS = 64;
const STATUS_BY_INDEX: readonly TransferStatus[] = ['NOT_POSTED', 'IN_PROGRESS', 'DONE', 'ERROR'];
let errorCodeByIndex: readonly XferErrorCode[] | undefined;

/** The addon's error-code table, if every name in it is one the facade knows (else the object drain is used). */
function packedErrorCodes(b: NativeBinding): readonly XferErrorCode[] | undefined {
  const names = b.eventErrorCodes;
  if (!Array.isArray(names)) return undefined;
  const codes: XferErrorCode[] = [];
  for (const name of names) {
    if (!isXferErrorCode(name)) return undefined;
    codes.push(name);
  }
  return codes;
}

function loadBinding(): NativeBinding {
  if (binding) return binding;
  const require = createRequire(import.meta.url);
  const file = addonPath();
  let loaded: unknown;
  try {
    loaded = require(file);
  } catch (error) {
    throw new XferError('BACKEND', `cannot load native addon ${file}: ${String(error)}`, { cause: error });
  }
  if (!isNativeBinding(loaded)) throw new XferError('BACKEND', `${file} is not the xferstate addon`);
  binding = loaded;
  errorCodeByIndex = packedErrorCodes(loaded);
  return binding;
}

/** Backends compiled into this build ('shm' always; 'nixl' when NIXL was found at build time). */
export function availableBackends(): string[] {
  return native(() => loadBinding().availableBackends());
}

/** Whether this build has the cuda backend, and whether a GPU can be used here (else why not). */
export function cudaStatus(): { built: boolean; usable: boolean; reason: string } {
  const b = loadBinding();
  if (b.builtWithCuda !== true || b.cudaDeviceStatus === undefined) {
    return { built: false, usable: false, reason: 'this build has no cuda backend (the CUDA toolkit was not found at build time)' };
  }
  const why = native(() => b.cudaDeviceStatus?.() ?? '');
  return { built: true, usable: why === '', reason: why };
}

/** GB/s of one contiguous device-to-device cudaMemcpyAsync of `bytes`, `reps` times (the cuda bench's baseline). */
export function cudaContiguousCopyGBps(bytes: number, reps: number): number {
  const b = loadBinding();
  const f = b.cudaContiguousCopyGBps;
  if (f === undefined) throw new XferError('NOT_SUPPORTED', 'this build has no cuda backend');
  return native(() => f(requireIndex(bytes, 'bytes'), requireIndex(reps, 'reps')));
}

/** Unlinks /dev/shm segments left behind by dead processes; returns how many. */
export function reapStaleSegments(): number {
  return native(() => loadBinding().reapStaleSegments());
}

/** Every shm segment name starts with this (in /dev/shm), followed by the creating pid. */
export const SEGMENT_PREFIX = 'xferstate-';

// ---------------------------------------------------------------------------------------------
// Validation helpers

function isIndex(value: unknown): value is number {
  return typeof value === 'number' && Number.isSafeInteger(value) && value >= 0;
}

function requireIndex(value: unknown, what: string): number {
  if (!isIndex(value)) throw new XferError('INVALID_ARGUMENT', `${what} must be a non-negative safe integer`);
  return value;
}

function requireString(value: unknown, what: string): string {
  if (typeof value !== 'string') throw new XferError('INVALID_ARGUMENT', `${what} must be a string`);
  return value;
}

function requireBytes(value: unknown, what: string): Uint8Array {
  if (!(value instanceof Uint8Array)) throw new XferError('INVALID_ARGUMENT', `${what} must be a Uint8Array`);
  return value;
}

function requireArray(value: unknown, what: string): readonly unknown[] {
  if (!Array.isArray(value)) throw new XferError('INVALID_ARGUMENT', `${what} must be an array`);
  return value;
}

function field(value: unknown, key: string): unknown {
  if (typeof value !== 'object' || value === null) return undefined;
  return (value as Record<string, unknown>)[key];
}

// ---------------------------------------------------------------------------------------------
// Region

/** Memory registered with an agent: a shared-memory segment mapped into this process, GPU memory
 * (kind 'device', cuda backend), or memory the caller owns (callerOwned). */
export class Region {
  readonly id: number;
  readonly size: number;
  /** Backend name of the memory (shm: the POSIX shared-memory name). */
  readonly name: string;
  readonly agent: Agent;
  readonly kind: MemoryKind;
  /** The caller's own memory (registerHostBuffer / registerDeviceMemory): the agent never frees it. */
  readonly callerOwned: boolean;
  #buffer: ArrayBuffer | undefined;
  #bytes: Uint8Array;
  #registered = true;

  /** @internal */
  constructor(agent: Agent, raw: NativeRegion, callerView?: Uint8Array) {
    this.agent = agent;
    this.id = raw.id;
    this.size = raw.size;
    this.name = raw.name;
    this.kind = raw.kind ?? 'host';
    this.callerOwned = callerView !== undefined;
    this.#buffer = raw.buffer;
    this.#bytes = callerView ?? (raw.buffer ? new Uint8Array(raw.buffer) : new Uint8Array(0));
  }

  /** A view of the region, for filling and verifying. Empty (detached) after deregistration.
   * NOT_SUPPORTED for device memory: use fillPattern / verifyPattern, which run on the GPU. */
  get bytes(): Uint8Array {
    if (this.kind === 'device') throw new XferError('NOT_SUPPORTED', `region ${this.id} is device memory: it has no host view`);
    if (this.#buffer && this.#bytes.byteLength === 0 && this.#buffer.byteLength !== 0) this.#bytes = new Uint8Array(this.#buffer);
    return this.#bytes;
  }

  /** Writes the executor's block pattern (the 8-byte `word` repeated from `offset`) where the
   * region lives: a GPU kernel for the cuda backend. NOT_SUPPORTED where the backend has none. */
  fillPattern(offset: number, length: number, word: Uint8Array): void {
    const n = this.agent.nativeAgent();
    const f = n.fillPattern;
    if (f === undefined) throw new XferError('NOT_SUPPORTED', 'this build has no pattern kernels');
    native(() => f.call(n, this.id, requireIndex(offset, 'offset'), requireIndex(length, 'length'), requireBytes(word, 'word')));
  }

  /** How many 8-byte words of [offset, offset+length) differ from the pattern (0 = intact). */
  verifyPattern(offset: number, length: number, word: Uint8Array): number {
    const n = this.agent.nativeAgent();
    const f = n.verifyPattern;
    if (f === undefined) throw new XferError('NOT_SUPPORTED', 'this build has no pattern kernels');
    return native(() => f.call(n, this.id, requireIndex(offset, 'offset'), requireIndex(length, 'length'), requireBytes(word, 'word')));
  }

  get registered(): boolean {
    return this.#registered && !this.agent.closed;
  }

  /** @internal */
  markDeregistered(): void {
    this.#registered = false;
  }
}

// ---------------------------------------------------------------------------------------------
// Transfer handle

interface Waiter<T> {
  resolve: (value: T) => void;
}

export class TransferHandle {
  readonly id: number;
  readonly agent: Agent;
  readonly op: TransferOp;
  readonly remoteAgent: string;
  readonly totalBytes: number;
  #released = false;
  #posted = false;
  #quiesced = true;
  #lastBytesDone = 0;
  #lastTerminal: TerminalStatus | undefined;
  #lastError: XferErrorCode | undefined;
  // Null until someone waits (most handles' terminal status is read once, and few wait to quiesce): a
  // list made with its first waiter, not an empty one per handle that the first push had to grow.
  #terminalWaiters: Waiter<TerminalStatus>[] | null = null;
  #quiesceWaiters: Waiter<void>[] | null = null;

  /** @internal */
  constructor(agent: Agent, id: number, op: TransferOp, remoteAgent: string, totalBytes: number) {
    this.agent = agent;
    this.id = id;
    this.op = op;
    this.remoteAgent = remoteAgent;
    this.totalBytes = totalBytes;
  }

  /**
   * Starts the transfer. A handle runs once: a second post() is refused with REPOST_ACTIVE, so a
   * retry can never deliver the data and the notification twice. `post({ repost: true })` runs it
   * again after a terminal status (still REPOST_ACTIVE while the previous run is active).
   */
  post(options: PostOptions = {}): void {
    const n = this.agent.nativeAgent();
    if (typeof options !== 'object' || options === null) throw new XferError('INVALID_ARGUMENT', 'post options must be an object');
    if (this.#posted && !this.#released && options.repost !== true) {
      throw new XferError('REPOST_ACTIVE', 'transfer handle was already posted; post({ repost: true }) runs it again after a terminal status');
    }
    // Settle the previous run's events before a new run starts, so that none of them is taken
    // for the new run's. Not needed once both its Terminal and its Quiesced event were routed
    // (a run has one of each): then a back-to-back repost makes no extra N-API call.
    if (this.#posted && (this.#lastTerminal === undefined || !this.#quiesced)) this.agent.drainEvents();
    try {
      n.post(this.id);
    } catch (error) {
      throw toXferError(error);
    }
    this.#posted = true;
    this.#quiesced = false;
    this.#lastTerminal = undefined;
    this.#lastError = undefined;
    this.#lastBytesDone = 0;
    // No drain after the post: a new run's events come later, through the event callback or
    // the status() that sees it end (one N-API call fewer on a 4 KiB post's critical path).
  }

  status(): TransferStatus {
    const n = this.agent.nativeAgent();
    let status: TransferStatus;
    try {
      status = n.status(this.id);
    } catch (error) {
      throw toXferError(error);
    }
    // Events matter to the caller only once the run ended (whenTerminal/error agree with a
    // terminal status); a poll loop on IN_PROGRESS makes one N-API call per turn, not two, and
    // a run whose Terminal and Quiesced were already routed needs no drain at all.
    if (status !== 'IN_PROGRESS' && (this.#lastTerminal === undefined || !this.#quiesced)) this.agent.drainEvents();
    return status;
  }

  /** Bytes copied by the current (or last) run. Readable after release and close. */
  get bytesDone(): number {
    if (this.#released || this.agent.closed) return this.#lastBytesDone;
    const n = this.agent.nativeAgent();
    const info = native(() => n.info(this.id));
    this.#lastBytesDone = info.bytesDone;
    return info.bytesDone;
  }

  /** Why the last run ended in ERROR (e.g. 'ABORTED', 'PEER_GONE'); undefined otherwise. */
  get error(): XferErrorCode | undefined {
    return this.#lastError;
  }

  get released(): boolean {
    return this.#released;
  }

  /**
   * Frees the handle. While in flight the release is accepted at once and the copy stops at the
   * next chunk boundary: `quiesced` is false when a chunk may still be in progress.
   */
  release(): ReleaseResult {
    if (this.#released && !this.agent.closed) {
      throw new XferError('DOUBLE_RELEASE', 'transfer handle was already released');
    }
    const n = this.agent.nativeAgent();
    const bytes = this.#released ? this.#lastBytesDone : this.bytesDone;
    const result = native(() => n.release(this.id));
    this.#released = true;
    this.#lastBytesDone = bytes;
    if (result.quiesced) this.onQuiesced(bytes);
    this.agent.drainEvents();
    if (result.quiesced) this.agent.forgetHandle(this.id);
    return result;
  }

  /** Stops a running transfer at the next chunk boundary; its status becomes ERROR ('ABORTED') once quiescent. */
  abort(): AbortResult {
    const n = this.agent.nativeAgent();
    const semantics = this.agent.semantics;
    if (!semantics.canAbortInFlight) {
      throw new XferError('NOT_SUPPORTED', `backend '${semantics.backend}' cannot abort in flight`);
    }
    const result = native(() => n.abort(this.id));
    this.agent.drainEvents();
    return { aborted: result.accepted, quiesced: result.quiesced };
  }

  /** Manual progress: one step of this transfer only (its next chunk, or its notification retry). */
  step(): StepResult {
    return this.agent.step({ transferId: this.id });
  }

  /**
   * Manual progress only (else NOT_SUPPORTED): the transfer's next step ends it with status ERROR
   * (error 'BACKEND'); that step copies nothing, bytes already copied stay, and no notification is
   * sent for this run. The fault is for the current run: post() clears it.
   */
  injectError(): void {
    const n = this.agent.nativeAgent();
    native(() => n.injectError(this.id));
  }

  /** Resolves once the engine no longer touches either buffer of this handle. */
  whenQuiesced(): Promise<void> {
    this.agent.drainEvents();
    if (this.#quiesced) return Promise.resolve();
    return new Promise<void>((resolve) => {
      if (this.#quiesceWaiters === null) this.#quiesceWaiters = [{ resolve }];
      else this.#quiesceWaiters.push({ resolve });
    });
  }

  /** Resolves with the terminal status of the current run ('ERROR' for a run released in flight). */
  whenTerminal(): Promise<TerminalStatus> {
    this.agent.drainEvents();
    if (this.#lastTerminal !== undefined) return Promise.resolve(this.#lastTerminal);
    if (!this.#posted) {
      return Promise.reject(new XferError('INVALID_ARGUMENT', 'transfer was never posted'));
    }
    return new Promise<TerminalStatus>((resolve) => {
      if (this.#terminalWaiters === null) this.#terminalWaiters = [{ resolve }];
      else this.#terminalWaiters.push({ resolve });
    });
  }

  /** @internal */
  onTerminal(status: TerminalStatus, error: XferErrorCode | undefined, bytesDone: number): void {
    this.#lastTerminal = status;
    this.#lastError = error;
    this.#lastBytesDone = bytesDone;
    const waiters = this.#terminalWaiters;
    if (waiters === null) return;
    this.#terminalWaiters = null;
    for (const w of waiters) w.resolve(status);
  }

  /** @internal */
  onQuiesced(bytesDone: number): void {
    this.#quiesced = true;
    this.#lastBytesDone = bytesDone;
    const waiters = this.#quiesceWaiters;
    if (waiters === null) return;
    this.#quiesceWaiters = null;
    for (const w of waiters) w.resolve();
  }

  /** @internal Called after close(): nothing can move any more. */
  onAgentClosed(): void {
    if (this.#posted && this.#lastTerminal === undefined) this.onTerminal('ERROR', 'ABORTED', this.#lastBytesDone);
    this.onQuiesced(this.#lastBytesDone);
  }
}

// ---------------------------------------------------------------------------------------------
// Agent

type NotificationListener = (notification: Notification) => void;

export class Agent {
  readonly name: string;
  readonly backend: string;
  readonly progress: ProgressMode;
  readonly semantics: NativeSemantics;
  #native: NativeAgentInstance;
  #closed = false;
  #handles = new Map<number, TransferHandle>();
  #regions = new Map<number, Region>();
  #listeners = new Set<NotificationListener>();
  #iteratorWakers = new Set<() => void>();
  /** drainEventsPacked's output, reused: routing events allocates nothing per event. */
  #eventBuffer = new Float64Array(PACKED_EVENTS * PACKED_FIELDS);

  constructor(name: string, options: AgentOptions = {}) {
    const b = loadBinding();
    if (typeof options !== 'object' || options === null) {
      throw new XferError('INVALID_ARGUMENT', 'options must be an object');
    }
    this.name = requireString(name, 'name');
    const backend = options.backend ?? process.env.XFERSTATE_BACKEND ?? 'shm';
    const progress = options.progress ?? 'thread';
    requireString(backend, 'backend');
    if (progress !== 'thread' && progress !== 'manual') {
      throw new XferError('INVALID_ARGUMENT', "progress must be 'thread' or 'manual'");
    }
    const chunkBytes = requireIndex(options.chunkBytes ?? 256 * 1024, 'chunkBytes');
    const copyThreads = requireIndex(options.copyThreads ?? 2, 'copyThreads');
    this.backend = backend;
    this.progress = progress;
    this.#native = native(
      // Bound, not an arrow: the arrow's optimized code (with the routing it inlines) lived only as long
      // as its agent, and every agent made after the last was collected compiled it again.
      () => new b.NativeAgent(this.name, backend, progress, chunkBytes, copyThreads, this.drainEvents.bind(this)),
    );
    this.semantics = native(() => this.#native.semantics());
  }

  get closed(): boolean {
    return this.#closed;
  }

  /** @internal */
  nativeAgent(): NativeAgentInstance {
    if (this.#closed) throw new XferError('CLOSED', `agent '${this.name}' is closed`);
    return this.#native;
  }

  registerMemory(size: number): Region {
    const n = this.nativeAgent();
    requireIndex(size, 'size');
    const region = new Region(this, native(() => n.registerMemory(size)));
    this.#regions.set(region.id, region);
    return region;
  }

  /** Agent-allocated memory of a given kind ('device': GPU memory, cuda backend only). */
  registerMemoryOfKind(size: number, kind: MemoryKind): Region {
    const n = this.nativeAgent();
    requireIndex(size, 'size');
    if (kind !== 'host' && kind !== 'device') throw new XferError('INVALID_ARGUMENT', "kind must be 'host' or 'device'");
    const f = n.registerMemoryOfKind;
    if (f === undefined) throw new XferError('NOT_SUPPORTED', 'this build cannot register memory by kind');
    const region = new Region(this, native(() => f.call(n, size, kind)));
    this.#regions.set(region.id, region);
    return region;
  }

  /** Registers the caller's own host memory (a Buffer/Uint8Array view, or a whole ArrayBuffer).
   * The agent keeps it alive while registered; deregistration is IN_USE while a transfer that is
   * not quiescent uses it. NOT_SUPPORTED where the backend cannot (shm today). */
  registerHostBuffer(memory: Uint8Array | ArrayBuffer): Region {
    const n = this.nativeAgent();
    const view = memory instanceof ArrayBuffer ? new Uint8Array(memory) : requireBytes(memory, 'memory');
    const f = n.registerExternalHost;
    if (f === undefined) throw new XferError('NOT_SUPPORTED', 'this build cannot register caller-owned memory');
    const region = new Region(this, native(() => f.call(n, view)), view);
    this.#regions.set(region.id, region);
    return region;
  }

  /** Registers GPU memory the caller allocated (an engine's KV cache): device index, address, length. */
  registerDeviceMemory(memory: { device: number; address: bigint; length: number }): Region {
    const n = this.nativeAgent();
    if (typeof memory !== 'object' || memory === null || typeof memory.address !== 'bigint') {
      throw new XferError('INVALID_ARGUMENT', 'device memory must be { device, address: bigint, length }');
    }
    const device = requireIndex(memory.device, 'device');
    const length = requireIndex(memory.length, 'length');
    const f = n.registerExternalDevice;
    if (f === undefined) throw new XferError('NOT_SUPPORTED', 'this build cannot register caller-owned memory');
    const region = new Region(this, native(() => f.call(n, device, memory.address, length)));
    this.#regions.set(region.id, region);
    return region;
  }

  /** IN_USE while a transfer that is not quiescent uses the region. */
  deregisterMemory(region: Region): void {
    const n = this.nativeAgent();
    if (!(region instanceof Region) || region.agent !== this || !this.#regions.has(region.id)) {
      throw new XferError('NOT_REGISTERED', 'region is not registered with this agent');
    }
    native(() => n.deregisterMemory(region.id));
    region.markDeregistered();
    this.#regions.delete(region.id);
  }

  /** Versioned blob (magic, length, CRC-32) describing this agent and its registered regions. */
  exportMetadata(): Uint8Array {
    const n = this.nativeAgent();
    return native(() => n.exportMetadata());
  }

  /** Maps a peer's segments; returns its agent name. BAD_METADATA for malformed blobs. */
  loadRemoteMetadata(blob: Uint8Array): string {
    const n = this.nativeAgent();
    requireBytes(blob, 'metadata');
    return native(() => n.loadRemoteMetadata(blob));
  }

  /** The regions in the loaded metadata of `name` (ids for remote descriptors). UNKNOWN_REMOTE if none is loaded. */
  remoteRegions(name: string): RemoteRegion[] {
    const n = this.nativeAgent();
    requireString(name, 'remote agent name');
    return native(() => n.remoteRegions(name));
  }

  /**
   * Benchmark baseline (shm): the copy a WRITE of the same bytes does, without the engine, over the
   * same mappings, on `threads` fresh threads taking `chunkBytes` chunks. Blocks until done.
   */
  baselineCopy(r: BaselineCopyRequest): void {
    const n = this.nativeAgent();
    if (!(r.local instanceof Region) || r.local.agent !== this) throw new XferError('NOT_REGISTERED', 'local region is not registered with this agent');
    const args = [r.remoteRegionId, r.length, r.blockBytes, r.threads, r.chunkBytes].map((v, i) => requireIndex(v, `baselineCopy argument ${i}`));
    native(() => n.baselineCopy(r.local.id, requireString(r.remoteAgent, 'remoteAgent'), args[0]!, args[1]!, args[2]!, args[3]!, args[4]!));
  }

  /** Offset of the first byte where `local` and the peer's region differ over `length` bytes, or -1 (shm). */
  compareWithRemote(local: Region, remoteAgent: string, remoteRegionId: number, length: number): number {
    const n = this.nativeAgent();
    if (!(local instanceof Region) || local.agent !== this) throw new XferError('NOT_REGISTERED', 'local region is not registered with this agent');
    return native(() =>
      n.compareWithRemote(local.id, requireString(remoteAgent, 'remoteAgent'), requireIndex(remoteRegionId, 'remoteRegionId'), requireIndex(length, 'length')),
    );
  }

  /** Forgets a peer; its running transfers end in ERROR ('UNKNOWN_REMOTE'). */
  invalidateRemote(name: string): void {
    const n = this.nativeAgent();
    requireString(name, 'remote agent name');
    native(() => n.invalidateRemote(name));
    this.drainEvents();
  }

  createTransfer(request: TransferRequest): TransferHandle {
    const n = this.nativeAgent();
    if (typeof request !== 'object' || request === null) {
      throw new XferError('INVALID_ARGUMENT', 'transfer request must be an object');
    }
    const op: unknown = request.op;
    if (op !== 'WRITE' && op !== 'READ') throw new XferError('INVALID_ARGUMENT', "op must be 'WRITE' or 'READ'");
    const local = requireArray(request.local, 'local');
    const remote = requireArray(request.remote, 'remote');
    const remoteAgent = requireString(request.remoteAgent, 'remoteAgent');
    const notification = request.notification === undefined ? undefined : requireBytes(request.notification, 'notification');
    const localTriples = new Float64Array(local.length * 3);
    let totalBytes = 0;
    // Loops, not forEach callbacks (a closure per call whose optimized code did not outlive its agent).
    for (let i = 0; i < local.length; i++) {
      const d: unknown = local[i];
      const region = field(d, 'region');
      if (!(region instanceof Region) || region.agent !== this || !this.#regions.has(region.id)) {
        throw new XferError('NOT_REGISTERED', `local descriptor ${i}: region is not registered with this agent`);
      }
      localTriples[3 * i] = region.id;
      localTriples[3 * i + 1] = requireIndex(field(d, 'offset'), `local[${i}].offset`);
      const length = requireIndex(field(d, 'length'), `local[${i}].length`);
      localTriples[3 * i + 2] = length;
      totalBytes += length;
    }
    const remoteTriples = new Float64Array(remote.length * 3);
    for (let i = 0; i < remote.length; i++) {
      const d: unknown = remote[i];
      remoteTriples[3 * i] = requireIndex(field(d, 'regionId'), `remote[${i}].regionId`);
      remoteTriples[3 * i + 1] = requireIndex(field(d, 'offset'), `remote[${i}].offset`);
      remoteTriples[3 * i + 2] = requireIndex(field(d, 'length'), `remote[${i}].length`);
    }
    const id = native(() => n.createTransfer(op, localTriples, remoteTriples, remoteAgent, notification));
    const handle = new TransferHandle(this, id, op, remoteAgent, totalBytes);
    this.#handles.set(id, handle);
    return handle;
  }

  /** A notification not tied to a transfer (NIXL genNotif). At most semantics.maxNotificationBytes. */
  sendNotification(remote: string, bytes: Uint8Array): void {
    const n = this.nativeAgent();
    requireString(remote, 'remote agent name');
    requireBytes(bytes, 'notification');
    native(() => n.sendNotification(remote, bytes));
  }

  /** Drains notifications that arrived (and were not already emitted as events). */
  pollNotifications(): Notification[] {
    const n = this.nativeAgent();
    return native(() => n.pollNotifications());
  }

  /** With a listener attached, arriving notifications are emitted instead of queued for polling. */
  on(event: 'notification', listener: NotificationListener): this {
    if (event !== 'notification' || typeof listener !== 'function') {
      throw new XferError('INVALID_ARGUMENT', "only 'notification' listeners are supported");
    }
    this.#listeners.add(listener);
    return this;
  }

  off(event: 'notification', listener: NotificationListener): this {
    if (event === 'notification') this.#listeners.delete(listener);
    return this;
  }

  /** Async iterator over arriving notifications; ends when the agent closes. */
  async *notifications(): AsyncGenerator<Notification, void, undefined> {
    const queue: Notification[] = [];
    let wake: (() => void) | undefined;
    const listener: NotificationListener = (n) => {
      queue.push(n);
      wake?.();
    };
    const waker = (): void => wake?.();
    this.on('notification', listener);
    this.#iteratorWakers.add(waker);
    try {
      for (;;) {
        if (queue.length === 0 && !this.#closed && this.progress === 'thread') {
          for (const n of this.pollNotifications()) queue.push(n);
        }
        const next = queue.shift();
        if (next !== undefined) {
          yield next;
          continue;
        }
        if (this.#closed) return;
        await new Promise<void>((resolve) => {
          wake = resolve;
        });
        wake = undefined;
      }
    } finally {
      this.off('notification', listener);
      this.#iteratorWakers.delete(waker);
    }
  }

  /**
   * Manual progress. Without a choice: one arrived notification, else the oldest notification
   * retry, else one chunk of the transfer at the head of the round-robin queue. With
   * `{ transferId }`: one step of that transfer only; with `{ notification: true }`: one arrived
   * notification only. `pendingWork()` lists the choices.
   */
  step(choice?: StepChoice): StepResult {
    const n = this.nativeAgent();
    let body: () => StepResult;
    if (choice === undefined) {
      body = () => n.step();
    } else if (typeof choice === 'object' && choice !== null && 'transferId' in choice) {
      const id = requireIndex(choice.transferId, 'transferId');
      body = () => n.stepTransfer(id);
    } else if (typeof choice === 'object' && choice !== null && 'notification' in choice && choice.notification === true) {
      body = () => n.stepNotification();
    } else {
      throw new XferError('INVALID_ARGUMENT', 'step choice must be { transferId } or { notification: true }');
    }
    const result = native(body);
    this.drainEvents();
    if (result.kind === 'notification' && this.#listeners.size > 0) this.emitNotifications();
    return result;
  }

  /** Manual progress: what step() could do now, for a scheduler to choose from. Cheap. */
  pendingWork(): PendingWork {
    const n = this.nativeAgent();
    return native(() => n.pendingWork());
  }

  /** Record counts in the backend and the facade (for leak checks in long runs). */
  stats(): AgentStats {
    const n = this.nativeAgent();
    this.drainEvents();
    return { ...native(() => n.stats()), handles: this.#handles.size };
  }

  /** Stops threads, unmaps and unlinks every segment this agent created. Idempotent. */
  close(): void {
    if (this.#closed) return;
    native(() => this.#native.close());
    this.#closed = true;
    this.drainEvents();
    for (const handle of this.#handles.values()) handle.onAgentClosed();
    this.#handles.clear();
    for (const region of this.#regions.values()) region.markDeregistered();
    this.#regions.clear();
    for (const wake of this.#iteratorWakers) wake();
  }

  /** @internal */
  forgetHandle(id: number): void {
    this.#handles.delete(id);
  }

  /** @internal Routes events from the native side (called on the JS thread). */
  drainEvents(): void {
    const packed = this.#native.drainEventsPacked;
    const codes = errorCodeByIndex;
    if (packed === undefined || codes === undefined) {
      this.drainEventObjects();
      return;
    }
    const buf = this.#eventBuffer;
    let notified = false;
    for (;;) {
      let count: number;
      try {
        count = packed.call(this.#native, buf);
      } catch (error) {
        throw toXferError(error);
      }
      for (let i = 0; i < count; i++) {
        const f = i * PACKED_FIELDS;
        const kind = buf[f];
        if (kind === 2) {
          notified = true;
          continue;
        }
        const id = buf[f + 1] as number;
        const handle = this.#handles.get(id);
        if (handle === undefined) continue;
        const bytesDone = buf[f + 3] as number;
        if (kind === 0) {
          const errorIndex = buf[f + 4] as number;
          const error = errorIndex < 0 ? undefined : (codes[errorIndex] ?? 'BACKEND');
          handle.onTerminal(STATUS_BY_INDEX[buf[f + 2] as number] === 'DONE' ? 'DONE' : 'ERROR', error, bytesDone);
        } else {
          handle.onQuiesced(bytesDone);
          if (handle.released) this.#handles.delete(id);
        }
      }
      if (count < PACKED_EVENTS) break;
    }
    if (notified && !this.#closed && this.#listeners.size > 0) this.emitNotifications();
  }

  /** The same routing from the addon's event objects (an addon without drainEventsPacked). */
  private drainEventObjects(): void {
    const events = native(() => this.#native.drainEvents());
    let notified = false;
    for (const e of events) {
      const handle = this.#handles.get(e.transferId);
      if (e.kind === 'terminal' && handle) {
        handle.onTerminal(e.status === 'DONE' ? 'DONE' : 'ERROR', e.error, e.bytesDone);
      } else if (e.kind === 'quiesced' && handle) {
        handle.onQuiesced(e.bytesDone);
        if (handle.released) this.#handles.delete(e.transferId);
      } else if (e.kind === 'notification') {
        notified = true;
      }
    }
    if (notified && !this.#closed && this.#listeners.size > 0) this.emitNotifications();
  }

  private emitNotifications(): void {
    for (const notification of this.pollNotifications()) {
      for (const listener of [...this.#listeners]) listener(notification);
    }
  }
}
