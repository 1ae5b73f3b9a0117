import type { ServerContext } from '@favn/vite-plugin-server-fns/server';
import { pool } from './pg';

export interface Report { id: string; title: string }
export type ReportId = string;

export async function listReports(ctx: ServerContext): Promise<Report[]> {
  const rows = await pool.query<Report>('select * from reports where owner = $1', [ctx.auth.userId]);
  return rows.rows;
}

const archive = async (ctx: ServerContext, id: ReportId) => ({ archived: id });
export { archive, archive as archiveReport };
export { helper as renamed } from './helpers';
export declare function declaredOnly(): void;
