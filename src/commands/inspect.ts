import type { Command } from 'commander';
import { runDemo } from '../inspect/demo.js';
import { startInspector } from '../inspect/server.js';
import { intOption, portOption } from './options.js';

export interface InspectCommandOptions {
  port: string;
  host: string;
  demo?: boolean;
  tick: string;
  exitOnClose?: boolean;
  stately?: boolean;
}

export function register(program: Command): void {
  program
    .command('inspect')
    .description('serve the live inspector page (offline): machine diagrams, actors, timelines, counterexamples')
    .option('--port <n>', 'port (0 picks a free one)', '7777')
    .option('--host <host>', 'interface to bind (anything but loopback exposes request states to the network)', '127.0.0.1')
    .option('--demo', 'run a small simulation of requests through the production machines')
    .option('--tick <ms>', 'demo: milliseconds between simulated steps', '500')
    .option('--exit-on-close', 'exit once the last open page closes')
    .option('--stately', "also forward events to Stately's hosted inspector via @statelyai/inspect (needs internet)")
    .action(async (opts: InspectCommandOptions) => {
      const port = portOption('port', opts.port);
      const tickMs = intOption('tick', opts.tick, 1, 3_600_000);
      const inspector = await startInspector({ port, host: opts.host, stately: opts.stately });
      console.log(`inspector: ${inspector.url}`);
      console.log(`producers: createWebSocketInspector({ url: '${inspector.wsUrl}' })`);
      const stopDemo = opts.demo ? runDemo(inspector.inspect, { tickMs }) : null;
      if (stopDemo) console.log('demo: simulating requests through the production machines');
      let stopping = false;
      const stop = async (why: string) => {
        if (stopping) return;
        stopping = true;
        stopDemo?.();
        await inspector.close();
        console.log(`inspector closed (${why}); ${inspector.stats().received} events, ${inspector.dropped()} dropped`);
        process.off('SIGINT', onSignal);
        process.off('SIGTERM', onSignal);
        // @statelyai/inspect's Sky socket (PartySocket) reconnects forever and offers no way to close it.
        if (opts.stately) process.exit(process.exitCode ?? 0);
      };
      const onSignal = (sig: NodeJS.Signals) => void stop(sig);
      process.on('SIGINT', onSignal);
      process.on('SIGTERM', onSignal);
      if (opts.exitOnClose) void inspector.pagesGone().then(() => stop('page closed'));
    });
}
