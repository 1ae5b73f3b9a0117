import { RpcError } from '@favn/vite-plugin-server-fns/client';

/** Shows what a failed server call reported: HTTP status, the server's message and request id. */
export function ErrorMessage({ error }: { error: unknown }) {
  if (!error) return null;
  if (error instanceof RpcError) {
    return (
      <p role="alert" className="error">
        <strong>{error.isNetworkError ? 'Network error' : error.status}</strong> {error.message}
        {error.requestId && <span className="muted"> (request {error.requestId.slice(0, 8)})</span>}
      </p>
    );
  }
  return (
    <p role="alert" className="error">
      {error instanceof Error ? error.message : String(error)}
    </p>
  );
}
