import { isIPv4, isIPv6 } from 'node:net';

/**
 * Why an address is not a public internet address. `ctx.fetch` refuses these unless the host is
 * listed exactly in `isolate.fetch.allowHosts`.
 */
export type SpecialKind =
  | 'unspecified'
  | 'loopback'
  | 'private'
  | 'shared (CGNAT)'
  | 'link-local'
  | 'unique-local'
  | 'site-local'
  | 'multicast'
  | 'broadcast'
  | 'documentation'
  | 'benchmarking'
  | 'reserved';

type Range = readonly [prefix: string, bits: number, kind: SpecialKind];

// IANA's special-purpose registries, first match wins. Whatever is not globally reachable is
// refused: an internal network can sit behind "reserved" or "benchmarking" ranges too.
const V4_RANGES: readonly Range[] = [
  ['0.0.0.0', 8, 'unspecified'],
  ['10.0.0.0', 8, 'private'],
  ['100.64.0.0', 10, 'shared (CGNAT)'],
  ['127.0.0.0', 8, 'loopback'],
  ['169.254.0.0', 16, 'link-local'],
  ['172.16.0.0', 12, 'private'],
  ['192.0.0.0', 24, 'reserved'],
  ['192.0.2.0', 24, 'documentation'],
  ['192.88.99.0', 24, 'reserved'],
  ['192.168.0.0', 16, 'private'],
  ['198.18.0.0', 15, 'benchmarking'],
  ['198.51.100.0', 24, 'documentation'],
  ['203.0.113.0', 24, 'documentation'],
  ['224.0.0.0', 4, 'multicast'],
  ['255.255.255.255', 32, 'broadcast'],
  ['240.0.0.0', 4, 'reserved'],
];

const V6_RANGES: readonly Range[] = [
  ['::', 128, 'unspecified'],
  ['::1', 128, 'loopback'],
  ['64:ff9b:1::', 48, 'reserved'], // local-use NAT64: where it leads is the network's own choice
  ['100::', 64, 'reserved'], // discard-only
  ['2001:db8::', 32, 'documentation'],
  ['2001::', 23, 'reserved'], // protocol assignments, Teredo among them
  ['3fff::', 20, 'documentation'],
  ['5f00::', 16, 'reserved'], // SRv6 segment identifiers
  ['fc00::', 7, 'unique-local'],
  ['fe80::', 10, 'link-local'],
  ['fec0::', 10, 'site-local'],
  ['ff00::', 8, 'multicast'],
];

/** IPv6 prefixes that carry an IPv4 address, and the byte where it starts. */
const V4_EMBEDDINGS: readonly [prefix: string, bits: number, at: number][] = [
  ['::ffff:0:0', 96, 12], // IPv4-mapped
  ['64:ff9b::', 96, 12], // NAT64, well-known prefix
  ['2002::', 16, 2], // 6to4
];

/**
 * Classifies an IP address (IPv4 dotted quad, or IPv6 with or without brackets and zone id).
 * Returns `null` for a public address and the kind of range otherwise. An IPv6 address that
 * embeds an IPv4 one (mapped, NAT64, 6to4) is judged by the IPv4 address it leads to; anything
 * outside global unicast `2000::/3` is reserved.
 *
 * @example
 * classifyAddress('8.8.8.8') // null
 * classifyAddress('::ffff:7f00:1') // 'loopback'
 */
export function classifyAddress(address: string): SpecialKind | null {
  const bytes = addressBytes(address);
  if (!bytes) throw new Error(`"${address}" is not an IP address (this is a bug)`);
  if (bytes.length === 4) return firstMatch(bytes, V4_RANGES);
  for (const [prefix, bits, at] of V4_EMBEDDINGS) {
    if (inPrefix(bytes, addressBytes(prefix)!, bits)) return firstMatch(bytes.subarray(at, at + 4), V4_RANGES);
  }
  const kind = firstMatch(bytes, V6_RANGES);
  if (kind) return kind;
  // Global unicast is 2000::/3; everything else (IPv4-compatible ::a.b.c.d among it) is not.
  return (bytes[0]! & 0xe0) === 0x20 ? null : 'reserved';
}

/**
 * True for names that mean this machine whatever DNS says: `localhost`, `*.localhost`
 * (RFC 6761), with or without the trailing dot and in any case.
 *
 * @example
 * isLoopbackName('API.LocalHost.') // true
 */
export function isLoopbackName(hostname: string): boolean {
  const name = hostname.toLowerCase().replace(/\.$/, '');
  return name === 'localhost' || name.endsWith('.localhost');
}

/**
 * The address of an IP-literal host as `URL#hostname` spells it (`127.0.0.1`, `[::1]`), without
 * brackets; `null` for a domain name.
 *
 * @example
 * literalAddress('[::1]') // '::1'
 */
export function literalAddress(hostname: string): string | null {
  const bare = hostname.startsWith('[') && hostname.endsWith(']') ? hostname.slice(1, -1) : hostname;
  return isIPv4(bare) || isIPv6(bare) ? bare : null;
}

function firstMatch(bytes: Uint8Array, ranges: readonly Range[]): SpecialKind | null {
  for (const [prefix, bits, kind] of ranges) {
    if (inPrefix(bytes, addressBytes(prefix)!, bits)) return kind;
  }
  return null;
}

function inPrefix(bytes: Uint8Array, prefix: Uint8Array, bits: number): boolean {
  if (bytes.length !== prefix.length) return false;
  for (let i = 0; i < bits; i += 8) {
    const mask = bits - i >= 8 ? 0xff : (0xff << (8 - (bits - i))) & 0xff;
    if ((bytes[i / 8]! & mask) !== (prefix[i / 8]! & mask)) return false;
  }
  return true;
}

/** 4 bytes for IPv4, 16 for IPv6 (dotted tail and `::` expanded), `null` for anything else. */
function addressBytes(text: string): Uint8Array | null {
  const address = text.replace(/^\[(.*)\]$/, '$1').replace(/%.*$/, '');
  if (isIPv4(address)) return Uint8Array.from(address.split('.').map(Number));
  if (!isIPv6(address)) return null;
  const groups: number[] = [];
  const [head = '', tail] = address.split('::') as [string, string | undefined];
  const parse = (part: string) =>
    part === ''
      ? []
      : part.split(':').flatMap((group) => {
          if (!group.includes('.')) return [parseInt(group, 16)];
          const [a, b, c, d] = group.split('.').map(Number) as [number, number, number, number];
          return [(a << 8) | b, (c << 8) | d];
        });
  const left = parse(head);
  const right = tail === undefined ? [] : parse(tail);
  groups.push(...left, ...Array<number>(8 - left.length - right.length).fill(0), ...right);
  return Uint8Array.from(groups.flatMap((g) => [g >> 8, g & 0xff]));
}
