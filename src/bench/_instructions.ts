import { execFile, execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { compiledEntry } from '../core/workerPool.js';
import { promisify } from 'node:util';

/**
 * Instructions the JS thread executes per request, counted by valgrind's callgrind: a figure that does
 * not move with the machine's load. The CPU-time ratios of `bench burst` move by 10–30 % from run to run
 * on a shared VM, so a change worth 3 % cannot be seen in them; an instruction count over the same
 * requests repeats to about 2 %.
 *
 * How: a child process (_instructionsChild.ts) warms an executor up to steady state, collects the heap
 * in full and runs once more (so that no major collection's aftermath falls in the window), then runs the
 * measured requests with two marker calls, `os.loadavg()` and `os.uptime()`, where the CPU bench starts
 * and stops its clocks (from the first submit to the last completion). Callgrind zeroes its counters
 * when the first marker's C++ function is entered and writes them out when the second one is, per
 * thread; the JS thread is thread 1. The window holds only the measured requests: no start-up, no
 * servers' construction, no warm-up, and (the figure says so) no optimizing compiler work.
 *
 * Instructions are not time: a cache miss or a system call costs far more than its instruction count,
 * and both executors make the same system calls. The figure is for comparing two versions of the
 * executor, or the executor with the plain callbacks, on the work that is JS.
 */
export type InstructionsMode = 'engine' | 'callbacks' | 'idle';

export interface InstructionsSample {
  mode: InstructionsMode;
  warmRequests: number;
  requests: number;
  /** JS thread, whole window. */
  total: number;
  /** Per measured request (total for mode 'idle'). */
  perRequest: number;
  /** Of the total: V8's optimizing compiler (near 0 when the warm-up reached steady state). */
  compiler: number;
  /** Of the total: garbage collection on the JS thread. */
  gc: number;
}

const execFileP = promisify(execFile);

/** Whether valgrind can be run here. */
export function callgrindAvailable(): boolean {
  try {
    execFileSync('valgrind', ['--version'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

/** A sample's instructions per request without what garbage collection ran in the window (it moves by thousands from run to run). */
export const netOfGc = (s: InstructionsSample): number => s.perRequest - s.gc / Math.max(1, s.requests);

/** The median and the range of a list of counts (rounds of the counter). */
export function spreadOf(v: readonly number[]): { median: number; min: number; max: number } {
  if (v.length === 0) throw new Error('spreadOf: no values');
  const sorted = [...v].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  const median = sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
  return { median: Math.round(median), min: Math.round(sorted[0]!), max: Math.round(sorted[sorted.length - 1]!) };
}

/**
 * One thread's callgrind profile (its text format): the window's total (`summary:`), and what of it V8's
 * optimizing compiler and its garbage collector ran, by the functions' own (self) costs. Cost lines
 * under a `calls=` line are a call's inclusive cost and are not counted again.
 */
export function parseCallgrind(text: string): { total: number; compiler: number; gc: number } {
  let total = -1;
  let compiler = 0;
  let gc = 0;
  const names = new Map<string, string>();
  let fn = '';
  let afterCalls = false;
  const nameOf = (spec: string): string => {
    // `(id) name` the first time, `(id)` after.
    const m = /^\((\d+)\)(?: (.*))?$/.exec(spec);
    if (!m) return spec;
    if (m[2] !== undefined) names.set(m[1]!, m[2]);
    return names.get(m[1]!) ?? spec;
  };
  for (const line of text.split('\n')) {
    if (line.startsWith('summary:')) total = Number(line.slice(8));
    else if (line.startsWith('fn=')) fn = nameOf(line.slice(3));
    else if (line.startsWith('cfn=')) nameOf(line.slice(4));
    else if (line.startsWith('calls=')) afterCalls = true;
    else if (/^[\d+*-]/.test(line)) {
      if (afterCalls) {
        afterCalls = false;
        continue;
      }
      const cost = Number(line.slice(line.lastIndexOf(' ') + 1));
      if (fn.includes('compiler::')) compiler += cost;
      else if (/Scaveng|Marking|Sweep|Evacuat|heap::base/.test(fn)) gc += cost;
    }
  }
  if (total < 0) throw new Error('callgrind profile without a summary line');
  return { total, compiler, gc };
}

/** The compiled child: beside this module in dist/, or in dist/ when this module runs from source (tests). */
function childEntry(): string {
  const beside = new URL('./_instructionsChild.js', import.meta.url);
  const built = new URL('../../dist/src/bench/_instructionsChild.js', import.meta.url);
  const entry = compiledEntry(beside, built);
  if (entry === null) throw new Error(`the instruction counter's child is not built: run 'npm run build' (looked for ${fileURLToPath(beside)} and ${fileURLToPath(built)})`);
  return entry;
}

/**
 * The instruction counter's child of another built checkout (`<dir>/dist/src/bench/_instructionsChild.js`),
 * for counting that build's engine beside this one's; null when that checkout is not built.
 */
export function childOfBuild(dir: string): string | null {
  const child = join(dir, 'dist', 'src', 'bench', '_instructionsChild.js');
  return existsSync(child) ? child : null;
}

/**
 * Count the JS thread's instructions over `requests` requests of `mode`, after `warmRequests` (rounded up
 * to runs of 2,000). `child`: the counter's child to run, by default this build's (another build's:
 * `childOfBuild`).
 */
export async function jsThreadInstructions(mode: InstructionsMode, warmRequests: number, requests: number, child: string = childEntry()): Promise<InstructionsSample> {
  const dir = mkdtempSync(join(os.tmpdir(), 'xferstate-callgrind-'));
  try {
    const out = join(dir, 'cg');
    await execFileP(
      'valgrind',
      ['--tool=callgrind', '--separate-threads=yes', '--zero-before=*GetLoadAvg*', '--dump-before=*GetUptime*', `--callgrind-out-file=${out}`, process.execPath, '--expose-gc', child, mode, String(warmRequests), String(requests)],
      { maxBuffer: 64 * 1024 * 1024 },
    );
    // Part 1 is the window (dumped at the second marker); thread 01 is the JS thread.
    const window = `${out}.1-01`;
    if (!existsSync(window)) throw new Error('callgrind wrote no window: the child never reached its second marker');
    const { total, compiler, gc } = parseCallgrind(readFileSync(window, 'utf8'));
    return { mode, warmRequests, requests, total, perRequest: mode === 'idle' ? total : total / requests, compiler, gc };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
