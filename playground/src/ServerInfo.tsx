import { useQuery } from '@favn/vite-plugin-server-fns/react';
import { ErrorMessage } from './ErrorMessage';
import { LiveBadge } from './LiveBadge';
import { serverInfo } from './server-info.server';

export function ServerInfo() {
  const { data, error, loading, refetch, live } = useQuery(serverInfo);
  return (
    <section className="card" aria-labelledby="server-info-title">
      <div className="row spread">
        <h2 id="server-info-title">Server info</h2>
        <span className="row">
          <LiveBadge status={live} />
          <button type="button" onClick={() => void refetch()} disabled={loading}>
            Refresh
          </button>
        </span>
      </div>
      <p className="muted">
        Returned by <code>serverInfo(ctx)</code>, a plain function in <code>src/server-info.server.ts</code> that runs
        in the dev server's process. It reads no table, so it is not live. Edit its message, save, and press Refresh:
        the next call runs the new code without a restart.
      </p>
      <ErrorMessage error={error} />
      {data && (
        <>
          <p className="message" data-testid="server-message">
            {data.message}
          </p>
          <dl>
            <dt>Request id</dt>
            <dd data-testid="request-id">
              <code>{data.requestId}</code>
            </dd>
            <dt>Feature id</dt>
            <dd>
              <code>{data.featureId}</code>
            </dd>
            <dt>User</dt>
            <dd>{data.userId ?? 'anonymous'}</dd>
            <dt>Node.js</dt>
            <dd data-testid="node-version">{data.nodeVersion}</dd>
            <dt>Server uptime</dt>
            <dd>{data.uptimeSeconds} s</dd>
            <dt>Served at</dt>
            <dd>{new Date(data.servedAt).toLocaleTimeString()}</dd>
          </dl>
        </>
      )}
    </section>
  );
}
