import { parentPort } from 'node:worker_threads';
import { runJob } from './run.js';

/** Worker thread of the mutation pool: runs one job per message and answers with its result. */
parentPort?.on('message', (job: Parameters<typeof runJob>[0]) => {
  try {
    parentPort!.postMessage(runJob(job));
  } catch (err) {
    parentPort!.postMessage({ error: err instanceof Error ? err.message : String(err) });
  }
});
