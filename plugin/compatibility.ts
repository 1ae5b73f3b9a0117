/** Vite lines the plugin is tested with (as `peerDependencies` says). */
const SUPPORTED_VITE = '^7.3.0 || ^8.0.0';

/**
 * Refuses a Vite the plugin is not tested with, before anything of it runs: a clear message and
 * what to do, rather than a stack from inside Vite.
 */
export function refuseUnsupportedVite(version: string): void {
  const [major = 0, minor = 0] = version.split('.').map(Number);
  if (major >= 8 || (major === 7 && minor >= 3)) return;
  throw new Error(
    `[favn] Vite ${version} is not supported: @favn/vite-plugin-server-fns needs Vite ${SUPPORTED_VITE}. ` +
      'Upgrade it with `npm install -D vite@8`.',
  );
}

/** Frameworks whose own file conventions clash with `*.server.*` server modules, by Vite plugin name. */
const CLASHING_FRAMEWORKS: { name: RegExp; framework: string; why: string }[] = [
  {
    name: /^vite-plugin-sveltekit/,
    framework: 'SvelteKit',
    why: 'its +page.server.ts and +layout.server.ts files would be taken for server modules (and turned into RPC proxies)',
  },
];

/** Refuses a framework whose conventions clash with ours, naming it and what to do instead. */
export function refuseUnsupportedFrameworks(plugins: readonly { name: string }[]): void {
  for (const { name, framework, why } of CLASHING_FRAMEWORKS) {
    if (!plugins.some((p) => name.test(p.name))) continue;
    throw new Error(
      `[favn] ${framework} is not supported: ${why}. Build the feature as a Vite app with React, Vue or Svelte, ` +
        'or with React Router in framework mode for server rendering (see the README, "Compatibility").',
    );
  }
}
