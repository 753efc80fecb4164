import { spawn, spawnSync } from 'node:child_process';
import type { SpawnSyncReturns } from 'node:child_process';
import { createServer } from 'node:net';
import type { Server } from 'node:net';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { EXIT } from '../../src/errors.js';

/**
 * What an operator meets when something around the burst or the inspector goes wrong: one line on
 * stderr, an exit code per kind (documented in README.md), nothing left in /dev/shm or the temp dir.
 * Every process here is the real CLI on loopback or Unix sockets, bounded by a timeout.
 */
const bin = fileURLToPath(new URL('../../bin/xferstate.js', import.meta.url));
const scratch = mkdtempSync(join(tmpdir(), 'xferstate-ops-'));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

/** A private TMPDIR per run, so "nothing left behind" can be checked without seeing other runs' files. */
function privateTmp(): string {
  return mkdtempSync(join(scratch, 'tmp-'));
}

function run(args: string[], tmp = privateTmp(), timeout = 60_000): SpawnSyncReturns<string> & { tmp: string } {
  const r = spawnSync(process.execPath, [bin, ...args], { encoding: 'utf8', timeout, env: { ...process.env, TMPDIR: tmp, XFERSTATE_DEBUG: '' } });
  return Object.assign(r, { tmp });
}

/** The harness names its servers' agents ctx-N-<pid> and gen-<pid>; their segments carry those names. */
function segmentsOf(pid: number): string[] {
  if (!existsSync('/dev/shm')) return [];
  return readdirSync('/dev/shm').filter((n) => n.includes(`-ctx-0-${pid}-`) || n.includes(`-gen-${pid}-`));
}

function expectOneLine(stderr: string, message: RegExp): void {
  const lines = stderr.split('\n').filter(Boolean);
  expect(lines).toEqual([expect.stringMatching(message)]);
  expect(stderr).not.toMatch(/\n\s+at /);
}

// Each case spawns the CLI; on a loaded machine that alone can take seconds.
const CLI_TIMEOUT = { timeout: 60_000 };

describe('usage errors: exit 2, one line that says the range', CLI_TIMEOUT, () => {
  it.each([
    [['burst', '--requests', '1e3'], /--requests must be a decimal integer in 1\.\.2\^53-1, got '1e3'/],
    [['burst', '--requests', '0x10'], /--requests must be a decimal integer .* got '0x10'/],
    [['burst', '--requests', '12abc'], /got '12abc'/],
    [['burst', '--requests', '-1'], /got '-1'/],
    [['burst', '--requests', ''], /--requests must be a decimal integer .* got ''/],
    [['burst', '--requests', ' 12'], /got ' 12'/],
    [['burst', '--concurrency', '1.5'], /--concurrency must be a decimal integer in 1\.\.1000000/],
    [['burst', '--seed', '4294967296'], /--seed must be a decimal integer in 0\.\.4294967295/],
    [['burst', '--kv-transfer-timeout-ms', '5'], /--kv-transfer-timeout-ms must be a decimal integer in 10\.\./],
    [['burst', '--fault-rate', '5e-1'], /--fault-rate must be a decimal number in \[0, 1\], got '5e-1'/],
    [['burst', '--fault-rate', '1.5'], /--fault-rate must be a decimal number in \[0, 1\]/],
    [['burst', '--block-size', '100'], /--block-size must be a multiple of 8 .* got '100'/],
    [['burst', '--block-size', '99999999999'], /--block-size must be a multiple of 8 .* got '99999999999'/],
    [['burst', '--block-size', '32'], /--block-size must be a decimal integer in 64\.\./],
    [['inspect', '--port', '99999'], /--port must be a decimal integer in 0\.\.65535, got '99999'/],
    [['inspect', '--port', 'http'], /--port must be a decimal integer/],
    [['inspect', '--tick', '0'], /--tick must be a decimal integer in 1\.\./],
  ])('%j', (args, message) => {
    const r = run(args);
    expect(r.status).toBe(EXIT.usage);
    expectOneLine(r.stderr, message);
    // Refused before anything started.
    expect(readdirSync(r.tmp)).toEqual([]);
  });

  it('an unknown option is a usage error too (commander would exit 1, which means "defect found")', () => {
    const r = run(['burst', '--bogus']);
    expect(r.status).toBe(EXIT.usage);
    expect(r.stderr).toMatch(/unknown option '--bogus'/);
  });
});

describe('operational errors: one line, an exit code of their own', CLI_TIMEOUT, () => {
  it('the exit codes are distinct from each other and from usage and check failures', () => {
    const codes = Object.values(EXIT);
    expect(new Set(codes).size).toBe(codes.length);
  });

  it('--trace to a path that cannot be written fails before the burst starts (exit 4)', () => {
    const r = run(['burst', '--requests', '100000', '--trace', join(scratch, 'no', 'such', 'dir', 'trace.jsonl')]);
    expect(r.status).toBe(EXIT.cannotWrite);
    expectOneLine(r.stderr, /cannot write the trace to '.*trace\.jsonl': no such file or directory/);
    expect(r.stdout).toBe('');
    // No server was started: no burst directory, no segment.
    expect(readdirSync(r.tmp)).toEqual([]);
    expect(segmentsOf(r.pid!)).toEqual([]);
  });

  it('a server that cannot start is reported at once (exit 5) and leaves nothing behind', () => {
    // A multiple of 8, so it passes the pattern check; 84 blocks of it are far beyond any /dev/shm.
    const r = run(['burst', '--block-size', '99999999992', '--requests', '10']);
    expect(r.status).toBe(EXIT.serverStartFailed);
    expectOneLine(r.stderr, /the context server did not start \(block pool \d+ blocks × 99999999992 bytes = [\d.]+ GiB\): /);
    expect(readdirSync(r.tmp)).toEqual([]);
    expect(segmentsOf(r.pid!)).toEqual([]);
  });

  describe('inspect', () => {
    let taken: Server;
    afterAll(() => new Promise<void>((resolve) => taken.close(() => resolve())));

    it('a port in use is one line and exit 3', async () => {
      taken = createServer();
      const port = await new Promise<number>((resolve) => taken.listen(0, '127.0.0.1', () => resolve((taken.address() as { port: number }).port)));
      const r = run(['inspect', '--port', String(port)]);
      expect(r.status).toBe(EXIT.portUnavailable);
      expectOneLine(r.stderr, new RegExp(`cannot listen on 127\\.0\\.0\\.1:${port}: the address is already in use`));
    });

    it('an address this machine does not have is one line and exit 3', () => {
      // TEST-NET-1 (RFC 5737): never assigned to a local interface.
      const r = run(['inspect', '--host', '192.0.2.1', '--port', '0']);
      expect(r.status).toBe(EXIT.portUnavailable);
      expectOneLine(r.stderr, /cannot listen on 192\.0\.2\.1:0: the address is not available/);
    });
  });
});

/** Pids of the CLI's server processes, by the titles the servers give themselves once they are up. */
function serverPid(cliPid: number, title: 'xferstate-gen' | 'xferstate-ctx'): number | null {
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      if (ppid === cliPid && readFileSync(`/proc/${entry}/cmdline`, 'utf8').startsWith(title)) return Number(entry);
    } catch {
      // The process went away between readdir and read.
    }
  }
  return null;
}

describe.each([
  ['generation', 'xferstate-gen'],
  ['context', 'xferstate-ctx'],
] as const)('kill -9 of the %s server mid-burst', (role, title) => {
  it('is reported with the server and the signal, a partial report, exit 6, and nothing left behind', { timeout: 120_000 }, async () => {
    const tmp = privateTmp();
    const cli = spawn(process.execPath, [bin, 'burst', '--requests', '1000000', '--concurrency', '8', '--block-size', '4096', '--json'], {
      env: { ...process.env, TMPDIR: tmp },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    cli.stdout.on('data', (d: Buffer) => (stdout += d));
    cli.stderr.on('data', (d: Buffer) => (stderr += d));
    const exited = new Promise<number | null>((resolve) => cli.on('exit', (code) => resolve(code)));
    const guard = setTimeout(() => cli.kill('SIGKILL'), 110_000);
    try {
      // Both servers up (the generation server starts second), then a moment of burst before the kill.
      let victim: number | null = null;
      for (let i = 0; i < 1000 && serverPid(cli.pid!, 'xferstate-gen') === null; i++) await new Promise((r) => setTimeout(r, 50));
      victim = serverPid(cli.pid!, title);
      const survivor = serverPid(cli.pid!, title === 'xferstate-gen' ? 'xferstate-ctx' : 'xferstate-gen');
      expect(victim, `the ${role} server of the CLI (pid ${cli.pid})`).not.toBeNull();
      expect(survivor).not.toBeNull();
      await new Promise((r) => setTimeout(r, 1000));
      process.kill(victim!, 'SIGKILL');
      const code = await exited;
      expect(code).toBe(EXIT.serverDied);
      expectOneLine(stderr, new RegExp(`the ${role} server \\(pid ${victim}\\) was killed by SIGKILL after \\d+ of 1000000 requests had finished \\(\\d+ in flight\\); partial report on stdout`));
      const partial = JSON.parse(stdout) as { aborted: { server: string | null; cause: string; submitted: number; finished: number }; completed: number; cancelled: number; failed: number; corrupted: number };
      expect(partial.aborted.server).toBe(role);
      expect(partial.aborted.submitted).toBeGreaterThan(0);
      expect(partial.completed + partial.cancelled + partial.failed).toBe(partial.aborted.finished);
      expect(partial.corrupted).toBe(0);
      expect(readdirSync(tmp)).toEqual([]);
      expect(segmentsOf(cli.pid!)).toEqual([]);
      // The surviving server was stopped too, not orphaned.
      expect(existsSync(`/proc/${survivor}`)).toBe(false);
    } finally {
      clearTimeout(guard);
      if (cli.exitCode === null) cli.kill('SIGKILL');
    }
  });
});

describe('Ctrl-C of a burst', () => {
  it('(SIGINT to its process group) ends it with a partial report, exit 130, and nothing left behind', { timeout: 120_000 }, async () => {
    const tmp = privateTmp();
    // Its own process group, as a shell gives a foreground job: the signal reaches the CLI and both servers.
    const cli = spawn(process.execPath, [bin, 'burst', '--requests', '1000000', '--concurrency', '8', '--block-size', '4096', '--json'], {
      env: { ...process.env, TMPDIR: tmp },
      stdio: ['ignore', 'pipe', 'pipe'],
      detached: true,
    });
    let stdout = '';
    let stderr = '';
    cli.stdout.on('data', (d: Buffer) => (stdout += d));
    cli.stderr.on('data', (d: Buffer) => (stderr += d));
    const exited = new Promise<number | null>((resolve) => cli.on('exit', (code) => resolve(code)));
    const guard = setTimeout(() => process.kill(-cli.pid!, 'SIGKILL'), 110_000);
    try {
      for (let i = 0; i < 1000 && serverPid(cli.pid!, 'xferstate-gen') === null; i++) await new Promise((r) => setTimeout(r, 50));
      const servers = [serverPid(cli.pid!, 'xferstate-ctx'), serverPid(cli.pid!, 'xferstate-gen')];
      expect(servers).not.toContain(null);
      await new Promise((r) => setTimeout(r, 1000));
      process.kill(-cli.pid!, 'SIGINT');
      expect(await exited).toBe(EXIT.interrupted);
      expectOneLine(stderr, /^xferstate: interrupted by SIGINT after \d+ of 1000000 requests had finished \(\d+ in flight\); partial report on stdout$/);
      const partial = JSON.parse(stdout) as { aborted: { server: string | null; cause: string } };
      expect(partial.aborted).toMatchObject({ server: null, cause: 'interrupted by SIGINT' });
      expect(readdirSync(tmp)).toEqual([]);
      expect(segmentsOf(cli.pid!)).toEqual([]);
      for (const pid of servers) expect(existsSync(`/proc/${pid}`)).toBe(false);
    } finally {
      clearTimeout(guard);
      if (cli.exitCode === null) process.kill(-cli.pid!, 'SIGKILL');
    }
  });
});
