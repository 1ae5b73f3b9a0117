import { useState, type FormEvent } from 'react';
import { RpcError } from '@favn/vite-plugin-server-fns/client';
import { useMutation, useQuery } from '@favn/vite-plugin-server-fns/react';
import { ErrorMessage } from './ErrorMessage';
import { addNote, deleteNote, listNotes } from './notes.server';

export function Notes() {
  const notes = useQuery(listNotes);
  // After a mutation succeeds, every mounted useQuery of this feature refetches.
  const add = useMutation(addNote);
  const remove = useMutation(deleteNote);
  const [text, setText] = useState('');
  const [error, setError] = useState<RpcError | null>(null);

  async function submit(event: FormEvent) {
    event.preventDefault();
    setError(null);
    try {
      await add.mutate(text);
      setText('');
    } catch (e) {
      // The server validates the text; a 422 and its message arrive here as an RpcError.
      if (e instanceof RpcError) setError(e);
      else throw e;
    }
  }

  async function removeNote(id: string) {
    setError(null);
    try {
      await remove.mutate(id);
    } catch (e) {
      if (e instanceof RpcError) setError(e);
      else throw e;
    }
  }

  return (
    <section className="card" aria-labelledby="notes-title">
      <h2 id="notes-title">Notes</h2>
      <p className="muted">
        Kept in memory by <code>src/notes.server.ts</code>: <code>listNotes</code>, <code>addNote</code>,{' '}
        <code>deleteNote</code>.
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
      ) : notes.data.length === 0 ? (
        <p className="muted">No notes yet.</p>
      ) : (
        <ul aria-label="Notes" className="notes">
          {notes.data.map((note) => (
            <li key={note.id}>
              <span>{note.text}</span>
              <button
                type="button"
                className="link"
                onClick={() => void removeNote(note.id)}
                aria-label={`Delete "${note.text}"`}
              >
                Delete
              </button>
            </li>
          ))}
        </ul>
      )}
    </section>
  );
}
