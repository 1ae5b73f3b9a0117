import type { LookupAddress } from 'node:dns';
import { request as httpRequest, type IncomingMessage, type OutgoingHttpHeaders } from 'node:http';
import { request as httpsRequest } from 'node:https';
import type { LookupFunction } from 'node:net';
import { trackFetchSocket } from './fetch-sockets.js';

/** What goes on the wire: the action's method, headers and body, nothing of the caller's. */
export interface PinnedInit {
  method: string;
  headers: OutgoingHttpHeaders;
  body: string | undefined;
}

/**
 * Sends one HTTP(S) request to `url`, connecting only to `addresses` (already checked), and
 * resolves with the response head; the body is left to the caller. The host name still goes in
 * `Host`, TLS SNI and certificate checks; only the DNS answer is fixed, so a name that resolves
 * to a public address when checked cannot resolve to a private one when connected (DNS
 * rebinding). No agent: a pooled socket opened for another request could lead elsewhere.
 *
 * @example
 * const response = await pinnedRequest(url, [{ address: '93.184.215.14', family: 4 }], init, signal)
 */
export function pinnedRequest(
  url: URL,
  addresses: LookupAddress[],
  init: PinnedInit,
  signal: AbortSignal,
): Promise<IncomingMessage> {
  const [first] = addresses;
  if (!first) return Promise.reject(new Error('no address to connect to (this is a bug)'));
  const lookup: LookupFunction = (_hostname, options, callback) => {
    // Node asks for every address when it races IPv4 and IPv6 (autoSelectFamily), else for one.
    if (options.all) (callback as (error: null, all: LookupAddress[]) => void)(null, addresses);
    else callback(null, first.address, first.family);
  };
  const send = url.protocol === 'https:' ? httpsRequest : httpRequest;
  return new Promise((resolve, reject) => {
    const request = send({
      protocol: url.protocol,
      hostname: url.hostname.replace(/^\[(.*)\]$/, '$1'),
      port: url.port || undefined,
      path: `${url.pathname}${url.search}`,
      method: init.method,
      headers: init.headers,
      lookup,
      agent: false,
      signal,
    });
    request.once('socket', trackFetchSocket);
    request.once('response', resolve);
    request.once('error', reject);
    request.end(init.body);
  });
}
