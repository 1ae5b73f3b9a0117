import { defineConfig } from 'vite';
import serverFns from '@favn/vite-plugin-server-fns';

// Vite's dependency cache beside the app, so copies of it never share one.
export default defineConfig({ cacheDir: '.vite-cache', plugins: [serverFns()] });
