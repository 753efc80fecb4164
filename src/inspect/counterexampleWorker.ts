import { parentPort } from 'node:worker_threads';
import { computeCounterexamples } from './counterexamples.js';

/**
 * Runs the explorer off the main thread: exploring one combination takes from milliseconds to seconds
 * of CPU, and the inspector shares its event loop with the producer it watches.
 */
parentPort?.on('message', (msg: { id: number; scenario: string; variant: string }) => {
  try {
    parentPort!.postMessage({ id: msg.id, result: computeCounterexamples({ scenario: msg.scenario, variant: msg.variant }) });
  } catch (e) {
    parentPort!.postMessage({ id: msg.id, error: (e as Error).message });
  }
});
