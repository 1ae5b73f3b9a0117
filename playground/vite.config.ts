import { defineConfig } from 'vite';
import react from '@vitejs/plugin-react';
import serverFns from '@favn/vite-plugin-server-fns';

export default defineConfig({
  plugins: [react(), serverFns()],
  server: { port: 5173 },
});
