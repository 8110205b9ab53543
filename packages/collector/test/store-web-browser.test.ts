import path from 'node:path';
import { expect } from 'chai';
import type { Browser, Page } from 'playwright-core';
import { Cleanup, redisUrl, uniqueName } from '@contexture/test-support';
import { launchChromium, screenshotDir } from '@contexture/test-support/browser';
import { StoreWebServer } from '../src/daemon/store-web.js';
import { RedisContextStore } from '../src/store/index.js';

// The functions passed to page.evaluate run in the page; this project compiles without the DOM
// library, so what they touch is typed loosely here.
declare const document: any;
declare const window: any;
type El = any;

/** Markup and script in an id, a field name and a value: they must show as text and run nothing. */
const HOSTILE_ID = '<img src=x onerror="window.__pwned=1">\u0007';
const HOSTILE_KEY = '<script>window.__pwned=2</script>';
const HOSTILE_VALUE = '<img src=y onerror="window.__pwned=3">\u001b[31m\u202e';

/** What the page shows for a text with control characters: each as \uXXXX. */
const visible = (s: string) =>
  s.replace(/[\u0000-\u001f\u007f-\u009f\u202e]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);

/** Polls the page until `check` holds (a generous deadline; fails with `what` and what it saw last). */
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

/** The ids of the list's rows, in order. */
const rowIds = (page: Page) =>
  page.evaluate(() => [...document.querySelectorAll('#rows tr')].map((tr: El) => tr.dataset.id as string));

/** Clicks the row of `id` (found in the page: ids may hold any character). */
async function clickRow(page: Page, id: string): Promise<void> {
  const found = await page.evaluate((id) => {
    const tr = [...document.querySelectorAll('#rows tr')].find((r: El) => r.dataset.id === id);
    tr?.click();
    return tr !== undefined;
  }, id);
  expect(found, `a row for ${JSON.stringify(id)}`).to.equal(true);
}

/** What the detail pane shows. */
const detail = (page: Page) =>
  page.evaluate(() => {
    const body = document.getElementById('detail-body');
    return {
      hidden: body.hidden as boolean,
      live: body.dataset.live as string | undefined,
      version: body.dataset.version as string | undefined,
      id: document.getElementById('d-id').textContent as string,
      fields: [...document.querySelectorAll('#d-fields .row, #d-fields summary')].map(
        (e: El) => e.textContent as string,
      ),
      changed: [...document.querySelectorAll('#d-fields .changed')].map((e: El) => e.dataset.key as string),
      history: [...document.querySelectorAll('#d-history li')].map((li: El) => ({
        version: li.dataset.version as string,
        text: li.textContent as string,
      })),
    };
  });

describe('contexture-store web in a browser (chromium, Redis)', function () {
  this.timeout(90_000);
  const cleanup = new Cleanup();
  let browser: Browser;

  before(async () => {
    browser = await launchChromium();
  });
  after(() => browser?.close());
  afterEach(() => cleanup.run());

  async function setUp() {
    const prefix = `${uniqueName('store-web-page')}:`;
    cleanup.redisKeys(`${prefix}*`);
    // One store behind the page, another writing, as a collector would.
    const served = new RedisContextStore({ redis: redisUrl(), prefix });
    const store = new RedisContextStore({ redis: redisUrl(), prefix });
    cleanup.defer(() => Promise.all([served.close(), store.close()]));
    const server = new StoreWebServer({ store: served, host: '127.0.0.1', port: 0, source: `test ${prefix}` });
    const url = await server.listen();
    cleanup.defer(() => server.close());
    const page = await browser.newPage();
    cleanup.defer(() => page.close());
    const errors: string[] = [];
    page.on('pageerror', (e) => errors.push(e.message));
    page.on('dialog', (d) => {
      errors.push(`dialog: ${d.message()}`);
      void d.dismiss();
    });
    return { store, url, page, errors };
  }

  it('lists the contexts, shows a selected one with its history, highlights a live change, and filters', async () => {
    const { store, url, page, errors } = await setUp();
    const t = 1_700_000_000;
    await store.applyMany(
      [
        { obj_id: 'order-1', obj: { n: 1, cart: { items: 1, total: 5 } }, status: 'born', seq: 0, time_in: t },
        { obj_id: 'order-1', obj: { user: 'ann' }, seq: 1, time_in: t + 1 },
        { obj_id: 'ping-1', obj: { once: true }, status: 'transient', seq: 0, time_in: t },
      ].map((message) => ({
        message: message as never,
        meta: { rkey: message.obj_id === 'ping-1' ? 'web.ping' : 'web.order', headers: {} },
      })),
    );
    await store.set('order-2', { n: 2 });
    await page.goto(url);
    await until(
      page,
      'the three contexts in the list',
      () => rowIds(page),
      (ids) => ids.length === 3,
    );
    expect((await rowIds(page)).sort()).to.deep.equal(['order-1', 'order-2', 'ping-1']);
    const cells = await page.evaluate(() =>
      [...document.querySelectorAll('#rows tr')]
        .find((r: El) => r.dataset.id === 'order-1')
        .querySelectorAll('td')
        .values()
        .map((td: El) => td.textContent as string)
        .toArray(),
    );
    expect(cells.slice(0, 4)).to.deep.equal(['order-1', 'born', '2', 'web.order']);
    expect(cells[4]).to.not.equal('');

    await clickRow(page, 'order-1');
    const first = await until(
      page,
      'order-1 in the detail pane, followed live',
      () => detail(page),
      (d) => !d.hidden && d.live === 'yes' && d.version === '2',
    );
    expect(first.id).to.equal('order-1');
    expect(first.fields).to.include.members(['n: 1', 'user: "ann"', 'items: 1', 'total: 5']);
    expect(first.changed).to.deep.equal([]);
    expect(first.history.map((h) => h.version)).to.deep.equal(['2', '1']);
    expect(first.history[0]!.text).to.include('+ user: "ann"');
    expect(first.history[1]!.text).to.include('+ cart: {"items":1,"total":5}');

    // A change through the store while it is selected: drawn, its fields highlighted.
    await store.update('order-1', { n: 2, cart: { total: 7 }, note: 'new' });
    const changed = await until(
      page,
      'version 3 with its changes highlighted',
      () => detail(page),
      (d) => d.version === '3',
    );
    expect(changed.fields).to.include.members(['n: 2', 'note: "new"', 'total: 7', 'items: 1']);
    expect(changed.changed.sort()).to.deep.equal(['cart', 'n', 'note', 'total']);
    // Highlighted to the eye, not only by class: the changed field's row is painted, the other not.
    const paint = await page.evaluate(() => {
      const bg = (key: string) =>
        window.getComputedStyle([...document.querySelectorAll('#d-fields .row')].find((r: El) => r.dataset.key === key))
          .backgroundColor as string;
      return { n: bg('n'), user: bg('user') };
    });
    expect(paint.n).to.not.equal(paint.user);
    expect(changed.history[0]!.version).to.equal('3');
    expect(changed.history[0]!.text).to.include('~ n: 1 → 2');
    expect(changed.history[0]!.text).to.include('~ cart.total: 5 → 7');
    expect(changed.history[0]!.text).to.include('+ note: "new"');
    const row = await page.evaluate(
      () =>
        [...document.querySelectorAll('#rows tr')].find((r: El) => r.dataset.id === 'order-1').children[2].textContent,
    );
    expect(row).to.equal('3');
    await page.screenshot({ path: path.join(screenshotDir(), 'contexture-store-web.png') });

    // A removed field shows struck through, highlighted.
    await store.assign('order-1', {}, ['user']);
    const removed = await until(
      page,
      'version 4',
      () => detail(page),
      (d) => d.version === '4',
    );
    expect(removed.changed).to.deep.equal(['user']);
    expect(removed.history[0]!.text).to.include('- user: "ann"');

    // The filter: a substring of the routing key, then a status.
    await page.fill('#f-text', 'web.ping');
    await until(
      page,
      'only ping-1',
      () => rowIds(page),
      (ids) => ids.length === 1 && ids[0] === 'ping-1',
    );
    await page.fill('#f-text', '');
    await page.selectOption('#f-status', 'none');
    await until(
      page,
      'only order-2 (no status)',
      () => rowIds(page),
      (ids) => ids.length === 1 && ids[0] === 'order-2',
    );
    expect(errors).to.deep.equal([]);
  });

  it("highlights only what changed when fields are named like Object.prototype's keys", async () => {
    const { store, url, page, errors } = await setUp();
    const id = 'proto-names';
    // JSON.parse makes `__proto__` an own key, as the store keeps it.
    await store.set(id, JSON.parse('{"__proto__":{"a":1},"toString":1,"constructor":2,"hasOwnProperty":3,"n":1}'));
    await page.goto(url);
    await until(
      page,
      'the context in the list',
      () => rowIds(page),
      (ids) => ids.includes(id),
    );
    await clickRow(page, id);
    const shown = await until(
      page,
      'the context in the detail pane, followed live',
      () => detail(page),
      (d) => !d.hidden && d.live === 'yes' && d.version === '1',
    );
    expect(shown.fields).to.include.members(['a: 1', 'toString: 1', 'constructor: 2', 'hasOwnProperty: 3', 'n: 1']);
    await store.update(id, { n: 2 });
    const changed = await until(
      page,
      'version 2',
      () => detail(page),
      (d) => d.version === '2',
    );
    expect(changed.changed).to.deep.equal(['n']);
    await store.update(id, JSON.parse('{"__proto__":{"a":2}}'));
    const nested = await until(
      page,
      'version 3',
      () => detail(page),
      (d) => d.version === '3',
    );
    expect(nested.changed.sort()).to.deep.equal(['__proto__', 'a']);
    expect(nested.fields).to.include('a: 2');
    expect(nested.history[0]!.text).to.include('~ __proto__.a: 1 → 2');
    expect(errors).to.deep.equal([]);
  });

  it('shows a hostile id, field name and value as text and runs nothing', async () => {
    const { store, url, page, errors } = await setUp();
    await store.set(HOSTILE_ID, { [HOSTILE_KEY]: HOSTILE_VALUE, nested: { [HOSTILE_KEY]: 1 } });
    await page.goto(url);
    await until(
      page,
      'the hostile context in the list',
      () => rowIds(page),
      (ids) => ids.includes(HOSTILE_ID),
    );
    await clickRow(page, HOSTILE_ID);
    const shown = await until(
      page,
      'the hostile context in the detail pane, followed live',
      () => detail(page),
      (d) => !d.hidden && d.live === 'yes' && d.version === '1',
    );
    expect(shown.id).to.equal(visible(HOSTILE_ID));
    expect(shown.fields).to.include(`${HOSTILE_KEY}: ${visible(JSON.stringify(HOSTILE_VALUE))}`);
    // A live change of the hostile field is drawn as text too.
    await store.assign(HOSTILE_ID, { [HOSTILE_KEY]: `${HOSTILE_VALUE}!` });
    const changed = await until(
      page,
      'version 2',
      () => detail(page),
      (d) => d.version === '2',
    );
    expect(changed.changed).to.deep.equal([HOSTILE_KEY]);
    expect(changed.history[0]!.text).to.include(`~ ${HOSTILE_KEY}: `);
    const dom = await page.evaluate(() => ({
      pwned: window.__pwned,
      imgs: document.querySelectorAll('img').length,
      scripts: document.querySelectorAll('script').length,
      rowText: [...document.querySelectorAll('#rows td.id')].map((td: El) => td.textContent),
    }));
    expect(dom).to.deep.equal({ pwned: undefined, imgs: 0, scripts: 1, rowText: [visible(HOSTILE_ID)] });
    expect(errors).to.deep.equal([]);
  });
});
