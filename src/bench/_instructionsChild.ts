import os from 'node:os';
import { callbacksRun, engineRun } from './burst.js';

/**
 * The process `jsThreadInstructions` (_instructions.ts) runs under callgrind: warm an executor up, then
 * run the measured requests between the two marker calls callgrind zeroes and dumps its counters at
 * (`idle`: the markers alone).
 * Usage: node _instructionsChild.js engine|callbacks|idle <warm requests> <requests>
 */
const [mode, warm, requests] = process.argv.slice(2);
if (mode !== 'engine' && mode !== 'callbacks' && mode !== 'idle') {
  console.error(`mode: engine, callbacks or idle (got '${String(mode)}')`);
  process.exit(2);
}
const run = mode === 'callbacks' ? callbacksRun : engineRun;
const o = { requests: 2000, concurrency: 64, blockBytes: 4096, blocksPerRequest: 1 };
for (let w = Number(warm); w > 0; w -= o.requests) await run(o);
// The window is the one `bench burst` measures CPU over: from the first submit to the last completion
// (the servers' start and close are outside it).
const window = {
  start: () => void os.loadavg(), // callgrind --zero-before: the window starts
  end: () => void os.uptime(), // callgrind --dump-before: the window ends
};
if (mode === 'idle') {
  window.start();
  window.end();
} else await run({ ...o, requests: Number(requests), window });
