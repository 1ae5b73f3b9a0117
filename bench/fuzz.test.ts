import { spawn } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const REPO_ROOT = fileURLToPath(new URL('..', import.meta.url));
const FUZZ = path.join(REPO_ROOT, 'bench', 'fuzz.js');
/** The short fuzz CI runs: about 2,000 requests over both hosts. */
const REQUESTS = 2000;
/**
 * Host memory after the fuzz, once idle, within this much of before it. These bounds catch leaks
 * (the slot leak this test was written for held about 1 GB), not the 50 MB target:
 * - `favn serve`: the 50 MB target plus room for the host's own V8 heap, which keeps pages it grew
 *   into (measured +47 to +56 MB after 1,000 requests; idle isolates go after 3 s).
 * - `vite` dev: the V8 heaps of Vite and of the warm isolate keep pages they grew into. Both hosts
 *   run with the malloc settings the favn binary starts itself with (`--favn-malloc`): started
 *   without them, glibc's per-thread arenas (one per isolated-vm thread) keep malloc'd memory that
 *   no code of ours holds (+78 to +87 MB of malloc against +8.5 MB with them), and one CI run of
 *   seed 1529081648 on Node 26 went past the former 200 MB bound (+207 MB). With the settings, two
 *   seeds on Node 22, 24 and 26 grew by +46 to +84 MB (docs/fuzz.md).
 */
const RSS_BOUND_MB: Record<string, number> = { serve: 100, vite: 150 };
const RUN_TIMEOUT_MS = 900_000;

interface HostLine {
  host: string;
  requests: number;
  non_contract: number;
  hangs: number;
  rss_before_mb: number;
  rss_after_mb: number;
  rss_growth_mb: number;
  findings: { cls: string; label: string; reason: string }[];
}

/** Runs `node bench/fuzz.js` as `npm run fuzz` does and returns everything it printed. */
function runFuzz(args: string[]): Promise<{ code: number | null; out: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [FUZZ, ...args], {
      cwd: REPO_ROOT,
      env: { ...process.env, NO_COLOR: '1' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (out += d));
    const timer = setTimeout(() => child.kill('SIGTERM'), RUN_TIMEOUT_MS - 30_000);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, out });
    });
  });
}

/**
 * The fuzzer against both real hosts (`favn serve` over built fixtures, `vite` dev with the
 * plugin), each in its own process: random and malformed requests must all get contract answers
 * in time, and the host's memory must come back once idle.
 */
describe('fuzz: random and malformed requests against favn serve and vite dev', () => {
  it(
    `answers ${REQUESTS} requests by the contract, without hangs, and keeps its memory`,
    async () => {
      const { code, out } = await runFuzz(['--requests', String(REQUESTS), '--favn-malloc']);
      const lines = out.split('\n');
      const report = lines
        .filter((l) => !l.startsWith('{'))
        .slice(-80)
        .join('\n');
      const hosts = lines.filter((l) => l.startsWith('{"bench":"fuzz-host"')).map((l) => JSON.parse(l) as HostLine);
      expect(hosts.map((h) => h.host)).toEqual(['serve', 'vite']);
      for (const host of hosts) {
        const findings = host.findings.map((f) => `[${f.cls}] ${f.label}: ${f.reason}`).join('\n');
        expect(host.non_contract, `${host.host}: non-contract answers\n${findings}\n${report}`).toBe(0);
        expect(host.hangs, `${host.host}: hangs\n${findings}\n${report}`).toBe(0);
        expect(
          host.rss_growth_mb,
          `${host.host}: RSS ${host.rss_before_mb} -> ${host.rss_after_mb} MB\n${report}`,
        ).toBeLessThanOrEqual(RSS_BOUND_MB[host.host]!);
      }
      const final = JSON.parse(lines.filter((l) => l.startsWith('{"bench":"fuzz"')).at(-1) ?? 'null') as Record<
        string,
        number
      > | null;
      expect(final, report).toMatchObject({ bench: 'fuzz', non_contract: 0, hangs: 0 });
      expect(final!.requests).toBeGreaterThanOrEqual(REQUESTS * 0.95);
      expect(final!.rss_growth_mb).toBeLessThanOrEqual(Math.max(...Object.values(RSS_BOUND_MB)));
      expect(code, report).toBe(0);
    },
    RUN_TIMEOUT_MS,
  );
});
