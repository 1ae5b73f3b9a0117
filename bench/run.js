/**
 * Runs the benchmarks: `npm run bench -- <name>` runs one, `npm run bench` runs all of them.
 * Each bench module exports `run(): Promise<void>` and prints its own result lines.
 */

/** Bench name -> module. Adding a bench is one line here. */
const BENCHES = {
  rpc: () => import('./rpc.js'),
  crud: () => import('./crud.js'),
  isolate: () => import('./isolate.js'),
  proxy: () => import('./proxy.js'),
  relay: () => import('./relay.js'),
  live: () => import('./live.js'),
  devloop: () => import('./devloop.js'),
  scale: () => import('./scale.js'),
};

const name = process.argv[2];
if (name !== undefined && !Object.hasOwn(BENCHES, name)) {
  console.error(`Unknown bench "${name}". Known: ${Object.keys(BENCHES).join(', ')}`);
  process.exit(2);
}

for (const bench of name === undefined ? Object.keys(BENCHES) : [name]) {
  const { run } = await BENCHES[bench]();
  await run();
}
