import { describe, expect, it } from 'vitest';
import { RequestError } from '../../runtime/request-error.js';
import { UsageError } from '../common/usage-error.js';
import { checkCrossSite, createCrossSiteCheck, type CrossSiteOptions } from './csrf.js';

/** The 403 message for these headers, or null when the request passes. */
function refusal(headers: Record<string, string>, options: CrossSiteOptions = {}): string | null {
  try {
    checkCrossSite(new Headers(headers), options);
    return null;
  } catch (error) {
    if (!(error instanceof RequestError)) throw error;
    expect(error.status).toBe(403);
    return error.message;
  }
}

const HOST = { host: 'app.example.com' };

describe('checkCrossSite', () => {
  it('lets requests without Origin and Sec-Fetch-Site through (curl, server to server)', () => {
    expect(refusal({})).toBeNull();
    expect(refusal(HOST)).toBeNull();
  });

  it('trusts the browser when it says same-origin or none', () => {
    expect(refusal({ ...HOST, 'sec-fetch-site': 'same-origin', origin: 'https://app.example.com' })).toBeNull();
    // Behind a proxy that rewrites Host, Sec-Fetch-Site still tells the truth.
    expect(
      refusal({ host: 'backend:3000', 'sec-fetch-site': 'same-origin', origin: 'https://app.example.com' }),
    ).toBeNull();
    expect(refusal({ ...HOST, 'sec-fetch-site': 'none' })).toBeNull();
  });

  it('refuses a request the browser marks cross-site', () => {
    expect(refusal({ ...HOST, 'sec-fetch-site': 'cross-site', origin: 'https://evil.example' })).toBe(
      'Forbidden: cross-site request refused (Sec-Fetch-Site: "cross-site", Origin: "https://evil.example"); add the origin to allowedOrigins if it is trusted',
    );
    expect(refusal({ ...HOST, 'sec-fetch-site': 'cross-site' })).toMatch(
      /^Forbidden: cross-site request refused \(Sec-Fetch-Site: "cross-site"\)/,
    );
  });

  it('refuses same-site requests from a sibling origin unless that origin is allowed', () => {
    const sibling = { ...HOST, 'sec-fetch-site': 'same-site', origin: 'https://blog.example.com' };
    expect(refusal(sibling)).toMatch(/^Forbidden: cross-site request refused \(Sec-Fetch-Site: "same-site"/);
    expect(refusal(sibling, { allowedOrigins: ['https://blog.example.com'] })).toBeNull();
  });

  it('lets allowed origins through, whatever the browser says', () => {
    const options = { allowedOrigins: ['https://Portal.example.com/'] };
    expect(
      refusal({ ...HOST, 'sec-fetch-site': 'cross-site', origin: 'https://portal.example.com' }, options),
    ).toBeNull();
    expect(refusal({ ...HOST, origin: 'https://portal.example.com' }, options)).toBeNull();
    expect(refusal({ ...HOST, origin: 'http://portal.example.com' }, options)).toMatch(
      /^Forbidden: cross-site request refused/,
    );
  });

  it('without Sec-Fetch-Site, compares Origin with the Host header', () => {
    expect(refusal({ ...HOST, origin: 'https://app.example.com' })).toBeNull();
    expect(refusal({ host: 'app.example.com:443', origin: 'https://app.example.com' })).toBeNull();
    expect(refusal({ host: 'localhost:5173', origin: 'http://localhost:5173' })).toBeNull();
    expect(refusal({ host: 'localhost:5173', origin: 'http://localhost:3000' })).toBe(
      'Forbidden: cross-site request refused (Origin "http://localhost:3000" is not host "localhost:5173"); add the origin to allowedOrigins if it is trusted',
    );
    expect(refusal({ ...HOST, origin: 'null' })).toMatch(
      /^Forbidden: cross-site request refused \(Origin "null" is opaque\)/,
    );
    expect(refusal({ ...HOST, origin: 'not a url' })).toMatch(/^Forbidden: cross-site request refused/);
    expect(refusal({ origin: 'https://app.example.com' })).toMatch(/no Host to compare it with/);
  });

  it('reads X-Forwarded-Host and X-Forwarded-Proto only when the proxy is trusted', () => {
    const proxied = {
      host: 'backend:3000',
      'x-forwarded-host': 'app.example.com, proxy.internal',
      'x-forwarded-proto': 'https',
      origin: 'https://app.example.com',
    };
    expect(refusal(proxied)).toMatch(/is not host "backend:3000"/);
    expect(refusal(proxied, { trustProxy: true })).toBeNull();
    expect(refusal({ ...proxied, origin: 'http://app.example.com' }, { trustProxy: true })).toMatch(
      /^Forbidden: cross-site request refused/,
    );
    // A forged X-Forwarded-Host changes nothing without trustProxy.
    expect(
      refusal({ host: 'app.example.com', 'x-forwarded-host': 'evil.example', origin: 'https://evil.example' }),
    ).toMatch(/^Forbidden/);
  });

  it('compares with the configured public host first', () => {
    const headers = { host: 'backend:3000', 'x-forwarded-host': 'evil.example', origin: 'https://app.example.com' };
    expect(refusal(headers, { host: 'app.example.com', trustProxy: true })).toBeNull();
  });

  it('falls back to the request URL for the host', () => {
    const check = createCrossSiteCheck();
    expect(() =>
      check(new Headers({ origin: 'http://localhost:3000' }), 'http://localhost:3000/rpc/f/g'),
    ).not.toThrow();
    expect(() => check(new Headers({ origin: 'http://evil.example' }), 'http://localhost:3000/rpc/f/g')).toThrow(
      RequestError,
    );
  });

  it('refuses allowedOrigins entries that are not bare origins', () => {
    for (const bad of ['*', 'null', 'app.example.com', 'https://app.example.com/path', 'not a url']) {
      expect(() => createCrossSiteCheck({ allowedOrigins: [bad] })).toThrow(UsageError);
    }
    expect(() => createCrossSiteCheck({ allowedOrigins: ['*'] })).toThrow(
      'allowedOrigins[0] is "*": list each trusted origin, like "https://app.example.com"',
    );
  });
});
