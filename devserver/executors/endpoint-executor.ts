import http from 'node:http';
import https from 'node:https';
import type { ServerContext } from '../../runtime/context.js';
import { contractText, REQUEST_ID_HEADER } from '../../runtime/protocol.js';
import { RequestError } from '../../runtime/request-error.js';
import { RawJson, type CallRequest, type Executor, type Invocation } from './executor.js';
import { isAnswerStatus } from '../common/http-status.js';

/** Headers that carry the caller's credentials, forwarded unless `forwardAuthHeaders: false`. */
const AUTH_HEADERS = ['authorization', 'x-auth-request-access-token', 'cookie'] as const;
/** Largest upstream response body read, in bytes. */
const MAX_UPSTREAM_BODY = 10 * 1024 * 1024;

export interface EndpointOptions {
  /** Base URL; calls go to `{endpoint}/{fnName}`. */
  endpoint: string;
  /** Forward `authorization`, `x-auth-request-access-token` and `cookie` (default true). */
  forwardAuthHeaders?: boolean;
  /** The feature's `timeoutMs`: an upstream silent for that long is dropped (default 10000). */
  timeoutMs?: number;
}

/**
 * Endpoint proxy mode: every function of the feature lives on its own backend, so this executor
 * runs any export it is given (the function table gives it the names the manifest declares) and
 * forwards each call as
 * `POST {endpoint}/{fnName}` with `{"args": [...], "context": {...}}` and the `x-*` headers of the
 * forwarding contract. Upstream JSON (2xx, 4xx or 5xx) is passed through with its status; an
 * unreachable or non-JSON upstream is 502; one silent past `timeoutMs` is dropped (503).
 *
 * @example
 * new EndpointExecutor({ endpoint: 'http://127.0.0.1:4000/rpc' }).invocation('getData')?.(ctx, [42])
 */
export class EndpointExecutor implements Executor {
  // The upstream decides what each function is; the host rate-limits them all as plain calls.
  readonly kinds = ['plain'] as const;
  #base: URL;
  #forwardAuth: boolean;
  #agent: http.Agent;
  #request: typeof http.request;
  #target: { protocol: string; hostname: string; port: string; basePath: string; search: string };
  /** The endpoint as messages name it, without a trailing slash. */
  #where: string;
  #timeoutMs: number;

  constructor(options: EndpointOptions) {
    this.#base = new URL(options.endpoint.replace(/\/+$/, ''));
    this.#forwardAuth = options.forwardAuthHeaders ?? true;
    const secure = this.#base.protocol === 'https:';
    // One keep-alive pool per upstream: a TCP handshake per call would dominate the hop.
    this.#agent = secure
      ? new https.Agent({ keepAlive: true, maxSockets: 64 })
      : new http.Agent({ keepAlive: true, maxSockets: 64 });
    this.#request = secure ? https.request : http.request;
    // Parsed once: a URL string per call would be parsed again by http.request.
    const basePath = this.#base.pathname.replace(/\/+$/, '');
    this.#target = {
      protocol: this.#base.protocol,
      hostname: this.#base.hostname.replace(/^\[|\]$/g, ''),
      port: this.#base.port,
      basePath,
      // Kept on every call (e.g. a key in the query string).
      search: this.#base.search,
    };
    this.#where = `${this.#base.origin}${basePath}`;
    this.#timeoutMs = options.timeoutMs ?? 10_000;
  }

  invocation(fnName: string): Invocation {
    return (ctx, args, incoming) => this.#forward(fnName, ctx, args, incoming);
  }

  close(): void {
    this.#agent.destroy();
  }

  #forward(fnName: string, ctx: ServerContext, args: unknown[], incoming: CallRequest | undefined): Promise<RawJson> {
    const context = {
      requestId: ctx.requestId,
      featureId: ctx.featureId,
      userRoles: ctx.userRoles,
      claims: ctx.claims,
      visibility: ctx.visibility,
      auth: ctx.auth,
    };
    const contextJson = JSON.stringify(context);
    const body = `{"args":${JSON.stringify(args)},"context":${contextJson}}`;
    const headers: Record<string, string> = {
      'content-type': 'application/json',
      'content-length': String(Buffer.byteLength(body)),
      [REQUEST_ID_HEADER]: ctx.requestId,
      'x-cdn-loader-feature-id': ctx.featureId,
      'x-cdn-loader-function': fnName,
      'x-cdn-loader-context': Buffer.from(contextJson).toString('base64url'),
    };
    if (this.#forwardAuth && incoming) {
      for (const name of AUTH_HEADERS) {
        const value = incoming.header(name);
        if (value !== undefined) headers[name] = value;
      }
    }
    const { protocol, hostname, port, basePath, search } = this.#target;
    const path = `${basePath}/${encodeURIComponent(fnName)}${search}`;
    return new Promise<RawJson>((resolve, reject) => {
      let settled = false;
      let timedOut = false;
      const fail = (error: Error) => {
        if (settled) return;
        settled = true;
        req.destroy();
        reject(error);
      };
      const timeoutError = () =>
        new RequestError(503, `${contractText('upstreamTimedOut')} after ${this.#timeoutMs} ms`);
      const options = { protocol, hostname, port, path, method: 'POST', headers, agent: this.#agent };
      const req = this.#request(options, (res) => {
        const chunks: Buffer[] = [];
        let size = 0;
        res.on('data', (chunk: Buffer) => {
          size += chunk.length;
          if (size > MAX_UPSTREAM_BODY)
            fail(upstreamError(`the response of ${fnName} is over ${MAX_UPSTREAM_BODY} bytes`));
          else chunks.push(chunk);
        });
        res.on('error', (error) => fail(timedOut ? timeoutError() : upstreamError(error.message)));
        res.on('end', () => {
          const text = chunks.length === 1 ? chunks[0]!.toString('utf8') : Buffer.concat(chunks).toString('utf8');
          const status = res.statusCode ?? 502;
          try {
            JSON.parse(text);
          } catch {
            fail(upstreamError(`${fnName} answered ${status} with a body that is not JSON`));
            return;
          }
          // Only registered statuses pass: a client must never see a status it cannot know.
          if (!isAnswerStatus(status)) {
            fail(upstreamError(`${fnName} answered with status ${status}`));
            return;
          }
          settled = true;
          resolve(new RawJson(text, status >= 400 ? status : 200));
        });
      });
      // An upstream switching protocols (101) gives no answer at all.
      req.on('upgrade', (_res, socket) => {
        socket.destroy();
        fail(upstreamError(`${fnName} answered with status 101`));
      });
      // The host's deadline answers the client; this frees the upstream socket as well.
      req.setTimeout(this.#timeoutMs, () => {
        timedOut = true;
        fail(timeoutError());
      });
      req.on('error', (error) => {
        if (timedOut) fail(timeoutError());
        else
          fail(
            upstreamError(
              `${this.#where}/${encodeURIComponent(fnName)} is unreachable (${(error as NodeJS.ErrnoException).code ?? error.message})`,
            ),
          );
      });
      // Closed with no answer read to its end (a reset, a 1xx it cannot go on from): never left pending.
      // (The error is made only then: a call answered in full builds none.)
      req.on('close', () => {
        if (!settled) fail(upstreamError(`${fnName}: the connection closed before the answer was complete`));
      });
      // Not tied to ctx.signal: reading it makes an AbortController per call, a measurable cost on
      // this path (docs/benchmarks.md, proxy). The socket timeout frees the upstream instead.
      req.end(body);
    });
  }
}

function upstreamError(detail: string): RequestError {
  return RequestError.of('upstream', detail);
}
