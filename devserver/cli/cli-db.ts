import path from 'node:path';
import pc from 'picocolors';
import type { SchemaDefinition } from '../../runtime/schema.js';
import { databaseUrl, serveDevDatabase } from '../data/dev-socket.js';
import { lockHolder, type LockHolder } from '../data/lock-file.js';
import { migrate, resetSchema } from '../data/migrate.js';
import { devDatabaseDir, openDatabase } from '../data/open-database.js';
import { openPostgres } from '../data/postgres-client.js';
import type { SqlClient } from '../data/sql-client.js';
import { readManifest } from '../feature/manifest.js';
import { modelSchema, type SchemaModel } from '../data/table-model.js';
import { schemaOf } from '../feature/schema-loader.js';
import { UsageError } from '../common/usage-error.js';
import { readEnvLocal } from '../common/env-local.js';

export interface DbCommandOptions {
  root: string;
  manifest: string;
  schema: string;
  allowDestructive: boolean;
  yes: boolean;
  port: number;
  out?: (line: string) => void;
}

/**
 * `favn db <tables|migrate|reset|shell>` on the feature's dev database (PGlite in `.favn/db`, or
 * `DATABASE_URL`). While a dev server (or `favn db shell`) has `.favn/db` open and serves it, the
 * commands run through it over the PostgreSQL protocol. Returns the exit code.
 *
 * @example
 * process.exitCode = await runDb('tables', { root: '.', ... })
 */
export async function runDb(command: string, options: DbCommandOptions): Promise<number> {
  const out = options.out ?? ((line: string) => process.stdout.write(`${line}\n`));
  const root = path.resolve(options.root);
  const env = { ...readEnvLocal(root), ...process.env };
  const manifest = readManifest(path.resolve(root, options.manifest));
  const model = modelSchema(manifest.id, await loadSchema(root, options.schema), options.schema);

  // The process that has the PGlite folder open, and serves it on a port of 127.0.0.1.
  const server = env.DATABASE_URL ? null : lockHolder(devDatabaseDir(root));
  if (command === 'shell') return shell(root, model, env, server, options, out);
  const db = server?.port ? await connectToServer(root, server.pid, server.port) : await openDatabase(root, env);
  try {
    if (command === 'tables') return await tables(db, model, out);
    if (command === 'migrate') {
      const { applied } = await migrate(db, model, { allowDestructive: options.allowDestructive });
      out(
        applied.length
          ? pc.green(`Migrated ${model.schema} (${db.location}):\n  ${applied.join(';\n  ')}`)
          : `${model.schema} is up to date (${db.location}).`,
      );
      return 0;
    }
    if (command === 'reset') {
      if (!options.yes) {
        out(
          pc.red(
            `favn db reset drops every table of ${model.schema} in ${db.location} and all their rows. Run it again with --yes to confirm.`,
          ),
        );
        return 1;
      }
      await resetSchema(db, model);
      await migrate(db, model);
      out(pc.green(`Reset ${model.schema} (${db.location}): tables re-created empty.`));
      return 0;
    }
    throw new UsageError(`favn db: unknown command "${command}" (commands: tables, migrate, reset, shell)`);
  } finally {
    await db.close();
  }
}

async function tables(db: SqlClient, model: SchemaModel, out: (line: string) => void): Promise<number> {
  out(`${pc.bold(model.schema)} on ${db.location}`);
  for (const table of model.tables.values()) {
    let count = 'not migrated';
    try {
      const [row] = await db.adminTransaction((q) => q(`SELECT count(*)::int AS n FROM ${table.sql}`));
      count = `${row?.n} row(s)`;
    } catch {
      // Shown as not migrated.
    }
    const columns = [...table.columns.values()].map((c) => `${c.name} ${c.sqlType}${c.nullable ? '?' : ''}`).join(', ');
    out(`  ${pc.bold(table.name)} (${count}): ${columns}`);
  }
  return 0;
}

/**
 * Prints how to connect with `psql`: to `DATABASE_URL`, to the dev server that serves `.favn/db`,
 * or to this process, which then serves the folder until Ctrl+C.
 */
async function shell(
  root: string,
  model: SchemaModel,
  env: Record<string, string | undefined>,
  server: LockHolder | null,
  options: DbCommandOptions,
  out: (line: string) => void,
): Promise<number> {
  if (env.DATABASE_URL) {
    out(`DATABASE_URL is set: connect with psql "${env.DATABASE_URL}" and SET ROLE ${model.role};`);
    return 0;
  }
  const searchPath = `Tables are in schema ${model.schema} (SET search_path TO ${model.schema};).`;
  if (server?.port) {
    out(`Process ${server.pid} (a running dev server or favn db shell) serves ${devDatabaseDir(root)}. Connect with:`);
    out(`  psql "${databaseUrl(server.port)}"`);
    out(searchPath);
    return 0;
  }
  const db = await openDatabase(root, env);
  const socket = await serveDevDatabase(root, { port: options.port });
  out(`Serving ${devDatabaseDir(root)} on 127.0.0.1:${socket.port}. Connect with:`);
  out(`  psql "${socket.url}"`);
  out(`${searchPath} Stop with Ctrl+C; favn db commands run through this meanwhile.`);
  await new Promise<void>((resolve) => {
    process.once('SIGINT', resolve);
    process.once('SIGTERM', resolve);
  });
  await socket.close();
  await db.close();
  return 0;
}

/** The dev database through the process that has it open (as its superuser, like the commands' own PGlite). */
async function connectToServer(root: string, pid: number, port: number): Promise<SqlClient> {
  const url = databaseUrl(port);
  try {
    const client = await openPostgres(url, { max: 1 });
    return { ...client, location: `${devDatabaseDir(root)}, served by process ${pid} at ${url}` };
  } catch (error) {
    throw new UsageError(
      `Process ${pid} has ${devDatabaseDir(root)} open and serves it on 127.0.0.1:${port}, ` +
        `but it did not answer there: ${(error as Error).message}. ` +
        `Run the command again once that dev server is up, or after it has stopped.`,
    );
  }
}

/** Loads `server/schema.ts` (TypeScript) the way Vite would. */
async function loadSchema(root: string, file: string): Promise<SchemaDefinition> {
  const { runnerImport } = await import('vite');
  const absolute = path.resolve(root, file);
  try {
    const { module } = await runnerImport(absolute, { root, configFile: false, logLevel: 'silent' });
    return schemaOf(module, file, absolute);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ERR_LOAD_URL' || /Failed to load url|ENOENT/.test(String(error))) {
      throw new UsageError(`No schema at ${absolute}: favn db works on the tables of server/schema.ts`);
    }
    throw error;
  }
}
