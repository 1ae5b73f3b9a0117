/**
 * The host: serve features' server functions over `POST /rpc/{featureId}/{fnName}`.
 *
 * @example
 * import { createHost, hostedFeature, loadBuiltFeature } from '@favn/vite-plugin-server-fns/devserver'
 */
export { createHost, type Host, type HostOptions, type HostEnv } from './host/host.js';
export { attachLiveSockets } from './host/live-socket.js';
export { listenForChanges } from './live/postgres-changes.js';
export type { LiveLimits, ChangeEvent } from './live/live-hub.js';
export { hostedFeature, type HostedFeature } from './feature/hosted-feature.js';
export { FeatureRuntime, type FeatureRuntimeOptions, type FeatureSources } from './feature/feature-runtime.js';
export { FunctionTable, type FunctionsStatus, type ModuleEntry } from './feature/function-table.js';
export type { Executor, Invocation } from './executors/executor.js';
export { ModuleExecutor } from './executors/module-executor.js';
export { DeclarativeExecutor } from './executors/declarative-executor.js';
export { IsolateExecutor } from './executors/isolate-executor.js';
export { buildServerContext } from './host/context.js';
export { ANONYMOUS, type Identity } from './auth/identity.js';
export { readManifest, parseManifest, type FeatureManifest, type ServerFunctionsManifest } from './feature/manifest.js';
export { loadBuiltFeature } from './feature/load-built-feature.js';
export { UsageError } from './common/usage-error.js';
export { RequestError } from '../runtime/request-error.js';
export { EndpointExecutor, type EndpointOptions } from './executors/endpoint-executor.js';
export { startServe, type RunningHost, type ServeOptions } from './serve/serve.js';
export { readServeConfig, type ServeConfig } from './serve/serve-config.js';
export { parseAuthConfig, type AuthConfig } from './auth/auth-config.js';
export { createIdentify } from './auth/create-identify.js';
export { openRateLimiter } from './rate-limit/open-rate-limiter.js';
export type { RateLimiter } from './rate-limit/limiter.js';
