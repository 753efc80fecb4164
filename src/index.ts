// Public entry point of the package: the embedding API. Each area re-exports its own pieces.
export * from '../machines/index.js';
