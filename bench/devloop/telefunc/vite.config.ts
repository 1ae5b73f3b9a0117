import { defineConfig } from 'vite';
import { telefunc } from 'telefunc/vite';

// Vite's dependency cache beside the app, so copies of it never share one.
export default defineConfig({ cacheDir: '.vite-cache', plugins: [telefunc()] });
