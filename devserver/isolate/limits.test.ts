import { describe, expect, it } from 'vitest';
import { parseManifest } from '../feature/manifest.js';
import { DEFAULT_LIMITS, hostAllowed } from './limits.js';

const manifest = (isolate: unknown) => parseManifest(JSON.stringify({ id: 'feature-x', isolate }), 'feature.json');

describe('feature.json "isolate"', () => {
  it('fills the defaults around what is set', () => {
    const limits = manifest({ memoryLimitMb: 64, fetch: { allowHosts: ['API.example.com'] } }).isolate!;
    expect(limits).toEqual({
      ...DEFAULT_LIMITS,
      memoryLimitMb: 64,
      fetch: { ...DEFAULT_LIMITS.fetch, allowHosts: ['api.example.com'] },
    });
  });

  it.each([
    [[], 'feature.json: "isolate" must be an object like {"memoryLimitMb": 128}'],
    [{ memoryLimitMb: 4 }, 'feature.json: "isolate.memoryLimitMb" must be at least 8'],
    [{ cpuLimitMs: 0 }, 'feature.json: "isolate.cpuLimitMs" must be a positive integer (got 0)'],
    [{ timeoutMs: '1s' }, 'feature.json: "isolate.timeoutMs" must be a positive integer (got "1s")'],
    [
      { fetch: { allowHosts: ['https://api.example.com'] } },
      'feature.json: "isolate.fetch.allowHosts" must be an array of host names such as "api.example.com" or "*.example.com"',
    ],
    [
      { fetch: { maxResponseBytes: 1.5 } },
      'feature.json: "isolate.fetch.maxResponseBytes" must be a positive integer (got 1.5)',
    ],
  ])('refuses %j naming the field', (isolate, message) => {
    expect(() => manifest(isolate)).toThrowError(message);
  });
});

describe('hostAllowed', () => {
  it('matches exact hosts, *.domain wildcards and ports; null allows any host', () => {
    const list = ['api.example.com', '*.cdn.example.org', '127.0.0.1:8080'];
    expect(hostAllowed(list, new URL('https://api.example.com/x'))).toBe(true);
    expect(hostAllowed(list, new URL('https://evil-api.example.com/x'))).toBe(false);
    expect(hostAllowed(list, new URL('https://a.cdn.example.org/x'))).toBe(true);
    expect(hostAllowed(list, new URL('https://cdn.example.org.evil.net/x'))).toBe(false);
    expect(hostAllowed(list, new URL('http://127.0.0.1:8080/'))).toBe(true);
    expect(hostAllowed(list, new URL('http://127.0.0.1:9090/'))).toBe(false);
    expect(hostAllowed(null, new URL('http://anything.example/'))).toBe(true);
  });
});
