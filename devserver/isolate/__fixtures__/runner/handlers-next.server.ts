// The next version of a feature's handlers: `version` answers 2, `double` is gone.
import { query, v } from '@favn/vite-plugin-server-fns/server';

export const version = query({ args: [v.int()], handler: (_ctx, _rounds) => 2 });
