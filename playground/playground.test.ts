/**
 * The playground in a real browser: a copy of `playground/` runs on the real Vite dev server (its
 * notes in a fresh PGlite database) and headless Chromium uses the page the way people would: two
 * windows, signed in as two dev users, each seeing the other's writes without a reload.
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

/** Copies the playground (without this test and its dev database) to a scratch folder inside the repo. */
async function copyPlayground(): Promise<string> {
  const work = path.join(REPO_ROOT, 'fixtures', '.work');
  const dir = path.join(work, `playground-${randomUUID().slice(0, 8)}`);
  await mkdir(work, { recursive: true });
  const source = path.join(REPO_ROOT, 'playground');
  await cp(source, dir, {
    recursive: true,
    filter: (src) => !src.endsWith('.test.ts') && !path.relative(source, src).startsWith('.favn'),
  });
  return dir;
}

/** One browser window and what it did. */
interface Window {
  page: Page;
  /** Every RPC call the page made, as `fnName status`. */
  calls: string[];
  errors: string[];
}

let dir: string | undefined;
let dev: DevServer;
let browser: Browser;
/** Ann's window: a new tab starts as the first dev user. */
let ann: Window;
/** Bob's window, in a browser context of its own. */
let bob: Window;
/** The modules the browser received for `*.server.ts` imports, by path. */
const serverModuleResponses = new Map<string, Response>();

async function openWindow(): Promise<Window> {
  const context = await browser.newContext();
  const page = await context.newPage();
  page.setDefaultTimeout(WAIT);
  const window: Window = { page, calls: [], errors: [] };
  page.on('pageerror', (error) => window.errors.push(error.message));
  page.on('response', (response) => {
    const { pathname } = new URL(response.url());
    if (pathname.startsWith(`/rpc/${FEATURE}/`)) window.calls.push(`${pathname.split('/').pop()} ${response.status()}`);
    if (pathname.endsWith('.server.ts')) serverModuleResponses.set(pathname, response);
  });
  await page.goto(dev.url);
  return window;
}

beforeAll(async () => {
  dir = await copyPlayground();
  dev = await startDev(dir);
  browser = await chromium.launch({ executablePath: '/usr/bin/chromium', args: CHROMIUM_ARGS });
  ann = await openWindow();
  bob = await openWindow();
}, 90_000);

afterEach(async (context) => {
  if (context.task.result?.state === 'fail') {
    for (const [name, window] of Object.entries({ ann, bob })) {
      await window?.page
        .screenshot({ path: path.join(REPO_ROOT, 'test-results', `playground-failure-${name}.png`), fullPage: true })
        .catch(() => {});
    }
  }
});

afterAll(async () => {
  await browser?.close();
  await dev?.close();
  if (dir) await removeFixture(dir);
});

const section = (w: Window, title: string) => w.page.getByRole('region', { name: title });
const notesList = (w: Window) => w.page.getByRole('list', { name: 'Notes' });
const note = (w: Window, text: string) => notesList(w).getByRole('listitem').filter({ hasText: text });
const noteInput = (w: Window) => w.page.getByLabel('New note', { exact: true });
const statsText = async (w: Window) => ((await w.page.getByTestId('note-stats').textContent()) ?? '').trim();
const requestIdText = async (w: Window) => ((await w.page.getByTestId('request-id').textContent()) ?? '').trim();
const userShown = async (w: Window) =>
  ((await section(w, 'Server info').getByRole('definition').nth(2).textContent()) ?? '').trim();

/** Types a note and presses "Add note", as a person would. */
async function addNote(w: Window, text: string): Promise<void> {
  await noteInput(w).fill(text);
  await w.page.getByRole('button', { name: 'Add note' }).click();
}

/** Marks the page, so a later check can tell it was not reloaded since. */
async function markNotReloaded(w: Window): Promise<void> {
  await w.page.evaluate(() => ((window as { __notReloaded?: boolean }).__notReloaded = true));
}

async function notReloaded(w: Window): Promise<boolean | undefined> {
  return w.page.evaluate(() => (window as { __notReloaded?: boolean }).__notReloaded);
}

/** Clicks Refresh in the server-info panel and waits until a new answer is shown. */
async function refreshServerInfo(w: Window): Promise<string> {
  const before = await requestIdText(w);
  await w.page.getByRole('button', { name: 'Refresh' }).click();
  return eventually(
    async () => {
      const now = await requestIdText(w);
      return now !== before && now;
    },
    WAIT,
    'the server-info panel to show a new request id',
  );
}

describe('playground in two browser windows', { timeout: 60_000 }, () => {
  it('starts with an empty notes table, its queries live and the plain function answered once', async () => {
    await ann.page.getByText('No notes yet.').waitFor();
    await section(ann, 'Notes').getByText('Live', { exact: true }).waitFor();
    await section(ann, 'Note stats').getByText('Live', { exact: true }).waitFor();
    expect(await statsText(ann)).toBe(
      '0 notes by 0 people, 0 words, longest word “” (computed in an isolate: no process object there)',
    );
    // serverInfo reads no table: nothing could change its answer, so it is not live.
    await section(ann, 'Server info').getByText('Not live', { exact: true }).waitFor();
    expect(ann.calls).toEqual(expect.arrayContaining(['listNotes 200', 'noteStats 200', 'serverInfo 200']));
  });

  it('switches the dev user of a window with the user switcher', async () => {
    await expect.poll(() => userShown(bob), { timeout: WAIT }).toBe('ann');
    await bob.page.getByLabel('Signed in as').selectOption('bob');
    // The page starts again as bob: every call and the push stream carry the new identity.
    await expect.poll(() => userShown(bob), { timeout: WAIT }).toBe('bob');
    expect(await bob.page.getByLabel('Signed in as').inputValue()).toBe('bob');
    await section(bob, 'Notes').getByText('Live', { exact: true }).waitFor();
    expect(await userShown(ann)).toBe('ann');
  });

  it('adds a note through the mutation handler and shows it in the other window without a reload', async () => {
    await markNotReloaded(bob);
    const bobCalls = bob.calls.length;
    const text = `Water the plants ${randomUUID().slice(0, 6)}`;
    await addNote(ann, text);
    await note(ann, text).waitFor();
    // The list shows the note before mutate() resolves and the form clears its input.
    await expect.poll(() => noteInput(ann).inputValue(), { timeout: WAIT }).toBe('');

    await note(bob, text).waitFor();
    expect(await note(bob, text).textContent()).toContain('ann');
    // Only its author may delete it: bob's window offers no Delete for ann's note, ann's does.
    expect(await note(bob, text).getByRole('button', { name: 'Delete' }).count()).toBe(0);
    expect(await note(ann, text).getByRole('button', { name: 'Delete' }).count()).toBe(1);
    expect(await notReloaded(bob)).toBe(true);
    // Bob's window asked nothing: the host pushed the new list over its stream.
    expect(bob.calls.slice(bobCalls)).toEqual([]);
    // The note is in the database: a plain call sees it too.
    const listed = await rpc(dev.url, FEATURE, 'listNotes', [{}]);
    expect((listed.body as { rows: { text: string; author: string }[] }).rows).toEqual([
      expect.objectContaining({ text, author: 'ann' }),
    ]);
  });

  it("updates the query handler's stats in both windows when the other user adds a note", async () => {
    await expect.poll(() => statsText(ann), { timeout: WAIT }).toMatch(/^1 notes by 1 person, 4 words, /);
    await addNote(bob, 'Supercalifragilisticexpialidocious indeed');
    await note(ann, 'Supercalifragilisticexpialidocious indeed').waitFor();
    for (const w of [ann, bob]) {
      await expect
        .poll(() => statsText(w), { timeout: WAIT })
        .toBe(
          '2 notes by 2 people, 6 words, longest word “Supercalifragilisticexpialidocious”' +
            ' (computed in an isolate: no process object there)',
        );
    }
  });

  it('removes a note deleted in one window from the other without a reload', async () => {
    await markNotReloaded(ann);
    const text = 'Supercalifragilisticexpialidocious indeed';
    await note(bob, text).getByRole('button', { name: 'Delete' }).click();
    await note(bob, text).waitFor({ state: 'detached' });
    await note(ann, text).waitFor({ state: 'detached' });
    await expect.poll(() => statsText(ann), { timeout: WAIT }).toMatch(/^1 notes by 1 person, /);
    expect(await notReloaded(ann)).toBe(true);
    await section(ann, 'Notes').getByText('Live', { exact: true }).waitFor();
    expect(bob.calls).toContain('deleteNote 200');
  });

  it('shows the 422 error from the mutation handler when the text is empty', async () => {
    await addNote(ann, '   ');
    const alert = ann.page.getByRole('alert');
    await alert.waitFor();
    expect(await alert.textContent()).toMatch(/^422 Note text must not be empty \(request [0-9a-f]{8}\)$/);
    expect(ann.calls).toContain('addNote 422');
  });

  it('shows a real request id and what only the server knows in the server-info panel', async () => {
    await ann.page.getByTestId('request-id').waitFor();
    const first = await requestIdText(ann);
    expect(first).toMatch(UUID);
    expect((await ann.page.getByTestId('node-version').textContent())?.trim()).toBe(process.version);
    const second = await refreshServerInfo(ann);
    expect(second).toMatch(UUID);
    // The host issued both ids: they are in its record of recent calls.
    const admin = (await (await fetch(`${dev.url}/_admin`, { headers: { accept: 'application/json' } })).json()) as {
      calls: { requestId: string }[];
    };
    const known = admin.calls.map((c) => c.requestId);
    expect(known).toEqual(expect.arrayContaining([first, second]));
  });

  it('runs the edited server module on the next call, without a restart or a page reload', async () => {
    const message = ann.page.getByTestId('server-message');
    expect((await message.textContent())?.trim()).toBe('Hello from server-info.server.ts');
    await markNotReloaded(ann);

    await editFile(dir!, 'src/server-info.server.ts', (text) =>
      text.replace("'Hello from server-info.server.ts'", "'Edited while the server kept running'"),
    );
    // A save reaches the host through the file watcher; keep pressing Refresh like a person would.
    await eventually(
      async () => {
        await refreshServerInfo(ann);
        return (await message.textContent())?.trim() === 'Edited while the server kept running';
      },
      WAIT,
      'the edited message after Refresh',
    );

    expect(await notReloaded(ann)).toBe(true);
    expect(dev.logs.filter((line) => /server restarted/i.test(line))).toEqual([]);
  });

  it('refuses a note from an anonymous window with the handler message', async () => {
    await bob.page.getByLabel('Signed in as').selectOption('');
    await expect.poll(() => userShown(bob), { timeout: WAIT }).toBe('anonymous');
    await addNote(bob, 'Who am I?');
    const alert = bob.page.getByRole('alert');
    await alert.waitFor();
    expect(await alert.textContent()).toMatch(/^401 Pick a user to add notes \(request [0-9a-f]{8}\)$/);
    expect(await note(ann, 'Who am I?').count()).toBe(0);
  });

  it('sends the browser a proxy for each server module, never its code', async () => {
    const notes = await moduleText(ann.page, '/src/notes.server.ts');
    expect(notes).toContain('createServerFunction');
    for (const serverOnly of ['Note text must not be empty', 'Pick a user', 'ctx.db', 'auth.userId', 'sandboxed']) {
      expect(notes).not.toContain(serverOnly);
      expect(inlineSourceMap(notes)).not.toContain(serverOnly);
    }
    const info = await moduleText(ann.page, '/src/server-info.server.ts');
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
    const pageCalls = () => [...ann.calls, ...bob.calls];
    // Pushed results are not calls: only the pages' own calls, and the plain `rpc()` one above, print.
    await eventually(() => printed().length === pageCalls().length + 1, WAIT, 'one log line per call');
    expect(printed().sort()).toEqual([...pageCalls(), 'listNotes 200'].sort());
    expect([...ann.errors, ...bob.errors]).toEqual([]);
  });
});

/** The module text the browser received for `pathname` (fetched by the page if not kept). */
async function moduleText(page: Page, pathname: string): Promise<string> {
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
