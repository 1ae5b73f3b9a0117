import serverFns from '@favn/vite-plugin-server-fns';

export default { plugins: [serverFns()], logLevel: 'silent' };
