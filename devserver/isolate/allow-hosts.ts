import { literalAddress } from './fetch-target.js';

/** One entry of `isolate.fetch.allowHosts`, taken apart. */
interface AllowEntry {
  /** Canonical host as `URL#hostname` spells it, without a trailing dot; the suffix of a wildcard. */
  host: string;
  wildcard: boolean;
  port: string | null;
}

const ENTRY = /^(\*\.)?([a-z0-9.-]+|\[[0-9a-f:.]+\])(?::(\d{1,5}))?$/i;

/**
 * Reads one `allowHosts` entry into its canonical spelling, or `null` when it is not one:
 * `API.Example.com.` becomes `api.example.com`, `127.1` becomes `127.0.0.1`, `[0::1]:80` becomes
 * `[::1]:80`, so an entry and a URL are compared the way the URL parser sees hosts.
 *
 * @example
 * canonicalAllowHost('*.Example.org') // '*.example.org'
 */
export function canonicalAllowHost(entry: string): string | null {
  const parsed = parseEntry(entry);
  if (!parsed) return null;
  return `${parsed.wildcard ? '*.' : ''}${parsed.host}${parsed.port === null ? '' : `:${parsed.port}`}`;
}

/**
 * True when the URL's host (and port, where the entry names one) is allowed by the list;
 * `null` allows any host. `*.example.com` matches names under example.com, never an IP address.
 *
 * @example
 * hostAllowed(['*.example.com'], new URL('https://api.example.com/')) // true
 */
export function hostAllowed(allowHosts: readonly string[] | null, url: URL): boolean {
  if (allowHosts === null) return true;
  const host = urlHost(url);
  const isLiteral = literalAddress(host) !== null;
  return allowHosts.some((text) => {
    const entry = parseEntry(text);
    if (!entry || !portMatches(entry, url)) return false;
    return entry.wildcard ? !isLiteral && host.endsWith(`.${entry.host}`) : host === entry.host;
  });
}

/**
 * True when an entry names the URL's host exactly (not through a `*.` wildcard). Only such an
 * entry lets `ctx.fetch` reach loopback, private and other non-public addresses: a wildcard says
 * "their public API", not "whatever their DNS points at".
 *
 * @example
 * hostListedExactly(['127.0.0.1:8080'], new URL('http://127.0.0.1:8080/')) // true
 */
export function hostListedExactly(allowHosts: readonly string[] | null, url: URL): boolean {
  if (allowHosts === null) return false;
  const host = urlHost(url);
  return allowHosts.some((text) => {
    const entry = parseEntry(text);
    return entry !== null && !entry.wildcard && portMatches(entry, url) && host === entry.host;
  });
}

function parseEntry(entry: string): AllowEntry | null {
  const match = ENTRY.exec(entry);
  if (!match) return null;
  const [, star, rawHost = '', port] = match;
  if (port !== undefined && (Number(port) < 1 || Number(port) > 65535)) return null;
  let host: string;
  try {
    // The URL parser is the one that reads ctx.fetch's URLs: numeric IPv4 forms, IPv6, case.
    host = new URL(`http://${star ? 'x.' : ''}${rawHost}/`).hostname;
  } catch {
    return null;
  }
  if (star) {
    // `*.1` would have turned `x.1` into an IPv4 address (or failed above).
    if (!host.startsWith('x.')) return null;
    host = host.slice(2);
  }
  host = host.replace(/\.$/, '');
  if (host === '' || (star && literalAddress(host) !== null)) return null;
  return { host, wildcard: Boolean(star), port: port === undefined ? null : String(Number(port)) };
}

function portMatches(entry: AllowEntry, url: URL): boolean {
  return entry.port === null || entry.port === (url.port || (url.protocol === 'https:' ? '443' : '80'));
}

function urlHost(url: URL): string {
  return url.hostname.toLowerCase().replace(/\.$/, '');
}
