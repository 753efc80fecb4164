/**
 * xferstate's embedding API. Everything here is what the project's own executor is built from:
 * - the lifecycle machines (also at `xferstate/machines`);
 * - ActorHost, which hosts the machines' actors and routes their named actions (your engine provides them);
 * - the native NIXL-shaped agent (also at `xferstate/native`) and routeNativeHandle, which drives a
 *   transferHandle actor's actions as native calls;
 * - the block pool and the block pattern;
 * - the context and generation servers (the transceivers) and the burst harness;
 * - the explorer and trace conformance checking.
 */
export * from '../machines/index.js';
export { ActorHost } from './engine/host.js';
export * from './embed/index.js';
export type { HostOptions, TransitionRecord } from './engine/host.js';
export type { EmittedAction } from './explore/world.js';
export { Agent, Region, TransferHandle, XferError, XFER_ERROR_CODES, SEGMENT_PREFIX, availableBackends, isXferErrorCode, reapStaleSegments } from './native/index.js';
export type {
  AgentOptions,
  NativeSemantics,
  AgentStats,
  LocalDescriptor,
  Notification,
  PendingWork,
  PostOptions,
  RemoteRegion,
  StepChoice,
  ProgressMode,
  ReleaseResult,
  RemoteDescriptor,
  StepResult,
  TerminalStatus,
  TransferOp,
  TransferRequest,
  TransferStatus,
  XferErrorCode,
} from './native/index.js';
export { routeNativeHandle } from './executor/nativeHandle.js';
export type { NativeHandleBinding } from './executor/nativeHandle.js';
export { wiringFor, ROLE_MACHINES, addressKey, parseAddress } from './core/wiring.js';
export type { Wiring, Stimulus, Effect, Address, PeerMessage } from './core/wiring.js';
export { BlockPool } from './executor/pool.js';
export type { PoolOptions, PoolStats } from './executor/pool.js';
export { fillBlock, PatternChecker, patternWord } from './executor/pattern.js';
export { ContextServer } from './executor/contextServer.js';
export { GenerationServer } from './executor/generationServer.js';
export { burstDelays, FAULTS } from './executor/config.js';
export type { FaultName, RequestSpec, ServerConfig, ServerStats, RequestReport } from './executor/config.js';
export { runBurst, parseFaults } from './executor/harness.js';
export type { BurstOptions, BurstReport } from './executor/harness.js';
export { checkTraceFile, checkTraceText } from './executor/trace.js';
export { exploreCombination, buildGraph, analyse } from './explore/explorer.js';
export type { ExploreResult, Violation } from './explore/explorer.js';
export { SCENARIOS, VARIANT_PLAN, combinations } from './explore/catalog.js';
export { XferMetrics, serveMetrics, outcomeLabel } from './metrics/index.js';
export type { XferMetricsOptions, MetricsEndpoint, RequestOutcomeLabel, TransitionLike } from './metrics/index.js';
