import pc from 'picocolors';
import type { ViteDevServer } from 'vite';

/** Something the user should fix, shown in the terminal and the browser overlay. */
export interface Problem {
  message: string;
  file?: string | undefined;
  line?: number | undefined;
  column?: number | undefined;
  /** Serving still works (e.g. an exports mismatch); printed as a warning. */
  warning?: boolean;
}

const lastReported = new WeakMap<ViteDevServer, { key: string; payload: object | null }>();

/**
 * Prints new problems once and puts the first into Vite's error overlay, also for pages that
 * connect later. An empty list after problems prints that all is well again.
 */
export function reportProblems(server: ViteDevServer, problems: Problem[]): void {
  const key = problems.map((p) => p.message).join('\n');
  const last = lastReported.get(server);
  if (last?.key === key) return;
  const logger = server.config.logger;
  if (problems.length === 0) {
    if (last && last.key !== '') logger.info(pc.green('[favn] server functions are OK again'), { timestamp: true });
    lastReported.set(server, { key, payload: null });
    return;
  }
  for (const p of problems) {
    const text = `${pc.bold('[favn]')} ${p.message}`;
    if (p.warning) logger.warn(pc.yellow(text), { timestamp: true });
    else logger.error(pc.red(text), { timestamp: true });
  }
  const [first] = problems;
  const payload = {
    type: 'error',
    err: {
      message: problems.map((p) => p.message).join('\n\n'),
      stack: '',
      plugin: 'favn:server-fns',
      id: first?.file,
      loc: first?.file && first.line ? { file: first.file, line: first.line, column: first.column ?? 1 } : undefined,
    },
  } as const;
  lastReported.set(server, { key, payload });
  server.ws.send(payload);
}

/** Sends the current problem to every page that connects while it lasts. */
export function replayProblemsOnConnect(server: ViteDevServer): void {
  server.ws.on('vite:client:connect', (_data, client) => {
    const payload = lastReported.get(server)?.payload;
    if (payload) client.send(payload as never);
  });
}
