/**
 * HTTP/1.1 on the wire for the fuzzer: requests built byte by byte (so they can be as broken as
 * an attacker likes, which `fetch` never sends) and a small parser for the responses that come
 * back.
 */

/** @typedef {[string, string | Buffer]} Header a header line; a Buffer value is sent as its raw bytes */

/**
 * @typedef {object} RequestSpec
 * @property {string} [method] default POST
 * @property {string | Buffer} target the request target (path and query), sent as is
 * @property {string | null} host the Host header; null sends none
 * @property {Header[]} [headers]
 * @property {Buffer | string | null} [body]
 * @property {boolean} [close] send `Connection: close` (default true)
 * @property {boolean} [length] send `Content-Length` for the body (default true when there is one)
 */

/**
 * The bytes of one request.
 *
 * @param {RequestSpec} spec
 * @returns {Buffer}
 */
export function requestBytes({
  method = 'POST',
  target,
  host,
  headers = [],
  body = null,
  close = true,
  length = true,
}) {
  const lines = [Buffer.concat([Buffer.from(`${method} `), Buffer.from(target), Buffer.from(' HTTP/1.1\r\n')])];
  if (host !== null) lines.push(Buffer.from(`Host: ${host}\r\n`));
  for (const [name, value] of headers)
    lines.push(Buffer.concat([Buffer.from(`${name}: `), Buffer.from(value), Buffer.from('\r\n')]));
  const payload = body === null ? null : Buffer.from(body);
  if (payload && length) lines.push(Buffer.from(`Content-Length: ${payload.length}\r\n`));
  if (close) lines.push(Buffer.from('Connection: close\r\n'));
  lines.push(Buffer.from('\r\n'));
  if (payload) lines.push(payload);
  return Buffer.concat(lines);
}

/**
 * A body in chunked transfer encoding, cut into chunks of `size` bytes, with the final chunk.
 *
 * @param {Buffer} body
 * @param {number} size
 * @returns {Buffer}
 */
export function chunkedBody(body, size) {
  const parts = [];
  for (let i = 0; i < body.length; i += size) {
    const chunk = body.subarray(i, i + size);
    parts.push(Buffer.from(`${chunk.length.toString(16)}\r\n`), chunk, Buffer.from('\r\n'));
  }
  parts.push(Buffer.from('0\r\n\r\n'));
  return Buffer.concat(parts);
}

/**
 * @typedef {object} WireResponse
 * @property {number} status
 * @property {Record<string, string[]>} headers lower-case names, every value in order
 * @property {Buffer} body
 */

const HEADER_END = Buffer.from('\r\n\r\n');
const CRLF = Buffer.from('\r\n');

/**
 * The complete responses at the start of `data`. Interim (1xx) responses are skipped. A body
 * without length or chunking runs to the end of the connection, so it is complete only once
 * `ended`.
 *
 * @param {Buffer} data everything received so far
 * @param {{ ended: boolean, heads?: boolean[] }} options `heads[i]`: the i-th response answers a HEAD request
 * @returns {{ responses: WireResponse[], malformed: string | null }}
 */
export function parseResponses(data, { ended, heads = [] }) {
  const responses = [];
  let offset = 0;
  while (offset < data.length) {
    const headerEnd = data.indexOf(HEADER_END, offset);
    if (headerEnd < 0) break;
    const lines = data.subarray(offset, headerEnd).toString('latin1').split('\r\n');
    const statusLine = /^HTTP\/1\.[01] (\d{3})(?: .*)?$/.exec(lines[0] ?? '');
    if (!statusLine)
      return { responses, malformed: `bad status line ${JSON.stringify((lines[0] ?? '').slice(0, 80))}` };
    const status = Number(statusLine[1]);
    /** @type {Record<string, string[]>} */
    const headers = {};
    for (const line of lines.slice(1)) {
      const colon = line.indexOf(':');
      if (colon <= 0) return { responses, malformed: `bad header line ${JSON.stringify(line.slice(0, 80))}` };
      const name = line.slice(0, colon).trim().toLowerCase();
      (headers[name] ??= []).push(line.slice(colon + 1).trim());
    }
    const bodyStart = headerEnd + HEADER_END.length;
    if (status >= 100 && status < 200) {
      offset = bodyStart;
      continue;
    }
    const framed = frameBody(data, bodyStart, headers, {
      ended,
      noBody: heads[responses.length] === true || status === 204 || status === 304,
    });
    if (framed === 'incomplete') break;
    if (typeof framed === 'string') return { responses, malformed: framed };
    responses.push({ status, headers, body: framed.body });
    offset = framed.end;
  }
  return { responses, malformed: null };
}

/**
 * The body that starts at `start`: by Content-Length, by chunks, or to the end of the connection.
 *
 * @returns {{ body: Buffer, end: number } | 'incomplete' | string} a string other than 'incomplete' says what is malformed
 */
function frameBody(data, start, headers, { ended, noBody }) {
  if (noBody) return { body: Buffer.alloc(0), end: start };
  const encoding = (headers['transfer-encoding'] ?? []).join(',').toLowerCase();
  if (encoding.includes('chunked')) return dechunk(data, start);
  const lengths = headers['content-length'];
  if (lengths) {
    const length = Number(lengths[0]);
    if (!Number.isSafeInteger(length) || length < 0 || lengths.some((l) => l !== lengths[0]))
      return `bad Content-Length ${JSON.stringify(lengths)}`;
    if (data.length - start < length) return 'incomplete';
    return { body: data.subarray(start, start + length), end: start + length };
  }
  if (!ended) return 'incomplete';
  return { body: data.subarray(start), end: data.length };
}

function dechunk(data, start) {
  const parts = [];
  let at = start;
  for (;;) {
    const lineEnd = data.indexOf(CRLF, at);
    if (lineEnd < 0) return 'incomplete';
    const size = parseInt(data.subarray(at, lineEnd).toString('latin1').split(';')[0], 16);
    if (!Number.isSafeInteger(size) || size < 0) return 'bad chunk size';
    at = lineEnd + 2;
    if (size === 0) {
      // Trailers, then an empty line.
      const trailerEnd = data.indexOf(CRLF, at);
      if (trailerEnd < 0) return 'incomplete';
      if (trailerEnd === at) return { body: Buffer.concat(parts), end: at + 2 };
      const end = data.indexOf(HEADER_END, at);
      if (end < 0) return 'incomplete';
      return { body: Buffer.concat(parts), end: end + 4 };
    }
    if (data.length < at + size + 2) return 'incomplete';
    parts.push(data.subarray(at, at + size));
    at += size + 2;
  }
}
