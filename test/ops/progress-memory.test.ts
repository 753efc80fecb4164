import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { progressReporter } from '../../src/commands/burst.js';

/**
 * A long burst shows progress on a terminal and stays quiet when piped or asked for JSON; the report
 * carries both servers' RSS from the 10 % mark to the end.
 */
const bin = fileURLToPath(new URL('../../bin/xferstate.js', import.meta.url));
const small = ['burst', '--requests', '40', '--concurrency', '4', '--block-size', '4096', '--blocks-per-request', '2'];

describe('progressReporter', () => {
  const sink = (isTTY: boolean) => {
    const out: string[] = [];
    return { out, stream: { isTTY, write: (s: string) => (out.push(s), true) } };
  };

  it('is absent when stderr is not a terminal, and with --json', () => {
    expect(progressReporter(sink(false).stream, false)).toBeNull();
    expect(progressReporter(sink(true).stream, true)).toBeNull();
  });

  it('draws at most one line per 100 ms, always the last one, and ends the line', () => {
    const { out, stream } = sink(true);
    let now = 0;
    const p = progressReporter(stream, false, () => now)!;
    for (let done = 1; done <= 1000; done++) {
      now = done; // 1 ms per request: 1000 requests in one second
      p.onProgress(done, 1000);
    }
    p.done();
    expect(out.length).toBeGreaterThanOrEqual(10);
    expect(out.length).toBeLessThanOrEqual(13);
    expect(out.at(-2)).toBe(`\r[${'#'.repeat(30)}] 1000/1000`);
    expect(out.at(-1)).toBe('\n');
  });
});

describe('burst on a terminal and through a pipe', () => {
  it('piped: no progress on stderr; --json carries memory for both servers', { timeout: 120_000 }, () => {
    const r = spawnSync(process.execPath, [bin, ...small, '--json'], { encoding: 'utf8', timeout: 110_000 });
    expect(r.status).toBe(0);
    expect(r.stderr).not.toMatch(/\r\[/);
    const out = JSON.parse(r.stdout) as { memory: Record<'context' | 'generation', { rssStartMB: number; rssEndMB: number }> };
    for (const role of ['context', 'generation'] as const) {
      // A node process with the addon and a pool: tens of MB, never 0 or unmeasured.
      expect(out.memory[role].rssStartMB).toBeGreaterThan(10);
      expect(out.memory[role].rssEndMB).toBeGreaterThan(10);
    }
  });

  // util-linux `script` runs the CLI on a pseudo-terminal (its output comes back through the pty).
  const hasScript = existsSync('/usr/bin/script');
  it.skipIf(!hasScript)('on a terminal: a progress bar that reaches the end, and the memory line in the report', { timeout: 120_000 }, () => {
    const cmd = [process.execPath, bin, ...small].map((a) => `'${a}'`).join(' ');
    const r = spawnSync('script', ['-qec', cmd, '/dev/null'], { encoding: 'utf8', timeout: 110_000 });
    expect(r.status).toBe(0);
    expect(r.stdout).toMatch(/\r\[#{30}\] 40\/40/);
    expect(r.stdout).toMatch(/memory \(RSS\)\s+context [\d.]+ → [\d.]+ MB, generation [\d.]+ → [\d.]+ MB/);
  });

  it.skipIf(!hasScript)('on a terminal with --json: no progress bar', { timeout: 120_000 }, () => {
    const cmd = [process.execPath, bin, ...small, '--json'].map((a) => `'${a}'`).join(' ');
    const r = spawnSync('script', ['-qec', cmd, '/dev/null'], { encoding: 'utf8', timeout: 110_000 });
    expect(r.status).toBe(0);
    expect(r.stdout).not.toMatch(/\r\[/);
  });
});
