import { randomUUID } from 'node:crypto';
import { httpError, type ServerContext } from '@favn/vite-plugin-server-fns/server';

export interface Note {
  id: string;
  text: string;
  createdAt: string;
}

const MAX_LENGTH = 200;

// In memory, newest first. Kept on globalThis so the notes survive the dev server reloading server
// modules after a save; a restart starts over.
const store = globalThis as typeof globalThis & { __playgroundNotes?: Note[] };
const notes = (store.__playgroundNotes ??= [
  createNote('Components call server functions like local async functions.'),
  createNote('This list lives in the server process, not in the browser.'),
]);

export async function listNotes(_ctx: ServerContext): Promise<Note[]> {
  return notes;
}

export async function addNote(_ctx: ServerContext, text: string): Promise<Note> {
  // Arguments come from the client: check them here, whatever their declared type.
  const clean = typeof text === 'string' ? text.trim() : '';
  if (clean === '') throw httpError(422, 'Note text must not be empty');
  if (clean.length > MAX_LENGTH) throw httpError(422, `Note text must be at most ${MAX_LENGTH} characters`);
  const note = createNote(clean);
  notes.unshift(note);
  return note;
}

export async function deleteNote(_ctx: ServerContext, id: string): Promise<{ deleted: string }> {
  const index = notes.findIndex((note) => note.id === id);
  if (index === -1) throw httpError(404, 'That note does not exist (any more)');
  notes.splice(index, 1);
  return { deleted: id };
}

function createNote(text: string): Note {
  return { id: randomUUID(), text, createdAt: new Date().toISOString() };
}
