import type { Context, MiddlewareHandler, Next } from 'hono';
import { RequestError } from '../../runtime/request-error.js';
import type { HostEnv } from '../host/host.js';
import { createHostAllowList, parseHost, type AllowedHosts } from './allowed-hosts.js';

export interface HostCheckOptions {
  /** `allowedHosts` of the config and `--allowed-hosts` (default: none besides the automatic ones). */
  allowedHosts?: AllowedHosts;
  /** The address `favn serve` listens on (`--host`): a name given there is allowed. */
  listenHost?: string;
  /** `publicHost` of the config: the name the public reaches this host by. */
  publicHost?: string;
}

/**
 * Refuses a request whose `Host` is not one of this server's names with 403 and the contract's
 * `{error, requestId}` body, before static files, RPC or admin see it. This stops DNS rebinding:
 * a page on `evil.example` whose name the attacker re-points at this server sends
 * `Host: evil.example`, and its `Origin` then "matches" the host in the cross-site check.
 *
 * A request must carry exactly one `Host` (duplicates arrive joined by a comma and are refused);
 * an absolute-form request target (`GET http://other/ HTTP/1.1`) must name an allowed host too.
 *
 * @example
 * app.use('*', createHostCheck({ allowedHosts: ['app.example.com'], listenHost: '0.0.0.0' }))
 */
export function createHostCheck(options: HostCheckOptions): MiddlewareHandler<HostEnv> {
  const automatic = [options.listenHost, options.publicHost].flatMap((host) => {
    const parsed = parseHost(host);
    return parsed?.kind === 'name' ? [parsed.hostname] : [];
  });
  const isAllowed = createHostAllowList(options.allowedHosts ?? [], automatic);
  return async function hostCheck(c: Context<HostEnv>, next: Next) {
    const header = c.req.header('host');
    const target = authorityOf(c.req.url);
    if (!isAllowed(header) || (target !== header && !isAllowed(target))) {
      throw new RequestError(403, refusal(isAllowed(header) ? target : header));
    }
    await next();
  };
}

/** `host[:port]` of an absolute URL, by string operations: this runs on every request. */
function authorityOf(url: string): string {
  const start = url.indexOf('://') + 3;
  const end = url.indexOf('/', start);
  return url.slice(start, end < 0 ? undefined : end);
}

function refusal(host: string | undefined): string {
  if (!host) return 'Forbidden: the request has no Host header';
  const shown = JSON.stringify(host.length > 100 ? `${host.slice(0, 100)}...` : host);
  const fix = 'if it is a name of this server, add it to "allowedHosts" in favn.config.json or to --allowed-hosts';
  return `Forbidden: host ${shown} is not allowed; ${fix}`;
}
