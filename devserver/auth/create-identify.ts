import type { Context } from 'hono';
import { ANONYMOUS, type Identity } from './identity.js';
import { devIdentity } from './dev-identity.js';
import type { AuthConfig } from './auth-config.js';
import { createJwtIdentify, identifyFromContext } from './jwt-identify.js';

/** The shape of the host's `identify` option, minus the feature it does not need. */
export type IdentifyRequest = (c: Context) => Identity | Promise<Identity>;

/**
 * The `identify` function for an auth config. Mode `none` is the dev identity of the request
 * (header or `favn_dev_identity` cookie) in dev, and always anonymous outside dev, where anyone
 * could otherwise claim any role. Mode `jwt` verifies tokens in dev and production alike.
 *
 * @example
 * createHost(features, { dev, identify: createIdentify(parseAuthConfig(config.auth), { dev }) })
 */
export function createIdentify(config: AuthConfig, options: { dev: boolean }): IdentifyRequest {
  if (config.mode === 'jwt') return identifyFromContext(createJwtIdentify(config));
  return options.dev ? devIdentity : anonymous;
}

function anonymous(): Identity {
  return ANONYMOUS;
}
