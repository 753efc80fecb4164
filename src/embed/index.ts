/** Typed embedding: checked `provide()`, a typed actor host, and the wiring between the machines. */
export { ENGINE_ACTIONS, engineActionsOf, missingEngineActions } from './engineActions.js';
export type { EngineActionName } from './engineActions.js';
export { EmbeddingError, provideEngine, checkActions, checkDelays } from './provide.js';
export type { EngineImplementations, ProvidedActions } from './provide.js';
export { EngineHost, parseActorAddress } from './host.js';
export type { ActorAt, EngineActions, EngineHostOptions } from './host.js';
export { leaseRelease, outcomeEvent, requestResult, sideQuiescent, transfersSettled } from './wiring.js';
export type { RequestResult } from './wiring.js';
export { contextDelays, generationDelays } from './deadlines.js';
export type { TransferDeadlines } from './deadlines.js';
export type * from './types.js';
