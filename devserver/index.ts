/**
 * The host: serve features' server functions over `POST /rpc/{featureId}/{fnName}`.
 *
 * @example
 * import { createHost, hostedFeature, loadBuiltFeature } from '@favn/vite-plugin-server-fns/devserver'
 */
export { createHost, type Host, type HostOptions, type HostEnv } from './host.js';
export { hostedFeature, type HostedFeature } from './feature.js';
export { ModuleExecutor, type ModuleEntry } from './module-executor.js';
export type { Executor, ExecutorStatus, Invocation } from './executor.js';
export { ANONYMOUS, buildServerContext, type Identity } from './context.js';
export { readManifest, parseManifest, type FeatureManifest, type ServerFunctionsManifest } from './manifest.js';
export { loadBuiltFeature } from './built-feature.js';
export { UsageError } from './usage-error.js';
