import { describe, expect, it } from 'vitest';
import { ServerProcess } from '../../src/executor/harness.js';

/**
 * How the burst harness tells how a server process ended. A server killed mid-burst can make the
 * harness's next write to it fail (EPIPE) before its exit is seen: that error is not how it ended, and
 * a burst once reported such a kill as "could not be started (write EPIPE)" (test/ops/operational's
 * kill -9 test, on a loaded CI machine). Here the error is raised on purpose, then the kill follows.
 */
describe('a server process that dies after it started', () => {
  it('is reported by its exit, not by an error raised on the way (a failed write)', { timeout: 30_000 }, async () => {
    const crashes: string[] = [];
    const p: ServerProcess = new ServerProcess('generation', () => {}, () => crashes.push(p.describeCrash()));
    expect(p.pid).toBeGreaterThan(0);
    // What a write to the channel of a dying process raises (the harness's send, before Node saw the exit).
    (p as unknown as { child: NodeJS.EventEmitter }).child.emit('error', Object.assign(new Error('write EPIPE'), { code: 'EPIPE' }));
    expect(p.exited).toBe(false);
    expect(crashes).toEqual([]);
    const ended = new Promise<void>((resolve) => (p as unknown as { child: NodeJS.EventEmitter }).child.once('exit', () => resolve()));
    process.kill(p.pid!, 'SIGKILL');
    await ended;
    expect(p.exited).toBe(true);
    expect(crashes).toEqual([`the generation server (pid ${p.pid}) was killed by SIGKILL`]);
  });
});
