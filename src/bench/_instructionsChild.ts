import os from 'node:os';
import { pathToFileURL } from 'node:url';
import { callbacksRun, engineRun } from './burst.js';

/**
 * The process `jsThreadInstructions` (_instructions.ts) runs under callgrind: warm an executor up, then
 * run the measured requests with the two marker calls callgrind zeroes and dumps its counters at
 * (`idle`: the markers alone). Usage: node _instructionsChild.js engine|callbacks|idle <warm> <requests>
 */
async function main(args: string[]): Promise<void> {
  const [mode, warm, requests] = args;
  if (mode !== 'engine' && mode !== 'callbacks' && mode !== 'idle') {
    console.error(`mode: engine, callbacks or idle (got '${String(mode)}')`);
    process.exitCode = 2;
    return;
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
}

// Only as the process's script: the bench registry test imports every module of src/bench.
if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) await main(process.argv.slice(2));
