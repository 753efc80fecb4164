import { parentPort } from 'node:worker_threads';
import { exploreComposedCombination } from './composedCatalog.js';

/** Worker thread of `explore`: explores one composed combination per message and answers with its result. */
parentPort?.on('message', (job: { scenario: string; variant: string; deep: boolean }) => {
  try {
    parentPort!.postMessage(exploreComposedCombination(job.scenario, job.variant, { deep: job.deep }));
  } catch (err) {
    parentPort!.postMessage({ error: err instanceof Error ? err.message : String(err) });
  }
});
