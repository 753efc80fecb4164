import os from 'node:os';
import { pathToFileURL } from 'node:url';
import { callbacksRun, engineRun } from './burst.js';

/**
 * The process `jsThreadInstructions` (_instructions.ts) runs under callgrind: warm an executor up, then
 * run the measured requests with the two marker calls callgrind zeroes and dumps its counters at
 * (`idle`: the markers alone). Usage: node --expose-gc _instructionsChild.js engine|callbacks|idle <warm> <requests>
 */
function fullCollection(): void {
  const gc = (globalThis as { gc?: () => void }).gc;
  if (typeof gc !== 'function') throw new Error("the instruction counter's child needs node --expose-gc");
  gc();
}

async function main(args: string[]): Promise<void> {
  const [mode, warm, requests] = args;
  if (mode !== 'engine' && mode !== 'callbacks' && mode !== 'idle') {
    console.error(`mode: engine, callbacks or idle (got '${String(mode)}')`);
    process.exitCode = 2;
    return;
  }
  const run = mode === 'callbacks' ? callbacksRun : engineRun;
  const o = { requests: 2000, concurrency: 64, blockBytes: 4096, blocksPerRequest: 1 };
  // The last warm-up run follows a full collection. Without it the engine's count was bimodal (six runs
  // of one build: three near 331,000 per request, three near 357,000 with 4-8 times the GC and compiler
  // shares): a major collection near the window is followed by optimizing-compiler work and slower code
  // until the engine has warmed again. With a full collection right before the window it was 350,000
  // each time. Collecting at a fixed point and letting one run recover measures the steady state between
  // major collections, in the same way for both executors.
  const runs = Math.ceil(Number(warm) / o.requests);
  for (let r = 0; r < runs; r++) {
    if (r === runs - 1) fullCollection();
    await run(o);
  }
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
