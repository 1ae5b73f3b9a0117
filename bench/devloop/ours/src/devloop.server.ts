import { queryRows } from '@favn/vite-plugin-server-fns/server';

export const listItems = queryRows('items', { maxLimit: 50 });

// The bench rewrites the returned value on every save.
export async function version() {
  return 'v0';
}
