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
  #ring: CallRecord[] = [];
  #next = 0;
  #size: number;
  #print: ((line: string) => void) | null;

  constructor(options: { size?: number; print?: ((line: string) => void) | null } = {}) {
    this.#size = options.size ?? 100;
    this.#print = options.print ?? null;
  }

  record(call: Omit<CallRecord, 'at'>): void {
    const entry = { at: new Date().toISOString(), ...call };
    this.#ring[this.#next] = entry;
    this.#next = (this.#next + 1) % this.#size;
    this.#print?.(formatCall(entry));
  }

  /** Newest first. */
  recent(): CallRecord[] {
    return [...this.#ring.slice(this.#next), ...this.#ring.slice(0, this.#next)].reverse();
  }
}

function formatCall(call: CallRecord): string {
  const color = call.status < 300 ? pc.green : call.status < 500 ? pc.yellow : pc.red;
  const ms = call.ms < 10 ? call.ms.toFixed(1) : Math.round(call.ms).toString();
  return `${pc.dim('rpc')} ${call.featureId}/${pc.bold(call.fnName)} ${color(String(call.status))} ${pc.dim(`${ms} ms`)}`;
}
