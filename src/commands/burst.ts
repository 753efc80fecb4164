import type { Command } from 'commander';
import { availableBackends } from '../native/index.js';
import type { BurstReport } from '../executor/harness.js';
import { parseFaults, runBurst } from '../executor/harness.js';
import { UsageError } from '../errors.js';

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

function positiveInt(name: string, v: string, min = 1): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n < min) throw new UsageError(`--${name} must be an integer ≥ ${min}, got '${v}'`);
  return n;
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
  if (Object.keys(r.faultsInjected).length) lines.push(`faults        ${Object.entries(r.faultsInjected).map(([k, v]) => `${k} ${v}`).join(', ')}${r.peerRestarts ? `; context server restarted ${r.peerRestarts}×` : ''}`);
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
      const concurrency = positiveInt('concurrency', opts.concurrency);
      const faultRate = Number(opts.faultRate);
      if (!(faultRate >= 0 && faultRate <= 1)) throw new UsageError(`--fault-rate must be in [0, 1], got '${opts.faultRate}'`);
      if (!availableBackends().includes(opts.backend)) throw new UsageError(`backend '${opts.backend}' is not available here; available: ${availableBackends().join(', ')}`);
      const tty = process.stderr.isTTY && !opts.json;
      // --inspect alone starts a local inspector; --inspect URL streams to one that is already running.
      const inspector = opts.inspect === true ? await (await import('../inspect/index.js')).startInspector({ port: 0 }) : null;
      if (inspector) console.error(`inspector: ${inspector.url}`);
      const inspectUrl = inspector ? inspector.wsUrl : typeof opts.inspect === 'string' ? opts.inspect : undefined;
      const report = await runBurst({
        concurrency,
        requests: positiveInt('requests', opts.requests),
        faults: parseFaults(opts.faults),
        faultRate,
        seed: positiveInt('seed', opts.seed, 0),
        blockBytes: positiveInt('block-size', opts.blockSize, 64),
        blocksPerRequest: positiveInt('blocks-per-request', opts.blocksPerRequest),
        backend: opts.backend,
        kvTransferTimeoutMs: positiveInt('kv-transfer-timeout-ms', opts.kvTransferTimeoutMs, 10),
        recvSlots: opts.recvSlots ? positiveInt('recv-slots', opts.recvSlots) : concurrency,
        ...(opts.trace ? { tracePath: opts.trace } : {}),
        ...(inspectUrl ? { inspectUrl } : {}),
        ...(opts.metricsPort !== undefined ? { metricsPort: positiveInt('metrics-port', opts.metricsPort, 0) } : {}),
        ...(tty ? { onProgress: (d: number, t: number) => process.stderr.write(`\r[${'#'.repeat(Math.round((d / t) * 30)).padEnd(30)}] ${d}/${t}`) } : {}),
      });
      if (tty) process.stderr.write('\n');
      if (opts.json) {
        const { completed, cancelled, failed, corrupted, leakedBlocks, stuck, quarantine, requestsPerSecond, gbps, latencyMs } = report;
        console.log(JSON.stringify({ completed, cancelled, failed, corrupted, leakedBlocks, stuck, quarantine, requestsPerSecond, gbps, latencyMs, details: report }));
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
