import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';

/**
 * A fixed pool of worker threads running jobs in submission order, or this thread when its size is 0.
 * A worker answers each job with its result, or `{ error }`; one that dies (e.g. out of memory) fails
 * its job and is replaced. Used by `explore` (composed combinations) and `mutate` (mutants).
 */
export class WorkerPool<J, R> {
  private readonly workers: Worker[] = [];
  private readonly idle: Worker[] = [];
  private readonly queue: Array<{ job: J; resolve: (r: R) => void; reject: (e: Error) => void }> = [];
  private readonly pending = new Map<Worker, { resolve: (r: R) => void; reject: (e: Error) => void }>();
  private closing = false;

  /**
   * `inThread` runs a job when there is no worker; `heapMb` bounds each worker's heap (a job whose
   * state grows without bound is stopped there, not the machine).
   */
  constructor(
    size: number,
    private readonly file: URL | null,
    private readonly inThread: (job: J) => R,
    private readonly heapMb?: number,
  ) {
    for (let i = 0; i < size && file; i++) this.spawn();
  }

  private spawn(): void {
    const w = new Worker(this.file!, this.heapMb ? { resourceLimits: { maxOldGenerationSizeMb: this.heapMb } } : {});
    w.on('message', (r: R | { error: string }) => {
      const p = this.pending.get(w)!;
      this.pending.delete(w);
      if (r && typeof r === 'object' && 'error' in r) p.reject(new Error(r.error));
      else p.resolve(r as R);
      this.idle.push(w);
      this.pump();
    });
    w.on('error', (e) => {
      this.pending.get(w)?.reject(e);
      this.pending.delete(w);
    });
    w.on('exit', () => {
      const i = this.workers.indexOf(w);
      if (i >= 0) this.workers.splice(i, 1);
      if (this.closing) return;
      this.pending.get(w)?.reject(new Error('worker exited'));
      this.pending.delete(w);
      this.spawn();
      this.pump();
    });
    this.workers.push(w);
    this.idle.push(w);
  }

  get size(): number {
    return this.workers.length;
  }

  run(job: J): Promise<R> {
    if (this.workers.length === 0) {
      // Yield between jobs so a budget check and progress output interleave with the work.
      return new Promise((resolve, reject) =>
        setImmediate(() => {
          try {
            resolve(this.inThread(job));
          } catch (e) {
            reject(e as Error);
          }
        }),
      );
    }
    return new Promise((resolve, reject) => {
      this.queue.push({ job, resolve, reject });
      this.pump();
    });
  }

  private pump(): void {
    while (this.idle.length > 0 && this.queue.length > 0) {
      const w = this.idle.pop()!;
      const { job, resolve, reject } = this.queue.shift()!;
      this.pending.set(w, { resolve, reject });
      w.postMessage(job);
    }
  }

  async close(): Promise<void> {
    this.closing = true;
    await Promise.all(this.workers.map((w) => w.terminate()));
  }
}

/** A compiled worker script next to a module (`new URL(name, import.meta.url)`); null when running from TypeScript sources (tests). */
export function compiledWorker(file: URL, moduleUrl: string): URL | null {
  return moduleUrl.endsWith('.js') && existsSync(fileURLToPath(file)) ? file : null;
}

/**
 * A compiled entry script: `beside` (next to the calling module in dist/), else `built` (the same file
 * in dist/, for a module running from TypeScript sources in tests); null when neither exists.
 */
export function compiledEntry(beside: URL, built: URL): string | null {
  for (const u of [beside, built]) if (existsSync(fileURLToPath(u))) return fileURLToPath(u);
  return null;
}
