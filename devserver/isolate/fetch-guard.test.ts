import type { LookupAddress } from 'node:dns';
import { describe, expect, it } from 'vitest';
import { checkFetchTarget } from './fetch-guard.js';

/** A resolver that answers every name with the given addresses (what a hostile DNS could do). */
const resolvesTo =
  (...addresses: string[]) =>
  async (): Promise<LookupAddress[]> =>
    addresses.map((address) => ({ address, family: address.includes(':') ? 6 : 4 }));

const check = (url: string, allowHosts: string[] | null, ...addresses: string[]) =>
  checkFetchTarget(new URL(url), allowHosts, new AbortController().signal, resolvesTo(...addresses));

describe('checkFetchTarget after DNS resolution', () => {
  it.each([
    ['127.0.0.1', 'loopback'],
    ['10.1.2.3', 'private'],
    ['169.254.169.254', 'link-local'],
    ['::1', 'loopback'],
    ['::ffff:127.0.0.1', 'loopback'],
    ['fd00::1', 'unique-local'],
  ])('a public-looking name that resolves to %s is refused', async (address, kind) => {
    await expect(check('http://api.example.com/x', null, address)).rejects.toThrow(
      new RegExp(`api\\.example\\.com resolves to .*${kind}`),
    );
  });

  it('one bad address among good ones refuses the name (the connection could land on it)', async () => {
    await expect(check('http://api.example.com/x', null, '93.184.216.34', '127.0.0.1')).rejects.toThrow(
      /resolves to 127\.0\.0\.1/,
    );
  });

  it('a wildcard entry does not open private addresses; an exact entry does', async () => {
    await expect(check('http://db.internal.example/x', ['*.internal.example'], '10.0.0.5')).rejects.toThrow(/refused/);
    await expect(check('http://db.internal.example/x', ['db.internal.example'], '10.0.0.5')).resolves.toEqual([
      { address: '10.0.0.5', family: 4 },
    ]);
  });

  it('public addresses are returned to connect to, and only those', async () => {
    await expect(check('https://api.example.com/x', null, '93.184.216.34')).resolves.toEqual([
      { address: '93.184.216.34', family: 4 },
    ]);
  });
});
