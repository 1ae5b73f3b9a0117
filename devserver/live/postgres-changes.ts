import { randomBytes } from 'node:crypto';
import type pg from 'pg';
import { pgModule } from '../common/load-on-use.js';
import type { ChangeBridge, ChangeEvent } from './live-hub.js';

/** The channel every host of one database listens on. */
export const CHANGES_CHANNEL = 'favn_changes';

/** PostgreSQL refuses NOTIFY payloads of 8000 bytes or more; a longer event names no tables. */
const MAX_PAYLOAD_BYTES = 7900;

/** The longest wait between two tries to listen again after the connection to the server broke. */
const MAX_RETRY_MS = 10_000;

/**
 * Shares change events between the hosts of one PostgreSQL database (`LISTEN/NOTIFY`): each host
 * notifies the events of its own commits, and hears the others'. A host skips its own (it handled
 * them already). After the listening connection broke and came back, every live query of this
 * host runs again, since events sent meanwhile were lost.
 *
 * @example
 * hub.bridge(await listenForChanges(process.env.DATABASE_URL, (event) => hub.remote(event)))
 */
export async function listenForChanges(
  connectionString: string,
  onEvent: (event: ChangeEvent) => void,
  onProblem: (message: string) => void = () => {},
): Promise<ChangeBridge> {
  const origin = randomBytes(9).toString('base64url');
  let client: pg.Client | null = null;
  let closed = false;
  let failures = 0;
  let retry: NodeJS.Timeout | null = null;

  const connect = async (): Promise<void> => {
    const next = new (pgModule().Client)({ connectionString });
    next.on('notification', (message) => {
      if (message.channel !== CHANGES_CHANNEL || !message.payload) return;
      const event = parseEvent(message.payload, origin);
      if (event) onEvent(event);
    });
    next.on('error', () => lost(next));
    next.on('end', () => lost(next));
    await next.connect();
    await next.query(`LISTEN ${CHANGES_CHANNEL}`);
    client = next;
  };

  const lost = (which: pg.Client) => {
    if (client !== which || closed) return;
    client = null;
    void which.end().catch(() => {});
    schedule();
  };

  const schedule = () => {
    const delay = Math.min(MAX_RETRY_MS, 250 * 2 ** failures++);
    retry = setTimeout(() => {
      retry = null;
      connect().then(
        () => {
          failures = 0;
          // Events sent while nobody listened are lost: every query of this host runs again.
          onEvent({ featureId: null, tables: null });
        },
        (error: Error) => {
          onProblem(`live queries: cannot listen for other hosts' changes (${error.message}); trying again`);
          if (!closed) schedule();
        },
      );
    }, delay);
    retry.unref();
  };

  await connect();
  // One notify at a time on the listening connection, in commit order.
  let sending: Promise<unknown> = Promise.resolve();
  return {
    publish(event) {
      const payload = payloadOf(event, origin);
      sending = sending
        .then(() => client?.query('SELECT pg_notify($1, $2)', [CHANGES_CHANNEL, payload]))
        .catch(() => {});
    },
    async close() {
      closed = true;
      if (retry) clearTimeout(retry);
      await client?.end().catch(() => {});
      client = null;
    },
  };
}

/** The NOTIFY payload of an event: within PostgreSQL's limit, else without its tables (all). */
export function payloadOf(event: ChangeEvent, origin: string): string {
  const body: Record<string, unknown> = { o: origin, f: event.featureId, t: event.tables };
  if (event.tenantId !== undefined) body.n = event.tenantId;
  const text = JSON.stringify(body);
  if (Buffer.byteLength(text) < MAX_PAYLOAD_BYTES) return text;
  return JSON.stringify({ ...body, t: null, n: undefined });
}

/** An event of another host; `null` for this host's own and for anything malformed. */
export function parseEvent(payload: string, origin: string): ChangeEvent | null {
  let body: unknown;
  try {
    body = JSON.parse(payload);
  } catch {
    return null;
  }
  if (typeof body !== 'object' || body === null) return null;
  const { o, f, t, n } = body as Record<string, unknown>;
  if (o === origin) return null;
  if (f !== null && typeof f !== 'string') return null;
  const tables =
    t === null ? null : Array.isArray(t) && t.every((x) => typeof x === 'string') ? (t as string[]) : undefined;
  if (tables === undefined) return null;
  const event: ChangeEvent = { featureId: f, tables };
  if (n === null || typeof n === 'string') event.tenantId = n;
  return event;
}
