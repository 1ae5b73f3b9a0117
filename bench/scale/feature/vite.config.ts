import { defineConfig } from 'vite';
import serverFns from '@favn/vite-plugin-server-fns';

export default defineConfig({ plugins: [serverFns()], logLevel: 'warn' });
