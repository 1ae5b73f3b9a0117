import { query, v } from '@favn/vite-plugin-server-fns/server';

// A handler function: it runs in a V8 isolate with memory and CPU limits, not in the dev server's
// own process, so it sees no `process`, no `require`, nothing of Node.
export const noteStats = query({
  args: [v.array(v.string())],
  handler: (_ctx, texts) => {
    const words = texts.flatMap((t) => t.split(/\s+/).filter(Boolean));
    const longest = words.reduce((a, b) => (b.length > a.length ? b : a), '');
    return {
      notes: texts.length,
      words: words.length,
      longest,
      sandboxed: typeof (globalThis as { process?: unknown }).process === 'undefined',
    };
  },
});
