/**
 * The inspector's public API (see docs/inspector.md):
 * - `startInspector()` — the local server and page; pass its `inspect` to `createActor(logic, { inspect })`;
 * - `machineToDot()` / `machineToSvg()` — diagrams from machine definitions, with state-node-id element ids;
 * - `DemoDriver` — real machines wired like an executor, stepped deterministically (demo and tests).
 */
export type { Inspector, InspectorOptions, InspectorStats } from './server.js';
export { startInspector } from './server.js';
export type { DotOptions } from './dot.js';
export { activeStateIds, machineToDot, stateNodeIds } from './dot.js';
export type { DiagramEntry } from './diagrams.js';
export { diagramEntries, diagramFile, dotToSvg, machineToSvg, PRODUCTION_MACHINES, renderDiagrams, writeDiagrams } from './diagrams.js';
export type { ActorSummary, StatelyInspectionMessage, TimelineEntry } from './model.js';
export { BoundedQueue, RingBuffer } from './buffer.js';
export type { CounterexampleCombination, CounterexampleFrame, CounterexampleResult } from './counterexamples.js';
export { computeCounterexamples, counterexampleCatalog, replayPath } from './counterexamples.js';
export type { DemoStory } from './demo.js';
export { DemoDriver, runDemo } from './demo.js';
export type { InspectProducer, InspectProducerOptions } from './producer.js';
export { connectInspector } from './producer.js';
