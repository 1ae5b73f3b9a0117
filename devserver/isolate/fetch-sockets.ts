import type { Socket } from 'node:net';

// Local ends ("address port") of the connections ctx.fetch has open right now. A server in this
// process that is handed a connection from one of them is being called by an action.
const open = new Set<string>();

/**
 * Remembers the local end of a socket `ctx.fetch` opened, for as long as it is connected.
 * Internal: called by `pinnedRequest`.
 */
export function trackFetchSocket(socket: Socket): void {
  const remember = () => {
    const key = endpoint(socket.localAddress, socket.localPort);
    if (!key) return;
    open.add(key);
    socket.once('close', () => open.delete(key));
  };
  if (socket.localPort !== undefined) remember();
  else socket.once('connect', remember);
}

/**
 * True when a connection that reached a server of this process comes from `ctx.fetch` of an
 * action (compare the incoming socket's `remoteAddress`/`remotePort`). A host can refuse such
 * calls, so that even an action allowed to fetch loopback cannot call the host's own routes.
 *
 * @example
 * if (isCtxFetchConnection(req.socket.remoteAddress, req.socket.remotePort)) res.writeHead(403).end()
 */
export function isCtxFetchConnection(remoteAddress: string | undefined, remotePort: number | undefined): boolean {
  if (open.size === 0) return false;
  const key = endpoint(remoteAddress, remotePort);
  return key !== null && open.has(key);
}

function endpoint(address: string | undefined, port: number | undefined): string | null {
  if (!address || !port) return null;
  // A dual-stack server sees an IPv4 client as ::ffff:a.b.c.d.
  return `${address.replace(/^::ffff:(?=\d+\.\d+\.\d+\.\d+$)/i, '')} ${port}`;
}
