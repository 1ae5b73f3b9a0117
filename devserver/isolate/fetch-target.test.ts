import { describe, expect, it } from 'vitest';
import { classifyAddress, isLoopbackName, literalAddress } from './fetch-target.js';

/** What `ctx.fetch` would classify for the host of `url`, read by the WHATWG URL parser. */
const kindOf = (url: string) => {
  const address = literalAddress(new URL(url).hostname);
  if (address === null) throw new Error(`${url} has no IP-literal host`);
  return classifyAddress(address);
};

describe('classifyAddress', () => {
  it.each([
    // IPv4, every special-purpose range, at both ends where it matters.
    ['0.0.0.0', 'unspecified'],
    ['0.255.255.255', 'unspecified'],
    ['10.0.0.1', 'private'],
    ['10.255.255.255', 'private'],
    ['100.64.0.1', 'shared (CGNAT)'],
    ['100.127.255.255', 'shared (CGNAT)'],
    ['127.0.0.1', 'loopback'],
    ['127.255.255.254', 'loopback'],
    ['169.254.169.254', 'link-local'],
    ['172.16.0.1', 'private'],
    ['172.31.255.255', 'private'],
    ['192.0.0.8', 'reserved'],
    ['192.0.2.1', 'documentation'],
    ['192.88.99.1', 'reserved'],
    ['192.168.1.1', 'private'],
    ['198.18.0.1', 'benchmarking'],
    ['198.19.255.255', 'benchmarking'],
    ['198.51.100.7', 'documentation'],
    ['203.0.113.9', 'documentation'],
    ['224.0.0.1', 'multicast'],
    ['239.255.255.250', 'multicast'],
    ['240.0.0.1', 'reserved'],
    ['255.255.255.255', 'broadcast'],
    // IPv6.
    ['::', 'unspecified'],
    ['::1', 'loopback'],
    ['[::1]', 'loopback'],
    ['0:0:0:0:0:0:0:1', 'loopback'],
    ['fe80::1', 'link-local'],
    ['fe80::1%eth0', 'link-local'],
    ['febf:ffff::1', 'link-local'],
    ['fc00::1', 'unique-local'],
    ['fd12:3456:789a::1', 'unique-local'],
    ['fec0::1', 'site-local'],
    ['ff02::1', 'multicast'],
    ['ff05::1:3', 'multicast'],
    ['100::1', 'reserved'],
    ['2001:db8::1', 'documentation'],
    ['3fff::1', 'documentation'],
    ['2001::1', 'reserved'], // Teredo
    ['2001:10::1', 'reserved'],
    ['5f00::1', 'reserved'],
    ['::127.0.0.1', 'reserved'], // IPv4-compatible (deprecated)
    ['::ffff:0:7f00:1', 'reserved'], // IPv4-translated
    ['1::1', 'reserved'],
    ['4000::1', 'reserved'],
    ['64:ff9b:1::a00:1', 'reserved'], // local-use NAT64
    // IPv6 forms that lead to an IPv4 address are judged by it.
    ['::ffff:127.0.0.1', 'loopback'],
    ['::ffff:7f00:1', 'loopback'],
    ['::ffff:10.1.2.3', 'private'],
    ['::ffff:a9fe:a9fe', 'link-local'],
    ['::ffff:0.0.0.0', 'unspecified'],
    ['::ffff:100.64.0.1', 'shared (CGNAT)'],
    ['64:ff9b::127.0.0.1', 'loopback'],
    ['64:ff9b::a9fe:a9fe', 'link-local'],
    ['64:ff9b::c0a8:101', 'private'],
    ['2002:7f00:1::', 'loopback'], // 6to4 of 127.0.0.1
    ['2002:c0a8:101::1', 'private'],
  ])('%s is %s', (address, kind) => {
    expect(classifyAddress(address)).toBe(kind);
  });

  it.each([
    '8.8.8.8',
    '1.1.1.1',
    '93.184.215.14',
    '100.63.255.255',
    '100.128.0.0',
    '172.15.255.255',
    '172.32.0.0',
    '169.253.255.255',
    '192.167.255.255',
    '198.17.255.255',
    '198.20.0.0',
    '223.255.255.255',
    '9.255.255.255',
    '11.0.0.0',
    '2606:4700:4700::1111',
    '2a00:1450:4001::200e',
    '::ffff:8.8.8.8',
    '64:ff9b::808:808',
    '2002:808:808::1',
    '2001:200::1',
    '2c0f:f248::1',
  ])('%s is public', (address) => {
    expect(classifyAddress(address)).toBeNull();
  });

  it('classifies what the URL parser makes of decimal, hex, octal, short and odd IPv4 and IPv6 spellings', () => {
    const loopback = [
      'http://127.0.0.1/',
      'http://2130706433/',
      'http://0x7f000001/',
      'http://0x7F.0.0.1/',
      'http://0177.0.0.1/',
      'http://017700000001/',
      'http://127.1/',
      'http://127.0.1/',
      'http://0x7f.1/',
      'http://127.000.000.001/',
      'http://%31%32%37.0.0.1/',
      'http://１２７.０.０.１/',
      'http://127.0.0.1./',
      'http://user:pw@127.0.0.1:8080/x',
      'http://[::1]/',
      'http://[0:0:0:0:0:0:0:1]/',
      'http://[::ffff:127.0.0.1]/',
      'http://[::ffff:7f00:1]/',
      'http://[0:0:0:0:0:ffff:7f00:1]/',
      'http://[64:ff9b::7f00:1]/',
      'http://[64:ff9b::127.0.0.1]/',
    ];
    for (const url of loopback) expect(kindOf(url), url).toBe('loopback');
    expect(kindOf('http://0/')).toBe('unspecified');
    expect(kindOf('http://0.0.0.0:3000/')).toBe('unspecified');
    expect(kindOf('http://[::]/')).toBe('unspecified');
    expect(kindOf('http://2852039166/')).toBe('link-local'); // 169.254.169.254
    expect(kindOf('http://0xa9.0xfe.0xa9.0xfe/')).toBe('link-local');
    expect(kindOf('http://10.1/')).toBe('private');
    expect(kindOf('http://0xc0a80101/')).toBe('private');
    expect(kindOf('http://4294967295/')).toBe('broadcast');
  });

  it('leaves URL tricks to the URL parser: the host is what follows the userinfo and precedes the fragment', () => {
    expect(new URL('http://127.0.0.1@evil.example/').hostname).toBe('evil.example');
    expect(new URL('http://evil.example#@127.0.0.1/').hostname).toBe('evil.example');
    expect(new URL('http://evil.example\\@127.0.0.1/').hostname).toBe('evil.example');
    expect(literalAddress('evil.example')).toBeNull();
    // Zone ids, and numbers that are no IPv4 address, are not URLs at all.
    expect(() => new URL('http://[fe80::1%25eth0]/')).toThrow(TypeError);
    expect(() => new URL('http://1.2.3.4.5/')).toThrow(TypeError);
    expect(() => new URL('http://a.0x7g/')).not.toThrow(); // a name, checked after DNS
  });
});

describe('isLoopbackName', () => {
  it.each(['localhost', 'LOCALHOST', 'localhost.', 'a.localhost', 'api.LocalHost.'])(
    '%s means this machine',
    (name) => {
      expect(isLoopbackName(name)).toBe(true);
      expect(isLoopbackName(new URL(`http://${name}/`).hostname)).toBe(true);
    },
  );
  it('reads unicode look-alikes as the URL parser maps them', () => {
    expect(isLoopbackName(new URL('http://ⓛocalhost/').hostname)).toBe(true);
    expect(isLoopbackName(new URL('http://LOCALHOST%2E/').hostname)).toBe(true);
  });
  it.each(['localhost.example.com', 'mylocalhost', 'localhostx', 'xn--localhost-'])('%s is just a name', (name) => {
    expect(isLoopbackName(name)).toBe(false);
  });
});
