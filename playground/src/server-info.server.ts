import type { ServerContext } from '@favn/vite-plugin-server-fns/server';

export async function serverInfo(ctx: ServerContext) {
  return {
    message: 'Hello from server-info.server.ts',
    requestId: ctx.requestId,
    featureId: ctx.featureId,
    userId: ctx.auth.userId,
    nodeVersion: process.version,
    uptimeSeconds: Math.round(process.uptime()),
    servedAt: new Date().toISOString(),
  };
}
