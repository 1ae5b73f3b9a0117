import { useQuery } from '@favn/vite-plugin-server-fns/react';
import { ErrorMessage } from './ErrorMessage';
import { LiveBadge } from './LiveBadge';
import { noteStats } from './notes.server';

export function NoteStats() {
  // A query handler that reads the table is live too: a new note anywhere updates these figures.
  const stats = useQuery(noteStats);
  return (
    <section className="card" aria-labelledby="stats-title">
      <div className="row spread">
        <h2 id="stats-title">Note stats</h2>
        <LiveBadge status={stats.live} />
      </div>
      <p className="muted">
        Computed by <code>noteStats</code>, a <code>query</code> handler in <code>src/notes.server.ts</code> that reads
        the table through <code>ctx.db</code> in an isolate.
      </p>
      <ErrorMessage error={stats.error} />
      {stats.data && (
        <p data-testid="note-stats">
          {stats.data.notes} notes by {stats.data.authors} {stats.data.authors === 1 ? 'person' : 'people'},{' '}
          {stats.data.words} words, longest word “{stats.data.longest}”
          {stats.data.sandboxed ? ' (computed in an isolate: no process object there)' : ''}
        </p>
      )}
    </section>
  );
}
