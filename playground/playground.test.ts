/**
 * The playground in a real browser: a copy of `playground/` runs on the real Vite dev server and
 * headless Chromium uses the page the way a person would.
 */
import { randomUUID } from 'node:crypto';
import { cp, mkdir } from 'node:fs/promises';
import path from 'node:path';
import { chromium, type Browser, type Page, type Response } from 'playwright-core';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { editFile, eventually, REPO_ROOT, removeFixture, rpc, startDev, type DevServer } from '../fixtures/harness.js';

const FEATURE = 'feature-playground';
const WAIT = 15_000;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

/** Copies the playground (without this test) to a scratch folder inside the repo. */
async function copyPlayground(): Promise<string> {
  const work = path.join(REPO_ROOT, 'fixtures', '.work');
  const dir = path.join(work, `playground-${randomUUID().slice(0, 8)}`);
  await mkdir(work, { recursive: true });
  await cp(path.join(REPO_ROOT, 'playground'), dir, { recursive: true, filter: (src) => !src.endsWith('.test.ts') });
  return dir;
}

let dir: string | undefined;
let dev: DevServer;
let browser: Browser;
let page: Page;
const pageErrors: string[] = [];
/** Every RPC call the page made, as `fnName status`. */
const pageCalls: string[] = [];
/** The modules the browser received for `*.server.ts` imports, by path. */
const serverModuleResponses = new Map<string, Response>();

beforeAll(async () => {
  dir = await copyPlayground();
  dev = await startDev(dir);
  browser = await chromium.launch({ executablePath: '/usr/bin/chromium', args: CHROMIUM_ARGS });
  page = await browser.newPage();
  page.setDefaultTimeout(WAIT);
  page.on('pageerror', (error) => pageErrors.push(error.message));
  page.on('response', (response) => {
    const { pathname } = new URL(response.url());
    if (pathname.startsWith(`/rpc/${FEATURE}/`)) pageCalls.push(`${pathname.split('/').pop()} ${response.status()}`);
    if (pathname.endsWith('.server.ts')) serverModuleResponses.set(pathname, response);
  });
  await page.goto(dev.url);
}, 60_000);

afterEach(async (context) => {
  if (context.task.result?.state === 'fail') {
    await page
      ?.screenshot({ path: path.join(REPO_ROOT, 'test-results', 'playground-failure.png'), fullPage: true })
      .catch(() => {});
  }
});

afterAll(async () => {
  await browser?.close();
  await dev?.close();
  if (dir) await removeFixture(dir);
});

const notesList = () => page.getByRole('list', { name: 'Notes' });
const noteInput = () => page.getByLabel('New note', { exact: true });
const addButton = () => page.getByRole('button', { name: 'Add note' });
const requestIdText = async () => ((await page.getByTestId('request-id').textContent()) ?? '').trim();

/** Clicks Refresh in the server-info panel and waits until a new answer is shown. */
async function refreshServerInfo(): Promise<string> {
  const before = await requestIdText();
  await page.getByRole('button', { name: 'Refresh' }).click();
  return eventually(
    async () => {
      const now = await requestIdText();
      return now !== before && now;
    },
    WAIT,
    'the server-info panel to show a new request id',
  );
}

describe('playground in a browser', { timeout: 60_000 }, () => {
  it('renders the notes list from the server', async () => {
    await notesList().getByRole('listitem').first().waitFor();
    const items = await notesList().getByRole('listitem').allTextContents();
    expect(items.some((text) => text.includes('This list lives in the server process, not in the browser.'))).toBe(
      true,
    );
    expect(pageCalls).toContain('listNotes 200');
  });

  it('adds a note through the form', async () => {
    const text = `Water the plants ${randomUUID().slice(0, 6)}`;
    await noteInput().fill(text);
    await addButton().click();
    await notesList().getByText(text, { exact: true }).waitFor();
    // The list re-renders with the note before mutate() resolves and the form clears its input.
    await expect.poll(() => noteInput().inputValue(), { timeout: WAIT }).toBe('');
    // The note lives on the server: a plain RPC call sees it too.
    const listed = await rpc(dev.url, FEATURE, 'listNotes');
    expect((listed.body as { text: string }[]).map((n) => n.text)).toContain(text);
  });

  it('shows note stats computed by a query handler in an isolate, updated when a note is added', async () => {
    const stats = page.getByTestId('note-stats');
    await stats.waitFor();
    expect(await stats.textContent()).toMatch(
      /^\d+ notes, \d+ words, longest word “\S+” \(computed in an isolate: no process object there\)$/,
    );
    const before = Number(/^(\d+) notes/.exec((await stats.textContent()) ?? '')?.[1]);
    await noteInput().fill('Supercalifragilisticexpialidocious indeed');
    await addButton().click();
    await page.getByText(`${before + 1} notes`, { exact: false }).waitFor();
    expect(await stats.textContent()).toContain('longest word “Supercalifragilisticexpialidocious”');
    expect(pageCalls).toContain('noteStats 200');
  });

  it('shows the 422 error from the server when the text is empty', async () => {
    await noteInput().fill('   ');
    await addButton().click();
    const alert = page.getByRole('alert');
    await alert.waitFor();
    expect(await alert.textContent()).toMatch(/^422 Note text must not be empty \(request [0-9a-f]{8}\)$/);
    expect(pageCalls).toContain('addNote 422');
  });

  it('shows a real request id and what only the server knows in the server-info panel', async () => {
    await page.getByTestId('request-id').waitFor();
    const first = await requestIdText();
    expect(first).toMatch(UUID);
    expect((await page.getByTestId('node-version').textContent())?.trim()).toBe(process.version);
    const second = await refreshServerInfo();
    expect(second).toMatch(UUID);
    // The host issued both ids: they are in its record of recent calls.
    const admin = (await (await fetch(`${dev.url}/_admin`, { headers: { accept: 'application/json' } })).json()) as {
      calls: { requestId: string }[];
    };
    const known = admin.calls.map((c) => c.requestId);
    expect(known).toEqual(expect.arrayContaining([first, second]));
  });

  it('runs the edited server module on the next call, without a restart or a page reload', async () => {
    const message = page.getByTestId('server-message');
    expect((await message.textContent())?.trim()).toBe('Hello from server-info.server.ts');
    await page.evaluate(() => ((window as { __notReloaded?: boolean }).__notReloaded = true));

    await editFile(dir!, 'src/server-info.server.ts', (text) =>
      text.replace("'Hello from server-info.server.ts'", "'Edited while the server kept running'"),
    );
    // A save reaches the host through the file watcher; keep pressing Refresh like a person would.
    await eventually(
      async () => {
        await refreshServerInfo();
        return (await message.textContent())?.trim() === 'Edited while the server kept running';
      },
      WAIT,
      'the edited message after Refresh',
    );

    expect(await page.evaluate(() => (window as { __notReloaded?: boolean }).__notReloaded)).toBe(true);
    expect(dev.logs.filter((line) => /server restarted/i.test(line))).toEqual([]);
  });

  it('sends the browser a proxy for each server module, never its code', async () => {
    const notes = await moduleText('/src/notes.server.ts');
    expect(notes).toContain('createServerFunction');
    for (const serverOnly of ['Note text must not be empty', 'node:crypto', '__playgroundNotes', 'randomUUID']) {
      expect(notes).not.toContain(serverOnly);
      expect(inlineSourceMap(notes)).not.toContain(serverOnly);
    }
    const info = await moduleText('/src/server-info.server.ts');
    expect(info).toContain('createServerFunction');
    expect(info).not.toContain('process.uptime');
    expect(inlineSourceMap(info)).not.toContain('process.uptime');
  });

  it('prints one terminal line per call and raises no page errors', async () => {
    const printed = () =>
      dev.logs
        .map((line) => /rpc feature-playground\/(\w+) (\d{3})/.exec(line))
        .filter((m) => m !== null)
        .map((m) => `${m[1]} ${m[2]}`);
    await eventually(() => printed().length === pageCalls.length + 1, WAIT, 'one log line per call');
    // The extra line is the plain `rpc()` call of the "adds a note" test.
    expect(printed().sort()).toEqual([...pageCalls, 'listNotes 200'].sort());
    expect(pageErrors).toEqual([]);
  });
});

/** The module text the browser received for `pathname` (fetched by the page if not kept). */
async function moduleText(pathname: string): Promise<string> {
  const response = serverModuleResponses.get(pathname);
  expect(response, `the page loaded ${pathname}`).toBeDefined();
  const text = await response!.text().catch(() => null);
  return text ?? page.evaluate((url) => fetch(url).then((r) => r.text()), pathname);
}

/** The decoded inline source map of a served module, or '' when it has none. */
function inlineSourceMap(code: string): string {
  const base64 = /sourceMappingURL=data:application\/json;(?:charset=utf-8;)?base64,([A-Za-z0-9+/=]+)/.exec(code)?.[1];
  return base64 ? Buffer.from(base64, 'base64').toString('utf8') : '';
}
