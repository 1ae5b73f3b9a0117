import net from 'node:net';
import { UsageError } from '../common/usage-error.js';

/**
 * Host names `favn serve` answers to, like Vite's `server.allowedHosts`: `true` allows any host;
 * a list allows its names, an entry with a leading `.` also allows its subdomains. `localhost`,
 * `*.localhost` and IP addresses are always allowed.
 */
export type AllowedHosts = true | readonly string[];

/** A parsed `Host` header: an IP address or a lower-case host name without port or trailing dot. */
export interface ParsedHost {
  kind: 'ip' | 'name';
  hostname: string;
}

const HOST_CHARS = /^[a-z0-9._:[\]-]+$/;
const NAME = /^[a-z0-9_-]+(?:\.[a-z0-9_-]+)*$/;
const PORT = /^\d{1,5}$/;

/**
 * Parses a `Host` header value (or a URL's authority). Anything a browser would not send is
 * null: several values (`a, b`), userinfo (`user@host`), a path, percent-encoding, a bare IPv6
 * address without brackets, an empty label, a port that is not a number.
 *
 * @example
 * parseHost('App.Example.com.:8080') // { kind: 'name', hostname: 'app.example.com' }
 * parseHost('[::1]:3000') // { kind: 'ip', hostname: '[::1]' }
 * parseHost('localhost, evil.example') // null
 */
export function parseHost(value: string | null | undefined): ParsedHost | null {
  const host = value?.trim().toLowerCase();
  if (!host || !HOST_CHARS.test(host)) return null;
  if (host.startsWith('[')) {
    const end = host.indexOf(']');
    const ip = host.slice(1, end);
    if (end < 0 || net.isIP(ip) !== 6 || !validPort(host.slice(end + 1))) return null;
    return { kind: 'ip', hostname: `[${ip}]` };
  }
  const colon = host.indexOf(':');
  if (colon >= 0 && !validPort(host.slice(colon))) return null;
  // One trailing dot names the same host (`localhost.`); browsers send it when the user types it.
  const name = (colon >= 0 ? host.slice(0, colon) : host).replace(/\.$/, '');
  if (!NAME.test(name)) return null;
  return { kind: net.isIP(name) === 4 ? 'ip' : 'name', hostname: name };
}

/**
 * Compiles the allow-list once; `automatic` entries (the address `favn serve` listens on, its
 * public host) match exactly. The check is per request, so allowed values are remembered.
 *
 * @example
 * const allowed = createHostAllowList(['.example.com'], ['myhost'])
 * allowed('api.example.com:3000') // true
 * allowed('evil.example') // false
 */
export function createHostAllowList(
  allowedHosts: AllowedHosts,
  automatic: readonly string[] = [],
): (host: string | null | undefined) => boolean {
  if (allowedHosts === true) return () => true;
  const exact = new Set<string>();
  const suffixes: string[] = [];
  for (const entry of [...allowedHosts, ...automatic]) {
    const normalized = entry.trim().toLowerCase().replace(/\.$/, '');
    if (normalized.startsWith('.')) suffixes.push(normalized);
    else exact.add(normalized);
  }
  const seen = new Set<string>();
  return function isAllowedHost(host) {
    if (!host) return false;
    if (seen.has(host)) return true;
    const parsed = parseHost(host);
    if (!parsed) return false;
    const name = parsed.hostname;
    const allowed =
      parsed.kind === 'ip' ||
      name === 'localhost' ||
      name.endsWith('.localhost') ||
      exact.has(name) ||
      suffixes.some((suffix) => name === suffix.slice(1) || name.endsWith(suffix));
    // Only allowed values are remembered, and only a few: refused ones are what an attacker varies.
    if (allowed && seen.size < 256) seen.add(host);
    return allowed;
  };
}

/**
 * Checks an `allowedHosts` value from the config file or the command line and returns it
 * normalized; a mistake is a `UsageError` that says how to write the entry.
 *
 * @example
 * parseAllowedHosts(['App.example.com', '.example.org'], 'favn.config.json: "allowedHosts"')
 * // ['app.example.com', '.example.org']
 */
export function parseAllowedHosts(value: unknown, where: string): AllowedHosts {
  if (value === true) return true;
  if (!Array.isArray(value)) {
    throw new UsageError(`${where} must be true or a list of host names like ["app.example.com", ".example.org"]`);
  }
  return value.map((entry: unknown, i) => normalizeEntry(entry, `${where}[${i}]`));
}

function normalizeEntry(entry: unknown, where: string): string {
  if (typeof entry !== 'string') throw new UsageError(`${where} must be a host name like "app.example.com"`);
  const host = entry.trim().toLowerCase().replace(/\.$/, '');
  if (host === '*' || host === '.') {
    const fix = 'write true to allow any host, or ".example.com" for a domain and its subdomains';
    throw new UsageError(`${where} is ${JSON.stringify(entry)}: ${fix}`);
  }
  const bare = host.startsWith('.') ? host.slice(1) : host;
  const ip = net.isIP(bare.replace(/^\[(.*)\]$/, '$1')) !== 0;
  if (!ip && !NAME.test(bare)) {
    const like = 'like "app.example.com" or ".example.com"';
    throw new UsageError(
      `${where} must be a host name without scheme, port or path, ${like} (got ${JSON.stringify(entry)})`,
    );
  }
  return host;
}

/** The rest of a host after its name: nothing, or `:` and a port number. */
function validPort(rest: string): boolean {
  if (rest === '') return true;
  return rest.startsWith(':') && PORT.test(rest.slice(1)) && Number(rest.slice(1)) <= 65535;
}
