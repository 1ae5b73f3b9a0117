import { lookup } from 'node:dns/promises';
import type { LookupAddress } from 'node:dns';
import { isIPv4 } from 'node:net';
import { hostAllowed, hostListedExactly } from './allow-hosts.js';
import { classifyAddress, isLoopbackName, literalAddress } from './fetch-target.js';

// The fetch standard's "bad ports": protocols a forged HTTP request can talk to (SMTP, IRC, X11...).
// Node's own fetch refuses them too.
const BAD_PORTS = new Set([
  1, 7, 9, 11, 13, 15, 17, 19, 20, 21, 22, 23, 25, 37, 42, 43, 53, 69, 77, 79, 87, 95, 101, 102, 103, 104, 109, 110,
  111, 113, 115, 117, 119, 123, 135, 137, 139, 143, 161, 179, 389, 427, 465, 512, 513, 514, 515, 526, 530, 531, 532,
  540, 548, 554, 556, 563, 587, 601, 636, 989, 990, 993, 995, 1719, 1720, 1723, 2049, 3659, 4045, 4190, 5060, 5061,
  6000, 6566, 6665, 6666, 6667, 6668, 6669, 6679, 6697, 10080,
]);

/**
 * Checks one URL `ctx.fetch` is about to request (the first one, and each redirect) and returns
 * the addresses the connection may go to: http(s) only, no credentials in the URL, a host the
 * allow-list admits, and, after DNS resolution, only public addresses unless the host is listed
 * exactly. The caller connects to these addresses and no others (no second DNS lookup).
 *
 * @example
 * const addresses = await checkFetchTarget(new URL('https://api.example.com/x'), ['api.example.com'], signal)
 */
export async function checkFetchTarget(
  url: URL,
  allowHosts: readonly string[] | null,
  signal: AbortSignal,
  resolveName: (hostname: string) => Promise<LookupAddress[]> = (hostname) => lookup(hostname, { all: true }),
): Promise<LookupAddress[]> {
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new Error(`ctx.fetch: only http and https URLs can be fetched (got ${url.protocol})`);
  }
  if (url.username || url.password) {
    throw new Error(`ctx.fetch: ${url.origin} has credentials in the URL; send them in a header instead`);
  }
  if (!hostAllowed(allowHosts, url)) {
    const list = allowHosts?.join(', ');
    throw new Error(`ctx.fetch: ${url.host} is not in isolate.fetch.allowHosts of feature.json (${list})`);
  }
  const port = Number(url.port || (url.protocol === 'https:' ? 443 : 80));
  if (BAD_PORTS.has(port)) {
    throw new Error(`ctx.fetch: port ${port} is not fetched (it belongs to a protocol other than HTTP)`);
  }
  const listed = hostListedExactly(allowHosts, url);
  const literal = literalAddress(url.hostname);
  if (literal !== null) {
    const kind = classifyAddress(literal);
    if (kind && !listed) throw refusal(url, `${url.hostname} is ${article(kind)} ${kind} address`);
    return [{ address: literal, family: isIPv4(literal) ? 4 : 6 }];
  }
  if (isLoopbackName(url.hostname) && !listed) throw refusal(url, `${url.hostname} is this machine (loopback)`);
  const addresses = await resolve(url.hostname, signal, resolveName);
  for (const { address } of addresses) {
    const kind = classifyAddress(address);
    // Any one bad address refuses the name: the connection could otherwise land on it.
    if (kind && !listed) throw refusal(url, `${url.hostname} resolves to ${address}, ${article(kind)} ${kind} address`);
  }
  return addresses;
}

async function resolve(
  hostname: string,
  signal: AbortSignal,
  resolveName: (hostname: string) => Promise<LookupAddress[]>,
): Promise<LookupAddress[]> {
  signal.throwIfAborted();
  let onAbort = () => {};
  const aborted = new Promise<never>((_, reject) => {
    onAbort = () => reject(signal.reason);
    signal.addEventListener('abort', onAbort, { once: true });
  });
  try {
    const addresses = await Promise.race([resolveName(hostname), aborted]);
    if (addresses.length === 0) throw new Error(`${hostname} has no address`);
    return addresses;
  } finally {
    signal.removeEventListener('abort', onAbort);
  }
}

function article(kind: string): string {
  return kind === 'unspecified' ? 'an' : 'a';
}

function refusal(url: URL, why: string): Error {
  return new Error(
    `ctx.fetch(${url.origin}) refused: ${why}. Loopback, link-local, private and other non-public addresses are only ` +
      'fetched for a host listed exactly (not as *.wildcard) in isolate.fetch.allowHosts of feature.json',
  );
}
