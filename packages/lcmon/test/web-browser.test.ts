import path from 'node:path';
import { expect } from 'chai';
import type { Browser, Page } from 'playwright-core';
import { Context, Handler } from '@contexture/context';
import { amqpUrl, Cleanup, uniqueName } from '@contexture/test-support';
import { launchChromium, screenshotDir } from '@contexture/test-support/browser';
import { start, type Lcmon } from './helpers.js';

type Ctx = Context & Record<string, unknown>;

// The functions passed to page.evaluate run in the page; this project compiles without the DOM
// library, so what they touch is typed loosely here.
declare const document: any;
declare const window: any;
type El = any;

/** Starts `lcmon --web 127.0.0.1:0 ARGS` and resolves with it and the URL it printed. */
async function startWeb(args: string[]): Promise<{ l: Lcmon; url: string }> {
  const l = start(['--web', '127.0.0.1:0', ...args]);
  await l.until((x) => /web view on http:\/\/\S+/.test(x.stderr), 'the URL on stderr');
  const url = /web view on (http:\/\/\S+)/.exec(l.stderr)![1]!;
  return { l, url };
}

/** A row of the objects table, by object id (compared in the page: ids may hold any character). */
function rowState(page: Page, id: string) {
  return page.evaluate((id) => {
    const tr = [...document.querySelectorAll('#rows tr')].find((r: El) => r.dataset.id === id);
    if (tr === undefined) return undefined;
    return {
      hidden: tr.hidden,
      classes: [...tr.classList],
      cells: [...tr.children].map((td: El) => td.textContent),
    };
  }, id);
}

/** Polls the page until `check` holds (a generous deadline; fails with `what`). */
async function until<T>(page: Page, what: string, get: () => Promise<T>, check: (v: T) => boolean): Promise<T> {
  const deadline = Date.now() + 20_000;
  let last: T;
  for (;;) {
    last = await get();
    if (check(last)) return last;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}; last seen: ${JSON.stringify(last)}`);
    await page.waitForTimeout(50);
  }
}

describe('lcmon --web in a browser (chromium, RabbitMQ)', function () {
  this.timeout(90_000);
  const cleanup = new Cleanup();
  let browser: Browser;

  before(async () => {
    browser = await launchChromium();
  });
  after(() => browser?.close());
  afterEach(() => cleanup.run());

  async function setUp(args: string[] = []) {
    const exchange = cleanup.exchange(uniqueName('lcmon-web'));
    const { l, url } = await startWeb(['-e', exchange, ...args]);
    cleanup.defer(async () => {
      const r = await l.interrupt();
      expect(r.code, r.stderr).to.equal(0);
    });
    const handler = new Handler({ url: amqpUrl(), exchange, heartbeatInterval: 300, logger: null });
    cleanup.defer(() => handler.close());
    const page = await browser.newPage();
    cleanup.defer(() => page.close());
    const errors: string[] = [];
    page.on('pageerror', (e) => errors.push(e.message));
    page.on('dialog', (d) => {
      errors.push(`dialog: ${d.message()}`);
      void d.dismiss();
    });
    await page.goto(url);
    await until(
      page,
      'the page to connect',
      () => page.textContent('#link'),
      (t) => t === 'live',
    );
    return { page, handler, errors, url, l };
  }

  it('shows an object as it opens, updates its row in place with the changed fields highlighted, lists the handler, then fades it out when finished', async () => {
    const { page, handler, errors } = await setUp(['--web-fade', '1500']);
    const id = uniqueName('obj');
    const ctx = new Context({ name: 'web.handle', guid: id, context: { url: '/a', n: 0 }, handler }) as Ctx;
    await handler.flush();
    const first = await until(
      page,
      'the row',
      () => rowState(page, id),
      (r) => r !== undefined,
    );
    expect(first!.cells[0]).to.equal(id);
    expect(first!.cells[1]).to.equal('web.handle');
    expect(first!.cells[4]).to.equal('2');
    expect(first!.classes).to.not.include('finished');
    // Mark the row element: an update must change it, not replace it.
    await page.evaluate((id) => {
      const tr = [...document.querySelectorAll('#rows tr')].find((r: El) => r.dataset.id === id)!;
      tr.marked = true;
    }, id);
    await page.evaluate((id) => {
      const tr = [...document.querySelectorAll('#rows tr')].find((r: El) => r.dataset.id === id)!;
      tr.click();
    }, id);
    await until(
      page,
      'the detail pane',
      () => page.textContent('#d-id'),
      (t) => t === id,
    );

    ctx.n = 1;
    ctx.status_code = 200;
    await handler.flush();
    const updated = await until(
      page,
      'the update',
      () => rowState(page, id),
      (r) => r?.cells[4] === '3',
    );
    expect(updated!.cells[5]).to.equal('3');
    const inPlace = await page.evaluate(
      (id) =>
        [...document.querySelectorAll('#rows tr')]
          .filter((r: El) => r.dataset.id === id)
          .map((r: El) => r.marked === true),
      id,
    );
    expect(inPlace).to.deep.equal([true]);

    // The last message set status_code: it is highlighted, the other fields are not.
    const detail = await until(
      page,
      'the detail to show the last change',
      () =>
        page.evaluate(() => ({
          fields: [...document.querySelectorAll('#d-fields [data-key]')].map((e: El) => [
            e.dataset.key,
            e.classList.contains('changed'),
            e.textContent,
          ]),
          history: [...document.querySelectorAll('#d-history li')].map((li: El) => li.textContent),
        })),
      (d) => d.history.length === 3,
    );
    expect(detail.fields).to.deep.equal([
      ['url', false, 'url: "/a"'],
      ['n', false, 'n: 1'],
      ['status_code', true, 'status_code: 200'],
    ]);
    expect(detail.history[0]).to.match(/^#2 .* \{"status_code":200\}$/);
    expect(detail.history[2]).to.match(/^#0 .* born \{"url":"\/a","n":0\}$/);

    // The handler's heartbeats list it.
    const handlers = await until(
      page,
      'the handler in the heartbeat table',
      () => page.$$eval('#handler-rows tr', (rows) => rows.map((r) => [...r.children].map((td: El) => td.textContent))),
      (rows) => rows.some((r) => r[1] === handler.id),
    );
    expect(handlers.find((r) => r[1] === handler.id)![0]).to.equal('handler');
    await until(
      page,
      'counters',
      () => page.textContent('#c-open'),
      (t) => t === '1',
    );
    await page.screenshot({ path: path.join(screenshotDir(), 'lcmon-web.png') });

    ctx.finish();
    await handler.flush();
    const finished = await until(
      page,
      'the row to finish',
      () => rowState(page, id),
      (r) => r?.classes.includes('finished') === true,
    );
    expect(finished!.classes).to.not.include('incomplete');
    // Faded out and removed after --web-fade.
    await until(
      page,
      'the row to go',
      () => rowState(page, id),
      (r) => r === undefined,
    );
    expect(await page.textContent('#c-open')).to.equal('0');
    expect(errors).to.deep.equal([]);
  });

  it('filters by routing key glob, id substring and field presence or value', async () => {
    const { page, handler } = await setUp();
    const tag = uniqueName('f');
    const ids = { a: `${tag}-alpha`, b: `${tag}-beta`, c: `${tag}-gamma` };
    new Context({ name: 'web.login', guid: ids.a, context: { user: 'ann' }, handler });
    new Context({ name: 'api.call', guid: ids.b, context: { path: '/x' }, handler });
    new Context({ name: 'web.logout', guid: ids.c, context: { user: 'bob' }, handler });
    await handler.flush();
    const visible = () =>
      page.$$eval('#rows tr', (rows) =>
        (rows as El[])
          .filter((r) => !r.hidden)
          .map((r: El) => r.dataset.id!)
          .sort(),
      );
    await until(page, 'three rows', visible, (v) => v.length === 3);

    await page.fill('#f-rkey', 'web.*');
    expect(await visible()).to.deep.equal([ids.a, ids.c]);
    await page.fill('#f-rkey', '');
    await page.fill('#f-id', 'beta');
    expect(await visible()).to.deep.equal([ids.b]);
    await page.fill('#f-id', '');
    await page.fill('#f-field', 'user');
    expect(await visible()).to.deep.equal([ids.a, ids.c]);
    await page.fill('#f-field', 'user=bob');
    expect(await visible()).to.deep.equal([ids.c]);
    expect(await page.textContent('#shown')).to.equal('1 of 3 shown');
    // A later object is filtered as it arrives.
    const late = `${tag}-delta`;
    new Context({ name: 'web.x', guid: late, context: { user: 'bob' }, handler });
    await handler.flush();
    await until(page, 'the late object', visible, (v) => v.length === 2);
    expect(await visible()).to.deep.equal([ids.c, late].sort());
    await page.fill('#f-field', '');
    expect((await visible()).length).to.equal(4);
  });

  it('shows hostile ids, routing keys, field names and values as text, running nothing', async () => {
    const { page, handler, errors } = await setUp();
    const id = `<img src=x onerror="window.pwned=1">\u0007\u001b[31m${uniqueName('h')}`;
    const key = '<script>window.pwned=2</script>';
    const value = '<b onmouseover="window.pwned=3">x</b>\u202e\u0000';
    const ctx = new Context({ name: 'web.<script>window.pwned=4</script>', guid: id, handler }) as Ctx;
    ctx.update({ [key]: value, nested: { '<img src=y onerror=window.pwned=5>': '<svg onload=window.pwned=6>' } });
    await handler.flush();
    const shownId = id.replace('\u0007', '\\u0007').replace('\u001b', '\\u001b');
    const row = await until(
      page,
      'the hostile row',
      () => page.$$eval('#rows tr', (rows) => rows.map((r) => [...r.children].map((td: El) => td.textContent))),
      (rows) => rows.some((r) => r[0] === shownId),
    );
    expect(row.find((r) => r[0] === shownId)![1]).to.equal('web.<script>window.pwned=4</script>');
    await page.click('#rows tr');
    const fields = await until(
      page,
      'the hostile detail',
      () => page.$$eval('#d-fields [data-key]', (els) => els.map((e) => e.textContent)),
      (f) => f.length >= 3,
    );
    expect(fields[0]).to.equal(`${key}: "<b onmouseover=\\"window.pwned=3\\">x</b>\\u202e\\u0000"`);
    expect(fields).to.include('<img src=y onerror=window.pwned=5>: "<svg onload=window.pwned=6>"');
    await page.hover('#d-fields');
    const planted = await page.evaluate(() => ({
      pwned: window.pwned ?? null,
      elements: document.querySelectorAll('main img, main script, main svg, main iframe, #d-fields b').length,
    }));
    expect(planted).to.deep.equal({ pwned: null, elements: 0 });
    expect(errors).to.deep.equal([]);
  });
  it('pauses and resumes, flashes a transient object, and draws the newest 500 objects (the filter finds the others)', async () => {
    const { page, handler, errors } = await setUp(['--web-fade', '1500']);
    const tag = uniqueName('p');
    const id = `${tag}-watched`;
    const ctx = new Context({ name: 'web.pause', guid: id, context: { n: 0 }, handler }) as Ctx;
    await handler.flush();
    await until(
      page,
      'the row',
      () => rowState(page, id),
      (r) => r?.cells[5] === '1',
    );
    await page.click('#pause');
    expect(await page.textContent('#pause')).to.equal('Resume');
    ctx.n = 1;
    await handler.flush();
    // The server has the change; the paused page does not draw it.
    await until(
      page,
      'the server to fold the update',
      () =>
        page.evaluate(
          async (id) =>
            ((await (await fetch(`/api/object?id=${encodeURIComponent(id)}`)).json()) as { messages: number }).messages,
          id,
        ),
      (n) => n === 2,
    );
    await page.waitForTimeout(300);
    expect((await rowState(page, id))!.cells[5]).to.equal('1');
    await page.click('#pause');
    await until(
      page,
      'the update after resuming',
      () => rowState(page, id),
      (r) => r?.cells[5] === '2',
    );

    const transient = `${tag}-transient`;
    new Context({ name: 'web.ping', guid: transient, transient: true, context: { up: true }, handler });
    await handler.flush();
    const flashed = await until(
      page,
      'the transient row',
      () => rowState(page, transient),
      (r) => r !== undefined,
    );
    expect(flashed!.classes).to.include.members(['transient', 'finished']);
    await until(
      page,
      'the transient row to go',
      () => rowState(page, transient),
      (r) => r === undefined,
    );

    const many = Array.from({ length: 520 }, (_, i) => `${tag}-m${String(i).padStart(3, '0')}`);
    for (const m of many) new Context({ name: 'web.many', guid: m, context: { i: m }, handler });
    await handler.flush();
    const shown = await until(
      page,
      'the 520 objects',
      () => page.textContent('#shown'),
      (t) => t?.startsWith('500 of 521 shown') === true,
    );
    expect(shown).to.include('the newest 500 drawn');
    const rows = await page.$$eval('#rows tr', (trs) => trs.map((r: El) => r.dataset.id));
    expect(rows).to.have.length(500);
    expect(rows[0]).to.equal(many[519]);
    expect(rows).to.not.include(id);
    await page.fill('#f-id', 'watched');
    expect(await page.$$eval('#rows tr', (trs) => trs.map((r: El) => r.dataset.id))).to.deep.equal([id]);
    expect(errors).to.deep.equal([]);
  });
});
