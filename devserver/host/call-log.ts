import pc from 'picocolors';

/** One finished RPC call, as `/_admin` lists it. */
export interface CallRecord {
  at: string;
  featureId: string;
  fnName: string;
  status: number;
  ms: number;
  requestId: string;
}

/**
 * Remembers the most recent calls (a fixed-size ring) and prints one line per call.
 *
 * @example
 * const log = new CallLog({ print: (line) => logger.info(line) })
 */
export class CallLog {
  #ring: StoredCall[] = [];
  #next = 0;
  #size: number;
  #print: ((line: string) => void) | null;
  /** Lines not printed yet: they go out after the answers, not before them. */
  #pending: StoredCall[] = [];

  constructor(options: { size?: number; print?: ((line: string) => void) | null } = {}) {
    this.#size = options.size ?? 100;
    this.#print = options.print ?? null;
  }

  record(call: Omit<CallRecord, 'at'>): void {
    // The time is formatted only when someone reads the log.
    const entry: StoredCall = { ...call, time: Date.now() };
    this.#ring[this.#next] = entry;
    this.#next = (this.#next + 1) % this.#size;
    if (!this.#print) return;
    // A terminal write (and a logger's first timestamp, which loads the locale data: 60 ms) would
    // hold the answer back: lines are printed once the answers of this turn have gone out.
    if (this.#pending.push(entry) === 1) setImmediate(this.#flush);
  }

  #flush = (): void => {
    const entries = this.#pending;
    this.#pending = [];
    for (const entry of entries) {
      try {
        this.#print?.(formatCall(entry));
      } catch (error) {
        // Outside any request now: a printer that throws (a closed terminal) must not end the
        // process, nor take the other lines with it.
        process.emitWarning(`the call log could not print a line: ${(error as Error)?.message ?? String(error)}`);
      }
    }
  };

  /** Newest first. */
  recent(): CallRecord[] {
    return [...this.#ring.slice(this.#next), ...this.#ring.slice(0, this.#next)]
      .reverse()
      .map(({ time, ...call }) => ({ at: new Date(time).toISOString(), ...call }));
  }
}

type StoredCall = Omit<CallRecord, 'at'> & { time: number };

/**
 * A line printer that writes the lines printed together (the call log prints a turn's lines at
 * once) in one `write`: stdout on a file or a terminal writes synchronously, one system call per
 * call under load otherwise. A writer that throws loses its lines, never the process.
 *
 * @example
 * createHost(features, { logCall: batchedLines((text) => process.stdout.write(text)) })
 */
export function batchedLines(write: (text: string) => void): (line: string) => void {
  let lines: string[] = [];
  const flush = () => {
    const count = lines.length;
    const text = `${lines.join('\n')}\n`;
    lines = [];
    try {
      write(text);
    } catch (error) {
      const what = count === 1 ? 'a line' : `${count} lines`;
      process.emitWarning(`the call log could not print ${what}: ${(error as Error)?.message ?? String(error)}`);
    }
  };
  return (line) => {
    if (lines.push(line) === 1) queueMicrotask(flush);
  };
}

function formatCall(call: StoredCall): string {
  const color = call.status < 300 ? pc.green : call.status < 500 ? pc.yellow : pc.red;
  const ms = call.ms < 10 ? call.ms.toFixed(1) : Math.round(call.ms).toString();
  return `${pc.dim('rpc')} ${call.featureId}/${pc.bold(call.fnName)} ${color(String(call.status))} ${pc.dim(`${ms} ms`)}`;
}
