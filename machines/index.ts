export * from './common.js';
export * from './transferHandle.js';
export * from './contextSend.js';
export * from './generationReceive.js';
export * from './requestLifecycle.js';
export * from './blockLease.js';
export * from './regressions/index.js';
