import { describe, expect, it } from 'vitest';
import { canonicalAllowHost, hostAllowed, hostListedExactly } from './allow-hosts.js';

describe('canonicalAllowHost', () => {
  it.each([
    ['API.Example.com', 'api.example.com'],
    ['api.example.com.', 'api.example.com'],
    ['*.Example.org', '*.example.org'],
    ['127.1', '127.0.0.1'],
    ['0x7f000001:8080', '127.0.0.1:8080'],
    ['2130706433', '127.0.0.1'],
    ['[0:0::1]:0080', '[::1]:80'],
    ['[::FFFF:127.0.0.1]', '[::ffff:7f00:1]'],
    ['localhost.', 'localhost'],
  ])('%s is listed as %s', (entry, canonical) => {
    expect(canonicalAllowHost(entry)).toBe(canonical);
  });

  const junk = ['https://api.example.com', 'api.example.com/x', '*', '*.', '*.1', '*.0x7f', '*.[::1]', 'a b', '[::1'];
  it.each([...junk, 'x:99999', 'x:0', 'user@x', '1.2.3.4.5'])('%s is refused', (entry) => {
    expect(canonicalAllowHost(entry)).toBeNull();
  });
});

describe('hostAllowed and hostListedExactly', () => {
  const list = ['api.example.com', '*.cdn.example.org', '127.0.0.1:8080', '[::1]:9000', 'localhost'];
  const allowed = (url: string) => hostAllowed(list, new URL(url));
  const exact = (url: string) => hostListedExactly(list, new URL(url));

  it('matches hosts the way the URL parser spells them: case, trailing dot, numeric IPv4 forms', () => {
    expect(allowed('https://API.example.com./x')).toBe(true);
    expect(allowed('http://0x7f000001:8080/')).toBe(true);
    expect(allowed('http://127.1:8080/')).toBe(true);
    expect(allowed('http://127.0.0.1:8081/')).toBe(false);
    expect(allowed('http://127.0.0.1/')).toBe(false);
    expect(allowed('http://[0::1]:9000/')).toBe(true);
    expect(allowed('http://[::1]:9001/')).toBe(false);
    expect(allowed('http://LocalHost./')).toBe(true);
  });

  it('a wildcard matches names below it, never the bare domain, a look-alike or an IP address', () => {
    expect(allowed('https://a.cdn.example.org/')).toBe(true);
    expect(allowed('https://a.b.cdn.example.org./')).toBe(true);
    expect(allowed('https://cdn.example.org/')).toBe(false);
    expect(allowed('https://evilcdn.example.org/')).toBe(false);
    expect(allowed('https://cdn.example.org.evil.net/')).toBe(false);
    expect(hostAllowed(['*.0.1'], new URL('http://127.0.0.1/'))).toBe(false);
  });

  it('userinfo and fragments do not move the host', () => {
    expect(allowed('http://api.example.com@evil.example/')).toBe(false);
    expect(allowed('http://evil.example#@api.example.com')).toBe(false);
    expect(allowed('http://evil.example\\@api.example.com')).toBe(false);
  });

  it('only an exact entry counts as listing a host explicitly; null lists nothing', () => {
    expect(exact('http://127.0.0.1:8080/')).toBe(true);
    expect(exact('http://localhost:1234/')).toBe(true);
    expect(exact('https://api.example.com/')).toBe(true);
    expect(exact('https://a.cdn.example.org/')).toBe(false);
    expect(exact('http://127.0.0.1:8081/')).toBe(false);
    expect(hostAllowed(null, new URL('http://127.0.0.1/'))).toBe(true);
    expect(hostListedExactly(null, new URL('http://127.0.0.1/'))).toBe(false);
  });
});
