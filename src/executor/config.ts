import { DEFAULT_DELAYS } from '../../machines/index.js';
import type { DelayName } from '../../machines/index.js';

export type Role = 'context' | 'generation';

/** Named, seeded faults (see faults.ts for what each does and on which side). */
export const FAULTS = [
  'cancel-queued',
  'cancel-owned',
  'cancel-mid-transfer',
  'cancel-after-data',
  'cancel-ctx-queued',
  'timeout',
  'notif-drop',
  'notif-dup',
  'notif-delay',
  'notif-reorder',
  'stall',
  'fail',
  'ready-lost',
  'peer-kill',
] as const;
export type FaultName = (typeof FAULTS)[number];

export interface ServerConfig {
  role: Role;
  /** Agent name; unique per process incarnation. */
  name: string;
  /** The context server listens here; the generation server connects. */
  socketPath: string;
  blockBytes: number;
  poolBlocks: number;
  backend: string;
  progress: 'thread' | 'manual';
  copyThreads?: number;
  /**
   * Regression variants (machines/regressions) swapped in for the production machines they replace:
   * canaries that the simulator and the burst must catch. Never set in production.
   */
  variants?: string[];
  /**
   * What the machines are told the backend promises, instead of the agent's own declaration
   * (conformance runs the shm backend under another backend's rules). Never set in production.
   */
  semantics?: { canAbortInFlight: boolean; releaseInFlightQuiesces: boolean };
  /** Transfer handles per request (one per remote rank; each moves its share of the blocks). Default 1. */
  handlesPerRequest?: number;
  /** Copy-engine chunk size (the simulator uses small chunks so writes land in several steps). */
  chunkBytes?: number;
  /** Concurrent receives the generation server allows (receive slots). */
  recvSlots: number;
  /** Deadlines in ms, by the machines' delay names (TensorRT-LLM names where they exist). */
  delays: Record<DelayName, number>;
  /** Append every machine transition as JSON lines to this file. */
  tracePath?: string;
  /** Serve Prometheus metrics on http://127.0.0.1:PORT/metrics (0: a free port). */
  metricsPort?: number;
  /** Forward inspection events to an inspector at this WebSocket URL. */
  inspectUrl?: string;
  /** 'pure' (default): machines stepped in reducer mode; 'actors': live xstate actors (always so when inspected). */
  host?: 'pure' | 'actors';
  /**
   * 'auto' (default): the executor loop runs itself. 'manual': nothing runs until `stepLoop()` — with the
   * native layer in manual progress, a test can replay an explored ordering step by step.
   */
  loop?: 'auto' | 'manual';
  /**
   * Keep time-in-state histograms per machine and state (`stats().timeInState`, the burst report's
   * table). Off by default: a clock read and a histogram entry per transition that nobody reads.
   */
  timeInState?: boolean;
}

/**
 * Delays for a burst: TensorRT-LLM's defaults (kv_transfer_timeout_ms = 60000) suit production, but a
 * fault run would then last minutes; the burst harness scales every deadline from one timeout.
 */
export function burstDelays(kvTransferTimeoutMs: number): Record<DelayName, number> {
  const t = kvTransferTimeoutMs;
  return {
    kvTransferTimeout: t,
    senderFutureTimeout: DEFAULT_DELAYS.senderFutureTimeout,
    cancelResolveTimeout: Math.max(50, Math.round(t / 2)),
    drainTimeout: Math.max(50, Math.round(t / 4)),
    quiescenceTimeout: t * 2,
    quarantineMaxAge: Math.max(50, Math.round(t / 2)),
    fenceTimeout: t,
  };
}

/** A request as the harness hands it to both servers. */
export interface RequestSpec {
  id: string;
  /** Numeric id carried in the block pattern. */
  number: number;
  blocks: number;
  faults: FaultName[];
}

/** Harness → server. */
export type ParentMessage =
  | { t: 'init'; config: ServerConfig }
  | { t: 'peer'; metadata: string }
  | { t: 'request'; spec: RequestSpec }
  | { t: 'cancel'; id: string }
  /** The context server was restarted: reconnect the control channel; requests it had are gone. */
  | { t: 'peerRestarted'; socketPath: string }
  /** Report the process's resident set size now (answered with a 'memory' message). */
  | { t: 'memory' }
  | { t: 'finish' };

export interface RequestReport {
  id: string;
  role: Role;
  /** Top-level request state it finished in. */
  finalState: string;
  outcome: 'completed' | 'cancelled' | 'failed';
  reason: string;
  corrupted: boolean;
  bytes: number;
  logLines: number;
  transitions: number;
  startedAt: number;
  endedAt: number;
}

export interface ServerStats {
  role: Role;
  pool: { totalBlocks: number; freeBlocks: number; heldBlocks: number; retiredBlocks: number };
  quarantine: { entered: number; releasedByProof: number; releasedByFence: number };
  stuck: string[];
  /** Time in state (ms) per machine.state, as [p50, p99, count]. */
  timeInState: Record<string, [number, number, number]>;
  cpuUserMs: number;
  cpuSystemMs: number;
  /** Corruption the server detected at run time (each must be 0). */
  integrity?: { poisonBroken: number; receiptMismatches: number; servedMismatches: number };
  /** What the server holds at the end (bounded memory: no per-request table survives its report). */
  memory?: { liveRequests: number; actors: number; rssMB: number };
  /** Times each seeded fault's point acted in this server (faults.ts). */
  faultsFired?: Record<string, number>;
}

/** Server → harness. */
export type ChildMessage =
  | { t: 'ready'; metadata: string; name: string }
  | { t: 'done'; report: RequestReport }
  | { t: 'stats'; stats: ServerStats }
  | { t: 'log'; line: string }
  | { t: 'memory'; rssBytes: number }
  /** The server cannot go on (it failed to start, or a step threw): one line; the process exits next. */
  | { t: 'fatal'; phase: 'start' | 'run'; message: string };
