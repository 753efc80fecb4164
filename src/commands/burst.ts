import type { Command } from 'commander';
import { availableBackends } from '../native/index.js';
import type { BurstMemory, BurstReport, PartialBurstReport } from '../executor/harness.js';
import { parseFaults, runBurst, BurstStoppedError } from '../executor/harness.js';
import { UsageError } from '../errors.js';
import { fractionOption, intOption } from './options.js';

interface BurstCliOptions {
  concurrency: string;
  requests: string;
  faults?: string;
  faultRate: string;
  seed: string;
  blockSize: string;
  blocksPerRequest: string;
  backend: string;
  kvTransferTimeoutMs: string;
  recvSlots?: string;
  json?: boolean;
  trace?: string;
  inspect?: boolean | string;
  metricsPort?: string;
}

/**
 * A progress line on stderr when it is a terminal, at most every 100 ms (a burst finishes thousands of
 * requests a second); `done()` ends the line. Nothing at all when stderr is piped or the output is JSON.
 */
export function progressReporter(stream: Pick<NodeJS.WriteStream, 'write'> & { isTTY?: boolean }, json: boolean, now: () => number = Date.now) {
  if (!stream.isTTY || json) return null;
  let last = -Infinity;
  let shown = false;
  return {
    onProgress(done: number, total: number): void {
      const t = now();
      if (done < total && t - last < 100) return;
      last = t;
      shown = true;
      stream.write(`\r[${'#'.repeat(Math.round((done / total) * 30)).padEnd(30)}] ${done}/${total}`);
    },
    done(): void {
      if (shown) stream.write('\n');
      shown = false;
    },
  };
}

export function formatPartialReport(r: PartialBurstReport): string {
  return [
    `PARTIAL REPORT: ${r.aborted.cause}`,
    `requests      finished ${r.aborted.finished} of ${r.aborted.submitted} submitted (${r.aborted.inFlight} in flight, not counted): completed ${r.completed}, cancelled ${r.cancelled}, failed ${r.failed}${Object.keys(r.failedByReason).length ? ` (${Object.entries(r.failedByReason).map(([k, v]) => `${k} ${v}`).join(', ')})` : ''}`,
    `corrupted     ${r.corrupted}   (so far)`,
    `leaked, stuck not known: the run stopped before the servers could account for their blocks`,
    `latency       p50 ${r.latencyMs.p50} ms, p99 ${r.latencyMs.p99} ms (wall ${r.wallMs} ms)`,
  ].join('\n');
}

export function formatReport(r: BurstReport): string {
  const lines = [
    `requests      ${r.requests}: completed ${r.completed}, cancelled ${r.cancelled}, failed ${r.failed}${Object.keys(r.failedByReason).length ? ` (${Object.entries(r.failedByReason).map(([k, v]) => `${k} ${v}`).join(', ')})` : ''}`,
    `corrupted     ${r.corrupted}   (must be 0)`,
    `leaked blocks ${r.leakedBlocks}   (must be 0; retired by a failed fence: ${r.retiredBlocks})`,
    `stuck         ${r.stuck}   (must be 0)`,
    `quarantine    entered ${r.quarantine.entered}, released by proof ${r.quarantine.releasedByProof}, by fence ${r.quarantine.releasedByFence}`,
    `log lines     per request: max ${r.logLinesPerRequest.max}, mean ${r.logLinesPerRequest.mean} (transitions per request: max ${r.transitionsPerRequest.max}, mean ${r.transitionsPerRequest.mean})`,
    `throughput    ${r.requestsPerSecond} requests/s, ${r.gbps} GB/s of verified KV`,
    `latency       p50 ${r.latencyMs.p50} ms, p99 ${r.latencyMs.p99} ms (wall ${r.wallMs} ms)`,
  ];
  const mem = (m: BurstMemory['context']) => `${m.rssStartMB ?? '?'} → ${m.rssEndMB ?? '?'} MB`;
  lines.push(`memory (RSS)  context ${mem(r.memory.context)}, generation ${mem(r.memory.generation)} (from 10 % of requests to the end)`);
  if (Object.keys(r.faultsInjected).length) lines.push(`faults        ${Object.entries(r.faultsInjected).map(([k, v]) => `${k} ${v}`).join(', ')}${r.peerRestarts ? `; context server restarted ${r.peerRestarts}×` : ''}`);
  if (Object.keys(r.faultsFired).length) lines.push(`faults fired  ${Object.entries(r.faultsFired).map(([k, v]) => `${k} ${v}`).join(', ')} (points that acted in the servers)`);
  lines.push('time in state p50 / p99 ms:');
  for (const [k, v] of Object.entries(r.timeInStateMs).sort()) lines.push(`  ${k.padEnd(72)} ${String(v.p50).padStart(9)} ${String(v.p99).padStart(9)}  (${v.count})`);
  return lines.join('\n');
}

export function register(program: Command): void {
  program
    .command('burst')
    .description('1P1D burst: a context and a generation server as processes, with seeded fault injection')
    .option('--concurrency <n>', 'requests in flight', '16')
    .option('--requests <m>', 'requests in the burst', '200')
    .option('--faults <list>', 'comma-separated faults, or "all"')
    .option('--fault-rate <p>', 'share of requests that get one fault', '0.5')
    .option('--seed <s>', 'seed for fault placement', '1')
    .option('--block-size <bytes>', 'KV block size', '65536')
    .option('--blocks-per-request <k>', 'KV blocks per request', '4')
    .option('--backend <name>', `transfer backend (${availableBackends().join(', ')})`, process.env.XFERSTATE_BACKEND ?? 'shm')
    .option('--kv-transfer-timeout-ms <ms>', 'kv_transfer_timeout_ms; every other deadline scales from it', '2000')
    .option('--recv-slots <n>', 'concurrent receives on the generation server (default: the concurrency)')
    .option('--json', 'print the report as JSON')
    .option('--trace <file>', 'record every machine transition as JSON lines')
    .option('--inspect [url]', 'stream inspection events to an inspector (ws://127.0.0.1:PORT)')
    .option('--metrics-port <n>', 'serve Prometheus metrics on 127.0.0.1: context server on n, generation server on n+1 (0: free ports)')
    .action(async (opts: BurstCliOptions) => {
      const concurrency = intOption('concurrency', opts.concurrency, 1, 1_000_000);
      const requests = intOption('requests', opts.requests, 1);
      const faultRate = fractionOption('fault-rate', opts.faultRate, 0, 1);
      const seed = intOption('seed', opts.seed, 0, 0xffff_ffff);
      const blockBytes = intOption('block-size', opts.blockSize, 64);
      if (blockBytes % 8 !== 0) throw new UsageError(`--block-size must be a multiple of 8 (the verification pattern is an 8-byte word), got '${opts.blockSize}'`);
      const blocksPerRequest = intOption('blocks-per-request', opts.blocksPerRequest, 1, 65_536);
      const kvTransferTimeoutMs = intOption('kv-transfer-timeout-ms', opts.kvTransferTimeoutMs, 10, 86_400_000);
      const recvSlots = opts.recvSlots !== undefined ? intOption('recv-slots', opts.recvSlots, 1, 1_000_000) : concurrency;
      const faults = parseFaults(opts.faults);
      if (!availableBackends().includes(opts.backend)) throw new UsageError(`backend '${opts.backend}' is not available here; available: ${availableBackends().join(', ')}`);
      const progress = progressReporter(process.stderr, opts.json === true);
      // --inspect alone starts a local inspector; --inspect URL streams to one that is already running.
      const inspector = opts.inspect === true ? await (await import('../inspect/index.js')).startInspector({ port: 0 }) : null;
      if (inspector) console.error(`inspector: ${inspector.url}`);
      const inspectUrl = inspector ? inspector.wsUrl : typeof opts.inspect === 'string' ? opts.inspect : undefined;
      // Ctrl-C reaches the servers too, but they leave stopping to us (child.ts): the run ends with a
      // partial report and removes everything it made, instead of dying with its segments in /dev/shm.
      const stop = new AbortController();
      const onSignal = (sig: NodeJS.Signals) => stop.abort(sig);
      process.once('SIGINT', onSignal);
      process.once('SIGTERM', onSignal);
      let report: BurstReport;
      try {
        report = await runBurst({
          concurrency,
          requests,
          faults,
          faultRate,
          seed,
          blockBytes,
          blocksPerRequest,
          backend: opts.backend,
          kvTransferTimeoutMs,
          recvSlots,
          ...(opts.trace ? { tracePath: opts.trace } : {}),
          ...(inspectUrl ? { inspectUrl } : {}),
          ...(opts.metricsPort !== undefined ? { metricsPort: intOption('metrics-port', opts.metricsPort, 0, 65534) } : {}),
          ...(progress ? { onProgress: progress.onProgress } : {}),
          signal: stop.signal,
        });
      } catch (err) {
        progress?.done();
        await inspector?.close();
        // What finished before a server died is still worth reading; the one-line cause follows on stderr.
        if (err instanceof BurstStoppedError) console.log(opts.json ? JSON.stringify(err.partial) : formatPartialReport(err.partial));
        throw err;
      } finally {
        process.off('SIGINT', onSignal);
        process.off('SIGTERM', onSignal);
      }
      progress?.done();
      if (opts.json) {
        const { completed, cancelled, failed, corrupted, leakedBlocks, stuck, quarantine, requestsPerSecond, gbps, latencyMs, memory } = report;
        console.log(JSON.stringify({ completed, cancelled, failed, corrupted, leakedBlocks, stuck, quarantine, requestsPerSecond, gbps, latencyMs, memory, details: report }));
      } else console.log(formatReport(report));
      process.exitCode = report.corrupted || report.leakedBlocks || report.stuck ? 1 : 0;
      if (inspector) {
        console.error(`inspector: ${inspector.stats().received} events received, ${inspector.dropped()} dropped`);
        // On a terminal, keep the page up until it is closed or Ctrl-C; otherwise exit now.
        if (process.stdout.isTTY) {
          console.error('inspector: close the page or press Ctrl-C to exit');
          await Promise.race([inspector.pagesGone(), new Promise((r) => process.once('SIGINT', r))]);
        }
        await inspector.close();
      }
    });
}
