/** The executor's inspector producer lives with the inspector (src/inspect/producer.ts). */
export { connectInspector } from '../inspect/producer.js';
export type { InspectProducer as InspectClient } from '../inspect/producer.js';
