/**
 * A bounded histogram of durations (ms): log-spaced buckets, so a server that runs for days keeps the
 * same few hundred numbers however many samples it records. Quantiles are the bucket's upper bound
 * (within ~4 % of the true value above 1 µs).
 */
const BUCKETS_PER_DOUBLING = 16;
const MIN_MS = 0.001;
const MAX_BUCKET = 40 * BUCKETS_PER_DOUBLING;

export class Histogram {
  private readonly counts = new Uint32Array(MAX_BUCKET + 1);
  count = 0;

  record(ms: number): void {
    const i = ms <= MIN_MS ? 0 : Math.min(MAX_BUCKET, Math.ceil(Math.log2(ms / MIN_MS) * BUCKETS_PER_DOUBLING));
    this.counts[i]!++;
    this.count++;
  }

  /** The smallest bucket bound below which at least q of the samples fall. */
  quantile(q: number): number {
    if (this.count === 0) return 0;
    const target = Math.max(1, Math.ceil(q * this.count));
    let seen = 0;
    for (let i = 0; i <= MAX_BUCKET; i++) {
      seen += this.counts[i]!;
      if (seen >= target) return i === 0 ? MIN_MS : MIN_MS * 2 ** (i / BUCKETS_PER_DOUBLING);
    }
    return MIN_MS * 2 ** (MAX_BUCKET / BUCKETS_PER_DOUBLING);
  }
}
