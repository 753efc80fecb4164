import { fork, type ChildProcess } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

import { Agent, SEGMENT_PREFIX, XferError, XFER_ERROR_CODES, type NativeSemantics } from '../../src/native/index.js';

/** The backend under test: XFERSTATE_BACKEND (e.g. `XFERSTATE_BACKEND=nixl npx vitest run test/native`), else shm. */
export const BACKEND = process.env.XFERSTATE_BACKEND ?? 'shm';

/** What the backend under test declares (tests of backend-specific behaviour check it, not the name). */
export function backendSemantics(backend: string = BACKEND): NativeSemantics {
  const probe = new Agent(`semantics-probe-${process.pid}`, { backend });
  try {
    return probe.semantics;
  } finally {
    probe.close();
  }
}

const peerScript = fileURLToPath(new URL('./fixtures/peer.mjs', import.meta.url));

/** /dev/shm names created by process `pid` (default: this one). */
export function segmentsOf(pid: number = process.pid): string[] {
  return readdirSync('/dev/shm').filter((n) => n.startsWith(`${SEGMENT_PREFIX}${pid}-`));
}

export function patternWord(i: number, seed: number): number {
  return (Math.imul(i + 1, 2654435761) ^ seed) >>> 0;
}

export function fillPattern(bytes: Uint8Array, seed: number): void {
  const words = new Uint32Array(bytes.buffer, bytes.byteOffset, bytes.byteLength >>> 2);
  for (let i = 0; i < words.length; i++) words[i] = patternWord(i, seed);
}

/** Byte offset of the first word that differs from the pattern, or -1. */
export function firstMismatch(bytes: Uint8Array, seed: number): number {
  const words = new Uint32Array(bytes.buffer, bytes.byteOffset, bytes.byteLength >>> 2);
  for (let i = 0; i < words.length; i++) if (words[i] !== patternWord(i, seed)) return i * 4;
  return -1;
}

/** Runs `body` and returns the XferError it threw (failing if it threw anything else or nothing). */
export function xferErrorOf(body: () => unknown): XferError {
  try {
    body();
  } catch (error) {
    if (error instanceof XferError && (XFER_ERROR_CODES as readonly string[]).includes(error.code)) return error;
    throw new Error(`expected an XferError, got ${String(error)}`, { cause: error });
  }
  throw new Error('expected an XferError, nothing was thrown');
}

export function withDeadline<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`deadline: ${what} not within ${ms} ms`)), ms);
  });
  return Promise.race([promise, deadline]).finally(() => clearTimeout(timer));
}

export type PeerReply = { ok: boolean; code?: string; message?: string } & Record<string, unknown>;

/** A child process running test/native/fixtures/peer.mjs. */
export class Peer {
  readonly child: ChildProcess;
  #next = 1;
  #pending = new Map<number, { resolve: (r: PeerReply) => void; reject: (e: Error) => void }>();
  #eventListeners: ((m: Record<string, unknown>) => void)[] = [];
  readonly ready: Promise<void>;

  constructor() {
    this.child = fork(peerScript, [], { execArgv: [], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    let readyResolve: () => void = () => {};
    this.ready = new Promise((resolve) => {
      readyResolve = resolve;
    });
    this.child.on('message', (raw: unknown) => {
      const m = raw as Record<string, unknown>;
      if (m.event === 'ready') readyResolve();
      else if (m.event !== undefined) for (const l of this.#eventListeners) l(m);
      else {
        const p = this.#pending.get(m.id as number);
        this.#pending.delete(m.id as number);
        p?.resolve(m as PeerReply);
      }
    });
    this.child.on('exit', () => {
      for (const p of this.#pending.values()) p.reject(new Error('peer exited'));
      this.#pending.clear();
    });
  }

  get pid(): number {
    return this.child.pid ?? -1;
  }

  onEvent(listener: (m: Record<string, unknown>) => void): void {
    this.#eventListeners.push(listener);
  }

  async request(cmd: string, args: Record<string, unknown> = {}): Promise<PeerReply> {
    await this.ready;
    const id = this.#next++;
    return new Promise<PeerReply>((resolve, reject) => {
      this.#pending.set(id, { resolve, reject });
      this.child.send({ id, cmd, ...args });
    });
  }

  /** Like request, but fails unless the reply is ok. */
  async call(cmd: string, args: Record<string, unknown> = {}): Promise<PeerReply> {
    const reply = await this.request(cmd, args);
    if (!reply.ok) throw new Error(`peer ${cmd} failed: ${reply.code} ${reply.message}`);
    return reply;
  }

  exited(): Promise<void> {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return Promise.resolve();
    return new Promise((resolve) => this.child.once('exit', () => resolve()));
  }

  async stop(): Promise<void> {
    if (this.child.exitCode === null && this.child.signalCode === null) {
      this.child.disconnect();
      await withDeadline(this.exited(), 10_000, 'peer exit');
    }
  }
}

export function toBase64(bytes: Uint8Array): string {
  return Buffer.from(bytes).toString('base64');
}

export function fromBase64(text: unknown): Uint8Array {
  return new Uint8Array(Buffer.from(String(text), 'base64'));
}
