import { useState, type FormEvent } from 'react';
import { RpcError } from '@favn/vite-plugin-server-fns/client';
import { useMutation, useQuery } from '@favn/vite-plugin-server-fns/react';
import { devUser } from './dev-user';
import { ErrorMessage } from './ErrorMessage';
import { LiveBadge } from './LiveBadge';
import { addNote, deleteNote, listNotes } from './notes.server';

export function Notes() {
  // Live: after any committed write to `notes` (this tab, another window, psql), the host pushes the new page.
  const notes = useQuery(listNotes, { limit: 50 });
  const add = useMutation(addNote);
  const remove = useMutation(deleteNote);
  const [text, setText] = useState('');
  const [error, setError] = useState<RpcError | null>(null);
  const user = devUser();

  async function run(write: () => Promise<unknown>): Promise<boolean> {
    setError(null);
    try {
      await write();
      return true;
    } catch (e) {
      // The server checks every argument; its status and message arrive here as an RpcError.
      if (e instanceof RpcError) setError(e);
      else throw e;
      return false;
    }
  }

  async function submit(event: FormEvent) {
    event.preventDefault();
    if (await run(() => add.mutate(text))) setText('');
  }

  return (
    <section className="card" aria-labelledby="notes-title">
      <div className="row spread">
        <h2 id="notes-title">Notes</h2>
        <LiveBadge status={notes.live} />
      </div>
      <p className="muted">
        A table in <code>server/schema.ts</code>, stored in PGlite (<code>.favn/db</code>). <code>listNotes</code> (
        <code>queryRows</code>) and <code>deleteNote</code> (<code>deleteRow</code>, only your own notes) are
        declarative; <code>addNote</code> is a <code>mutation</code> handler that checks the text and stamps you as the
        author. Open a second window as another user: both lists stay in sync.
      </p>
      <form onSubmit={submit}>
        <label htmlFor="note-text">New note</label>
        <div className="row">
          <input
            id="note-text"
            value={text}
            onChange={(e) => setText(e.target.value)}
            placeholder="Try submitting it empty"
            autoComplete="off"
          />
          <button type="submit" disabled={add.pending}>
            {add.pending ? 'Adding…' : 'Add note'}
          </button>
        </div>
      </form>
      <ErrorMessage error={error ?? notes.error} />
      {notes.data === undefined ? (
        notes.loading && <p className="muted">Loading notes…</p>
      ) : notes.data.rows.length === 0 ? (
        <p className="muted">No notes yet.</p>
      ) : (
        <ul aria-label="Notes" className="notes">
          {notes.data.rows.map((note) => (
            <li key={note.id}>
              <span>{note.text}</span>
              <span className="row">
                <span className="muted">
                  {note.author}, {new Date(note.createdAt).toLocaleTimeString()}
                </span>
                {note.author === user && (
                  <button
                    type="button"
                    className="link"
                    onClick={() => void run(() => remove.mutate(note.id))}
                    aria-label={`Delete "${note.text}"`}
                  >
                    Delete
                  </button>
                )}
              </span>
            </li>
          ))}
        </ul>
      )}
    </section>
  );
}
