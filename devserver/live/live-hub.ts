import { randomBytes } from 'node:crypto';
import { RequestError } from '../../runtime/request-error.js';
import type { Identity } from '../auth/identity.js';

/**
 * A committed write, as live queries see it: which feature, whose installation and which tables.
 * `featureId: null` is every feature, `tenantId: undefined` every tenant, `tables: null` every table
 * (writes from outside a call: `favn db shell`, psql, a reload of the feature's code).
 */
export interface ChangeEvent {
  featureId: string | null;
  tenantId?: string | null;
  tables: readonly string[] | null;
}

/** A feature's data layer, as far as live queries listen to it (`FeatureData.onCommit`). */
export interface Committing {
  onCommit(listener: (change: { tables: ReadonlySet<string>; tenantId?: string | null }) => unknown): () => void;
}

/** Carries change events between hosts (PostgreSQL `LISTEN/NOTIFY`); see `postgres-changes.ts`. */
export interface ChangeBridge {
  publish(event: ChangeEvent): void;
  close(): Promise<void>;
}

/** Limits of live queries on one host: a promise to the operator, counted before anything is held. */
export interface LiveLimits {
  /** Open push connections on this host (default 10,000). */
  maxConnections?: number;
  /** Live subscriptions one connection may hold (default 100). */
  maxSubscriptionsPerConnection?: number;
  /** Live subscriptions of one installation (feature + tenant) on this host (default 10,000). */
  maxSubscriptionsPerInstallation?: number;
  /**
   * Distinct queries (function, arguments and caller) one installation keeps live on this host
   * (default 1,000): each is one re-run per write that touches it.
   */
  maxGroupsPerInstallation?: number;
  /** Re-runs running at once on this host; the others wait their turn (default 8). */
  maxConcurrentRuns?: number;
  /** A call whose arguments are longer (JSON) answers once and is not kept live (default 64 KiB). */
  maxArgsBytes?: number;
  /** A comment line keeps idle connections open through proxies (default every 25 s). */
  heartbeatMs?: number;
}

/** One run of a subscribed query: its JSON result and what it read, or the error to push. */
export type RunOutcome =
  | { json: string; tables: ReadonlySet<string>; wrote: boolean }
  | { error: { status: number; error: string; requestId: string } };

/** What a subscribing call hands the hub once it has answered. */
export interface Subscribe {
  connectionId: string;
  subId: string;
  featureId: string;
  identity: Identity;
  /** The same function with the same arguments for the same caller: one re-run serves them all. */
  key: string;
  tables: ReadonlySet<string>;
  /** The result the caller was sent. */
  json: string;
  /** `hub.seq` when the call started: a write committed meanwhile re-runs it at once. */
  since: number;
  /** Runs the query again, as the same caller. */
  run: () => Promise<RunOutcome>;
}

interface Connection {
  readonly id: string;
  readonly featureId: string;
  readonly tenantId: string | null;
  readonly userId: string | null;
  readonly send: (chunk: string | Uint8Array) => void;
  readonly end: () => void;
  readonly subs: Map<string, Group>;
}

interface Group {
  readonly key: string;
  readonly featureId: string;
  readonly tenantId: string | null;
  readonly expires: number | null;
  tables: ReadonlySet<string>;
  json: string;
  run: () => Promise<RunOutcome>;
  /**
   * Subscribers: connection, the id it knows the subscription by, and the number of the first run
   * whose result it may get (a member that joined during a run was answered newer data than it).
   */
  readonly members: Map<Connection, Map<string, number>>;
  /** Runs started so far. */
  runs: number;
  size: number;
  state: 'idle' | 'waiting' | 'queued' | 'running';
  dirty: boolean;
  /** When its last run ended (ms, performance.now()). */
  ranAt: number;
}

const ID = /^[A-Za-z0-9_-]{1,64}$/;
const encoder = new TextEncoder();
const RECENT = 512;
/** A group runs again at most this often: a burst of writes makes a few runs, not one per write. */
const MIN_GAP_MS = 30;

/**
 * Live queries on one host: push connections (SSE), subscriptions grouped by what they run, and
 * the re-runs that committed writes cause. A write touches a group when it is of the group's
 * feature and tenant and wrote a table the group's last run read; the group re-runs once (a burst
 * of writes while it runs makes one more run, not one per write), and each subscriber gets the new
 * result only if it changed.
 *
 * @example
 * const hub = new LiveHub()
 * feature.data.onCommit((change) => hub.changed({ featureId: feature.id, ...change, tables: [...change.tables] }))
 */
export class LiveHub {
  /** Counts change events; a subscribing call notes it when it starts. */
  seq = 0;
  readonly #limits: Required<LiveLimits>;
  readonly #connections = new Map<string, Connection>();
  readonly #groups = new Map<string, Group>();
  readonly #byFeature = new Map<string, Set<Group>>();
  readonly #perInstallation = new Map<string, number>();
  readonly #groupsPerInstallation = new Map<string, number>();
  readonly #recent: { seq: number; event: ChangeEvent }[] = [];
  /** Groups waiting to run, by installation; installations take turns (one tenant's many queries never hold up another's). */
  readonly #queues = new Map<string, Group[]>();
  readonly #turns: string[] = [];
  #running = 0;
  #draining = false;
  #bridge: ChangeBridge | null = null;
  #heartbeat: NodeJS.Timeout | null = null;
  #closed = false;
  readonly #watched = new WeakSet<object>();

  constructor(limits: LiveLimits = {}) {
    this.#limits = {
      maxConnections: limits.maxConnections ?? 10_000,
      maxSubscriptionsPerConnection: limits.maxSubscriptionsPerConnection ?? 100,
      maxSubscriptionsPerInstallation: limits.maxSubscriptionsPerInstallation ?? 10_000,
      maxGroupsPerInstallation: limits.maxGroupsPerInstallation ?? 1_000,
      maxConcurrentRuns: limits.maxConcurrentRuns ?? 8,
      maxArgsBytes: limits.maxArgsBytes ?? 64 * 1024,
      heartbeatMs: limits.heartbeatMs ?? 25_000,
    };
  }

  get limits(): Readonly<Required<LiveLimits>> {
    return this.#limits;
  }

  /**
   * Listens to the commits of a feature's data (once per data layer): each becomes a change event
   * of the feature. The host calls it before a call runs, so no write goes unseen.
   */
  watch(featureId: string, data: Committing | null): void {
    if (!data || this.#watched.has(data)) return;
    this.#watched.add(data);
    data.onCommit(({ tables, tenantId }) => this.changed({ featureId, tenantId, tables: [...tables] }));
  }

  /** Hands local changes to other hosts, and theirs to `remote`. */
  bridge(bridge: ChangeBridge): void {
    if (this.#closed) return void bridge.close();
    this.#bridge = bridge;
  }

  /**
   * Opens a push connection of `featureId` for `identity`; `send` writes to it, `end` closes it.
   * Throws a 503 `RequestError` when the host holds its most connections.
   */
  open(featureId: string, identity: Identity, send: (chunk: string | Uint8Array) => void, end: () => void): string {
    if (this.#closed) throw RequestError.of('unavailable', 'the host is shutting down');
    if (this.#connections.size >= this.#limits.maxConnections) {
      throw RequestError.of(
        'unavailable',
        `live queries: this host holds its most connections (${this.#limits.maxConnections}); try again later`,
      );
    }
    const id = randomBytes(18).toString('base64url');
    const connection: Connection = {
      id,
      featureId,
      tenantId: identity.tenantId,
      userId: userIdOf(identity),
      send,
      end,
      subs: new Map(),
    };
    this.#connections.set(id, connection);
    this.#heartbeat ??= setInterval(() => this.#ping(), this.#limits.heartbeatMs).unref();
    return id;
  }

  /** Frees everything the connection held. */
  close(connectionId: string): void {
    const connection = this.#connections.get(connectionId);
    if (!connection) return;
    this.#connections.delete(connectionId);
    for (const [subId, group] of connection.subs) this.#leave(group, connection, subId);
    connection.subs.clear();
    if (this.#connections.size === 0 && this.#heartbeat) {
      clearInterval(this.#heartbeat);
      this.#heartbeat = null;
    }
  }

  /**
   * Why a subscribing call of `featureId` by `identity` cannot use connection `header`
   * (`{connectionId}.{subId}`), or the two ids when it can. The call itself runs either way.
   */
  check(header: string, featureId: string, identity: Identity): { connectionId: string; subId: string } | string {
    const dot = header.indexOf('.');
    const connectionId = header.slice(0, dot);
    const subId = header.slice(dot + 1);
    if (dot < 0 || !ID.test(connectionId) || !ID.test(subId)) return 'malformed subscription header';
    const connection = this.#connections.get(connectionId);
    if (!connection) return 'unknown connection';
    // A connection carries one feature's pushes to one caller: nobody adds to another's.
    if (connection.featureId !== featureId) return 'the connection is of another feature';
    if (connection.tenantId !== identity.tenantId || connection.userId !== userIdOf(identity))
      return 'the connection is of another caller';
    return { connectionId, subId };
  }

  /** Keeps a subscribing call's query live; returns why not when it cannot be. */
  subscribe(sub: Subscribe): true | string {
    const connection = this.#connections.get(sub.connectionId);
    if (!connection) return 'the connection closed';
    if (sub.key.length > this.#limits.maxArgsBytes + 4096) return 'the arguments are too long to keep live';
    const existing = connection.subs.get(sub.subId);
    if (existing) this.#leave(existing, connection, sub.subId);
    else if (connection.subs.size >= this.#limits.maxSubscriptionsPerConnection)
      return `the connection holds its most subscriptions (${this.#limits.maxSubscriptionsPerConnection})`;
    const installation = installationOf({ featureId: sub.featureId, tenantId: sub.identity.tenantId });
    const count = this.#perInstallation.get(installation) ?? 0;
    if (count >= this.#limits.maxSubscriptionsPerInstallation) {
      connection.subs.delete(sub.subId);
      return `the installation holds its most subscriptions (${this.#limits.maxSubscriptionsPerInstallation})`;
    }
    let group = this.#groups.get(sub.key);
    const groups = this.#groupsPerInstallation.get(installation) ?? 0;
    if (!group && groups >= this.#limits.maxGroupsPerInstallation) {
      connection.subs.delete(sub.subId);
      return `the installation keeps its most distinct live queries (${this.#limits.maxGroupsPerInstallation})`;
    }
    this.#perInstallation.set(installation, count + 1);
    if (!group) {
      this.#groupsPerInstallation.set(installation, groups + 1);
      group = {
        key: sub.key,
        featureId: sub.featureId,
        tenantId: sub.identity.tenantId,
        expires: expiresOf(sub.identity),
        tables: sub.tables,
        json: sub.json,
        run: sub.run,
        members: new Map(),
        runs: 0,
        size: 0,
        state: 'idle',
        dirty: false,
        ranAt: 0,
      };
      this.#groups.set(sub.key, group);
      let set = this.#byFeature.get(sub.featureId);
      if (!set) this.#byFeature.set(sub.featureId, (set = new Set()));
      set.add(group);
    } else if (group.json !== sub.json) {
      // The newcomer saw another result than the group last pushed: one of them is older.
      this.#schedule(group);
    }
    let ids = group.members.get(connection);
    if (!ids) group.members.set(connection, (ids = new Map()));
    // Joining during a run: that run read before this member's own call did; it gets the next one.
    const running = group.state === 'running';
    ids.set(sub.subId, running ? group.runs + 1 : 0);
    if (running) group.dirty = true;
    group.size++;
    connection.subs.set(sub.subId, group);
    if (this.#missed(group, sub.since)) this.#schedule(group);
    return true;
  }

  /** Ends subscriptions of a connection (the client unmounted them). */
  unsubscribe(connectionId: string, subIds: readonly string[]): void {
    const connection = this.#connections.get(connectionId);
    if (!connection) return;
    for (const subId of subIds) {
      const group = connection.subs.get(subId);
      if (!group) continue;
      connection.subs.delete(subId);
      this.#leave(group, connection, subId);
    }
  }

  /** A write committed on this host: re-runs what it touches here and tells the other hosts. */
  changed(event: ChangeEvent): void {
    this.#bridge?.publish(event);
    this.remote(event);
  }

  /** A write committed elsewhere (another host, or a client of the dev database). */
  remote(event: ChangeEvent): void {
    const seq = ++this.seq;
    this.#recent.push({ seq, event });
    if (this.#recent.length > RECENT) this.#recent.splice(0, this.#recent.length - RECENT);
    const groups =
      event.featureId === null
        ? [...this.#byFeature.values()].flatMap((s) => [...s])
        : this.#byFeature.get(event.featureId);
    if (!groups) return;
    for (const group of groups) if (touches(event, group)) this.#schedule(group);
  }

  /** Counts, for `/_admin` and tests. */
  stats(): { connections: number; subscriptions: number; groups: number } {
    let subscriptions = 0;
    for (const group of this.#groups.values()) subscriptions += group.size;
    return { connections: this.#connections.size, subscriptions, groups: this.#groups.size };
  }

  /** Ends every connection (clients reconnect, to another host when this one shuts down). */
  async shutdown(): Promise<void> {
    this.#closed = true;
    // Deleting the entry being visited is safe while iterating a Map (and a Set).
    for (const connection of this.#connections.values()) {
      this.close(connection.id);
      connection.end();
    }
    await this.#bridge?.close();
  }

  #missed(group: Group, since: number): boolean {
    if (since >= this.seq) return false;
    const oldest = this.#recent[0];
    if (!oldest || oldest.seq > since + 1) return true;
    return this.#recent.some((r) => r.seq > since && touches(r.event, group));
  }

  #leave(group: Group, connection: Connection, subId: string): void {
    const ids = group.members.get(connection);
    if (!ids?.delete(subId)) return;
    if (ids.size === 0) group.members.delete(connection);
    group.size--;
    const installation = installationOf(group);
    const count = (this.#perInstallation.get(installation) ?? 1) - 1;
    if (count > 0) this.#perInstallation.set(installation, count);
    else this.#perInstallation.delete(installation);
    if (group.size === 0) {
      this.#groups.delete(group.key);
      const groups = (this.#groupsPerInstallation.get(installation) ?? 1) - 1;
      if (groups > 0) this.#groupsPerInstallation.set(installation, groups);
      else this.#groupsPerInstallation.delete(installation);
      const set = this.#byFeature.get(group.featureId);
      set?.delete(group);
      if (set?.size === 0) this.#byFeature.delete(group.featureId);
    }
  }

  #schedule(group: Group): void {
    if (group.state !== 'idle') {
      group.dirty = true;
      return;
    }
    const wait = group.ranAt + MIN_GAP_MS - performance.now();
    if (wait > 0) {
      group.state = 'waiting';
      setTimeout(() => this.#enqueue(group), wait).unref();
    } else this.#enqueue(group);
  }

  #enqueue(group: Group): void {
    group.state = 'queued';
    const installation = installationOf(group);
    let queue = this.#queues.get(installation);
    if (!queue) {
      this.#queues.set(installation, (queue = []));
      this.#turns.push(installation);
    }
    queue.push(group);
    // Writes of this same turn of the event loop fold into the one run.
    if (!this.#draining) {
      this.#draining = true;
      setImmediate(() => {
        this.#draining = false;
        this.#drain();
      });
    }
  }

  /** The next group to run: the next installation's turn, round robin. */
  #next(): Group | undefined {
    const installation = this.#turns.shift();
    if (installation === undefined) return undefined;
    const queue = this.#queues.get(installation)!;
    const group = queue.shift()!;
    if (queue.length > 0) this.#turns.push(installation);
    else this.#queues.delete(installation);
    return group;
  }

  #drain(): void {
    while (this.#running < this.#limits.maxConcurrentRuns) {
      const group = this.#next();
      if (!group) return;
      if (group.size === 0) {
        group.state = 'idle';
        continue;
      }
      this.#running++;
      group.state = 'running';
      group.dirty = false;
      group.runs++;
      void this.#rerun(group).finally(() => {
        this.#running--;
        group.state = 'idle';
        group.ranAt = performance.now();
        if (group.dirty && group.size > 0) this.#schedule(group);
        // A turn of the event loop between runs: calls and pushes go on while many groups re-run.
        setImmediate(() => this.#drain());
      });
    }
  }

  async #rerun(group: Group): Promise<void> {
    const run = group.runs;
    if (group.expires !== null && Date.now() >= group.expires) {
      this.#end(group, { status: 401, error: 'Unauthorized: the token expired; subscribe again', requestId: '' });
      return;
    }
    let outcome: RunOutcome;
    try {
      outcome = await group.run();
    } catch (error) {
      outcome = { error: { status: 500, error: (error as Error).message, requestId: '' } };
    }
    if ('error' in outcome) {
      this.#push(group, `"error":${JSON.stringify(outcome.error)}`, run);
      return;
    }
    if (outcome.wrote) {
      this.#end(group, { status: 409, error: 'The function wrote data, so it is no longer kept live', requestId: '' });
      return;
    }
    group.tables = outcome.tables;
    if (outcome.json === group.json) return;
    group.json = outcome.json;
    this.#push(group, `"data":${outcome.json}`, run);
  }

  /**
   * Sends `{"sub":id,<body>}` to every subscriber of the group that may get run `run`'s result;
   * the body is encoded once for all.
   */
  #push(group: Group, body: string, run: number): void {
    const shared = encoder.encode(`,${body}}\n\n`);
    for (const [connection, ids] of group.members) {
      for (const [id, from] of ids) {
        if (run < from) continue;
        connection.send(`data: {"sub":"${id}"`);
        connection.send(shared);
      }
    }
  }

  /** Tells the subscribers why their subscription ended, and drops it. */
  #end(group: Group, error: { status: number; error: string; requestId: string }): void {
    this.#push(group, `"error":${JSON.stringify(error)},"ended":true`, Number.MAX_SAFE_INTEGER);
    for (const [connection, ids] of group.members) {
      for (const id of ids.keys()) {
        connection.subs.delete(id);
        this.#leave(group, connection, id);
      }
    }
  }

  #ping(): void {
    for (const connection of this.#connections.values()) connection.send(': ping\n\n');
  }
}

/** A group's installation: its feature and tenant. */
function installationOf(group: { featureId: string; tenantId: string | null }): string {
  return `${group.featureId}\0${group.tenantId ?? ''}`;
}

function touches(event: ChangeEvent, group: Group): boolean {
  if (event.featureId !== null && event.featureId !== group.featureId) return false;
  if (event.tenantId !== undefined && event.tenantId !== group.tenantId) return false;
  if (event.tables === null) return true;
  return event.tables.some((table) => group.tables.has(table));
}

function userIdOf(identity: Identity): string | null {
  const sub = identity.claims?.sub;
  return typeof sub === 'string' ? sub : null;
}

/** When the caller's token expires (ms), if it says. */
function expiresOf(identity: Identity): number | null {
  const exp = identity.claims?.exp;
  return typeof exp === 'number' && Number.isFinite(exp) ? exp * 1000 : null;
}

/**
 * The key of a subscription group: the same feature, function, arguments and caller (all of its
 * identity, since a function may read any of it) share one re-run.
 */
export function groupKey(featureId: string, what: string, argsJson: string, identity: Identity): string {
  const who = JSON.stringify([identity.claims, identity.userRoles, identity.tenantId, identity.featureToggles]);
  return `${featureId}\0${what}\0${argsJson}\0${who}`;
}
