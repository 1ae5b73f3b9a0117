import { Notes } from './Notes';
import { NoteStats } from './NoteStats';
import { ServerInfo } from './ServerInfo';
import { UserSwitcher } from './UserSwitcher';

export function App() {
  return (
    <main>
      <header>
        <h1>Server functions playground</h1>
        <p>
          The components on this page import functions from <code>src/*.server.ts</code> and call them like local async
          functions. In the browser each import is a small proxy that sends{' '}
          <code>POST /rpc/feature-playground/&lt;function&gt;</code>; the function runs in the Vite dev server, which
          prints one line per call. Queries stay live: the server pushes their new results over{' '}
          <code>GET /_live/feature-playground</code>.
        </p>
        <UserSwitcher />
      </header>
      <Notes />
      <NoteStats />
      <ServerInfo />
    </main>
  );
}
