import { describe, expect, it } from 'vitest';
import { createHostAllowList, parseAllowedHosts, parseHost } from './allowed-hosts.js';

describe('the Host allow-list of favn serve', () => {
  const allowed = createHostAllowList(['app.example.com', '.example.org'], ['myhost']);

  it.each([
    'localhost',
    'localhost:3000',
    'LOCALHOST:3000',
    'localhost.:3000',
    'tenant.localhost',
    '127.0.0.1:3000',
    '127.0.0.1.',
    '10.0.0.7',
    '[::1]:3000',
    '[::1]',
    '[fe80::1]',
    'app.example.com',
    'App.Example.COM:443',
    'app.example.com.',
    'example.org',
    'a.b.example.org:8080',
    'myhost:3000',
  ])('allows %s', (host) => {
    expect(allowed(host)).toBe(true);
  });

  it.each([
    ['another name', 'evil.example'],
    ['another name with a port', 'evil.example:3000'],
    ['a subdomain of an exact entry', 'x.app.example.com'],
    ['a name that only ends like an entry', 'evilexample.org'],
    ['a suffix entry as a prefix', 'example.org.evil.example'],
    ['an entry as a subdomain of another', 'app.example.com.evil.example'],
    ['no Host', undefined],
    ['an empty Host', ''],
    ['two Host headers, joined', 'localhost, evil.example'],
    ['two allowed Host headers, joined', 'localhost, localhost'],
    ['userinfo', 'user@localhost'],
    ['userinfo before an allowed name', 'localhost@evil.example'],
    ['a path', 'localhost/evil'],
    ['percent-encoding', 'evil%2eexample'],
    ['a bare IPv6 address', '::1'],
    ['an unclosed IPv6 literal', '[::1:3000'],
    ['an IPv6 literal with junk', '[::1]evil'],
    ['a name in brackets', '[localhost]'],
    ['a port that is not a number', 'localhost:abc'],
    ['a port out of range', 'localhost:99999'],
    ['two ports', 'localhost:1:2'],
    ['an empty label', 'app..example.com'],
    ['a dot only', '.'],
    ['spaces inside', 'local host'],
    ['a numeric name that is not an IPv4 address', '2130706433'],
    ['a localhost look-alike', 'localhost.evil.example'],
  ])('refuses %s (%j)', (_what, host) => {
    expect(allowed(host)).toBe(false);
  });

  it('`true` allows any host, like Vite; an empty list still allows localhost and IP addresses', () => {
    expect(createHostAllowList(true)('evil.example')).toBe(true);
    const none = createHostAllowList([]);
    expect([none('localhost:3000'), none('192.168.1.2'), none('evil.example')]).toEqual([true, true, false]);
  });

  it('parses a Host header to its lower-case name or address', () => {
    expect(parseHost('App.Example.com.:8080')).toEqual({ kind: 'name', hostname: 'app.example.com' });
    expect(parseHost('[::1]:3000')).toEqual({ kind: 'ip', hostname: '[::1]' });
    expect(parseHost('127.0.0.1')).toEqual({ kind: 'ip', hostname: '127.0.0.1' });
    expect(parseHost('a, b')).toBeNull();
  });

  it('checks config entries and says how to write them', () => {
    expect(parseAllowedHosts(['App.Example.com.', '.example.org', '10.0.0.1'], 'allowedHosts')).toEqual([
      'app.example.com',
      '.example.org',
      '10.0.0.1',
    ]);
    expect(parseAllowedHosts(true, 'allowedHosts')).toBe(true);
    expect(() => parseAllowedHosts('app.example.com', 'allowedHosts')).toThrowError(
      /allowedHosts must be true or a list of host names/,
    );
    expect(() => parseAllowedHosts(['*'], 'allowedHosts')).toThrowError(
      /allowedHosts\[0\] is "\*": write true to allow any host, or "\.example\.com"/,
    );
    expect(() => parseAllowedHosts(['https://app.example.com'], 'allowedHosts')).toThrowError(
      /without scheme, port or path/,
    );
    expect(() => parseAllowedHosts(['app.example.com:8080'], 'allowedHosts')).toThrowError(
      /without scheme, port or path/,
    );
    expect(() => parseAllowedHosts([42], 'allowedHosts')).toThrowError(/allowedHosts\[0\] must be a host name/);
  });
});
