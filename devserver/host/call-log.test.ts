/**
 * The call log's terminal lines go out after the answers of their turn: every line still comes,
 * once, in the order of the calls, and a line printer that fails does not take the host down.
 */
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify, stripVTControlCharacters as plain } from 'node:util';
import { expect, it } from 'vitest';
import { batchedLines, CallLog } from './call-log.js';

const turn = () => new Promise((resolve) => setImmediate(resolve));

it('prints every line of a busy turn once, in call order, and none before the turn ends', async () => {
  const lines: string[] = [];
  const log = new CallLog({ size: 10, print: (line) => lines.push(plain(line)) });
  for (let i = 0; i < 500; i++) {
    log.record({ featureId: 'feature-x', fnName: `f${i}`, status: i % 7 === 0 ? 500 : 200, ms: 1, requestId: `r${i}` });
  }
  expect(lines).toEqual([]);
  await turn();
  expect(lines).toHaveLength(500);
  expect(lines[0]).toBe('rpc feature-x/f0 500 1.0 ms');
  expect(lines[499]).toBe('rpc feature-x/f499 200 1.0 ms');
  expect(lines.map((line) => line.split(' ')[1])).toEqual(Array.from({ length: 500 }, (_, i) => `feature-x/f${i}`));
  // The ring still keeps only the newest `size`; the next turn prints only its own lines.
  expect(log.recent().map((call) => call.fnName)).toEqual(Array.from({ length: 10 }, (_, i) => `f${499 - i}`));
  log.record({ featureId: 'feature-x', fnName: 'later', status: 200, ms: 12.4, requestId: 'r-later' });
  await turn();
  expect(lines.slice(500)).toEqual(['rpc feature-x/later 200 12 ms']);
});

it('prints the lines of calls recorded while it prints (a printer that calls back in)', async () => {
  const lines: string[] = [];
  const log: CallLog = new CallLog({
    print: (line) => {
      lines.push(plain(line));
      if (lines.length === 1)
        log.record({ featureId: 'feature-x', fnName: 'nested', status: 200, ms: 1, requestId: 'n' });
    },
  });
  log.record({ featureId: 'feature-x', fnName: 'first', status: 200, ms: 1, requestId: 'a' });
  log.record({ featureId: 'feature-x', fnName: 'second', status: 200, ms: 1, requestId: 'b' });
  await turn();
  await turn();
  expect(lines).toEqual([
    'rpc feature-x/first 200 1.0 ms',
    'rpc feature-x/second 200 1.0 ms',
    'rpc feature-x/nested 200 1.0 ms',
  ]);
});

it('keeps the host process running, and prints the other lines, when printing one line throws', async () => {
  // A process of its own: the line printer runs outside any request, so its error is uncaught.
  const module = fileURLToPath(new URL('./call-log.ts', import.meta.url));
  const script = `
    const { CallLog } = await import(${JSON.stringify(module)});
    let n = 0;
    const log = new CallLog({ print: (line) => { if (++n === 1) throw new Error('terminal gone'); console.log('printed', n); } });
    for (const fnName of ['a', 'b', 'c']) log.record({ featureId: 'feature-x', fnName, status: 200, ms: 1, requestId: fnName });
    setTimeout(() => console.log('still serving'), 100);
  `;
  const result = await promisify(execFile)(process.execPath, ['--input-type=module', '-e', script], {
    cwd: fileURLToPath(new URL('../..', import.meta.url)),
    timeout: 20_000,
  }).then(
    ({ stdout }) => ({ code: 0, stdout }),
    (error: { code: number; stdout: string }) => ({ code: error.code, stdout: error.stdout }),
  );
  expect(result).toEqual({ code: 0, stdout: 'printed 2\nprinted 3\nstill serving\n' });
});

it('with batchedLines (favn serve), the lines of a turn go out in one write, in call order', async () => {
  const writes: string[] = [];
  const log = new CallLog({ print: batchedLines((text) => writes.push(plain(text))) });
  for (let i = 0; i < 200; i++)
    log.record({ featureId: 'feature-x', fnName: `f${i}`, status: 200, ms: 1, requestId: `r${i}` });
  await turn();
  expect(writes).toHaveLength(1);
  expect(writes[0]).toBe(Array.from({ length: 200 }, (_, i) => `rpc feature-x/f${i} 200 1.0 ms\n`).join(''));
  log.record({ featureId: 'feature-x', fnName: 'later', status: 404, ms: 2, requestId: 'r-later' });
  await turn();
  expect(writes).toEqual([writes[0], 'rpc feature-x/later 404 2.0 ms\n']);
});

it('with batchedLines, a write that throws loses its lines as a warning, and the next turn writes', async () => {
  const writes: string[] = [];
  const warnings: string[] = [];
  const onWarning = (warning: Error) => warnings.push(warning.message);
  process.on('warning', onWarning);
  try {
    let failing = true;
    const log = new CallLog({
      print: batchedLines((text) => {
        if (failing) throw new Error('stdout is closed');
        writes.push(plain(text));
      }),
    });
    log.record({ featureId: 'feature-x', fnName: 'lost', status: 200, ms: 1, requestId: 'a' });
    await turn();
    failing = false;
    log.record({ featureId: 'feature-x', fnName: 'kept', status: 200, ms: 1, requestId: 'b' });
    await turn();
    await turn();
    expect(writes).toEqual(['rpc feature-x/kept 200 1.0 ms\n']);
    expect(warnings).toEqual(['the call log could not print a line: stdout is closed']);
  } finally {
    process.off('warning', onWarning);
  }
});
