// Reads a live-queries push stream (`GET /_live/{featureId}`) as a page does, for the tests.
import { expect } from 'vitest';

/** An open push stream: its connection id, every push in order, and whether the host ended it. */
export interface LiveStream {
  connection: string;
  pushes: Record<string, unknown>[];
  closed: boolean;
  close(): void;
}

/**
 * Opens the stream with `headers`, waits for its `hello` event, and keeps reading its pushes.
 *
 * @example
 * const stream = await openLiveStream(`${base}/_live/feature-x`, { 'x-favn-dev-identity': '{"sub":"ann"}' })
 */
export async function openLiveStream(url: string, headers: Record<string, string> = {}): Promise<LiveStream> {
  const abort = new AbortController();
  const response = await fetch(url, { headers, signal: abort.signal });
  expect(response.status).toBe(200);
  expect(response.headers.get('content-type')).toMatch(/^text\/event-stream/);
  const reader = response.body!.pipeThrough(new TextDecoderStream()).getReader();
  let hello!: () => void;
  const ready = new Promise<void>((resolve) => (hello = resolve));
  const stream: LiveStream = { connection: '', pushes: [], closed: false, close: () => abort.abort() };
  void (async () => {
    let buffer = '';
    for (;;) {
      const { done, value } = await reader.read().catch(() => ({ done: true, value: '' }));
      if (done) return void (stream.closed = true);
      buffer += value;
      for (let end = buffer.indexOf('\n\n'); end >= 0; end = buffer.indexOf('\n\n')) {
        const block = buffer.slice(0, end);
        buffer = buffer.slice(end + 2);
        const data = block.split('\n').find((line) => line.startsWith('data: '));
        if (!data) continue;
        const message = JSON.parse(data.slice(6)) as Record<string, unknown>;
        if (block.startsWith('event: hello')) {
          stream.connection = message.connection as string;
          hello();
        } else stream.pushes.push(message);
      }
    }
  })();
  await ready;
  return stream;
}

/** The results pushed to subscription `sub`, in order. */
export function dataOf(stream: Pick<LiveStream, 'pushes'>, sub: string): unknown[] {
  return stream.pushes.filter((p) => p.sub === sub && 'data' in p).map((p) => p.data);
}
