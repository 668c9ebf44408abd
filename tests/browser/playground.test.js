// Drives the playground page of `handover serve` in headless Chromium (scripts/browser-test.sh
// starts the service). Every check reads what the page shows.
'use strict';

const assert = require('node:assert/strict');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { chromium } = require('playwright-core');

const URL = process.env.PLAYGROUND_URL;
const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
const SCREENSHOT = process.env.SCREENSHOT;
const WAIT = 10000;

if (!URL) {
  console.error('PLAYGROUND_URL is not set: run this through scripts/browser-test.sh (make browser-test)');
  process.exit(1);
}
if (!fs.existsSync(CHROMIUM)) {
  console.error(`${CHROMIUM} is missing: run scripts/setup-browser.sh (as root it installs Debian's chromium)`);
  process.exit(1);
}

/** Waits until `locator` has an element whose text contains `text`. */
async function see(locator, text, timeout = WAIT) {
  try {
    await locator.filter({ hasText: text }).first().waitFor({ timeout });
  } catch (e) {
    const shown = await locator.allInnerTexts().catch(() => []);
    throw new Error(`expected to see ${JSON.stringify(text)}; the page shows: ${JSON.stringify(shown.slice(-6))}`);
  }
}

function step(name) {
  console.log(`  - ${name}`);
}

async function main() {
  const started = Date.now();
  const userDataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'handover-chromium-'));
  const context = await chromium.launchPersistentContext(userDataDir, {
    executablePath: CHROMIUM,
    headless: true,
    args: [
      '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync',
    ],
    viewport: { width: 1500, height: 1000 },
  });
  try {
    const page = context.pages()[0] || (await context.newPage());
    const problems = [];
    page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
    const polls = [];
    page.on('request', (r) => { if (r.method() === 'GET' && r.url().includes('/playground/api/')) polls.push(r.url()); });

    await page.goto(URL);
    await page.locator('#live.on').waitFor({ timeout: WAIT });
    const chat = page.locator('article.session').first();
    const say = async (c, text) => {
      await c.locator('form.say input').fill(text);
      await c.locator('form.say button').click();
    };

    step('the user talks to the bot');
    await say(chat, 'Hello');
    await see(chat.locator('.msg.bot'), 'I am the demo bot');
    await see(chat.locator('.state'), 'bot');

    step('the user asks for an agent: the opened dialog, state waiting');
    await say(chat, 'Can I talk to an agent?');
    await see(chat.locator('.msg.dialog'), 'Please wait a couple of minutes while an agent joins this chat.');
    await see(chat.locator('.msg.dialog .note'), 'opened');
    await see(chat.locator('.state'), 'waiting');
    await see(chat.locator('.facts dd'), 'explicit_request');
    await see(chat.locator('.events li'), 'conversation.started');

    step('while waiting the bot keeps answering');
    await say(chat, 'Where is my parcel?');
    await see(chat.locator('.msg.bot'), 'Parcel A-1 left our warehouse');
    await see(chat.locator('.state'), 'waiting');

    const card = page.locator('#desk article.conversation').first();
    step('the desk shows the conversation with queue, trigger, variables and transcript');
    await see(card.locator('.meta dd'), 'general');
    await see(card.locator('.meta dd'), 'explicit_request');
    await see(card.locator('.meta dd'), 'orderId=A-1');
    await see(card.locator('.messages .handed'), 'Hello');
    await see(card.locator('.messages .live'), 'Where is my parcel?');

    step('the agent joins');
    await card.locator('button.join').click();
    await see(chat.locator('.msg.dialog'), 'Eva joined the chat.');
    await see(chat.locator('.state'), 'agent');
    await see(card.locator('.status'), 'joined');

    step('messages both ways; the agent types; the bot stays silent');
    await card.locator('form.reply input').pressSequentially('Hi Ann, ');
    await see(chat.locator('.typing'), 'Eva is typing');
    await card.locator('form.reply input').pressSequentially('Eva here. Let me check A-1.');
    await card.locator('form.reply button').click();
    await see(chat.locator('.msg.agent'), 'Hi Ann, Eva here. Let me check A-1.');
    const botTurns = await chat.locator('.msg.bot').count();
    await say(chat, 'Thanks Eva, it was due yesterday');
    await see(card.locator('.messages .live'), 'Thanks Eva, it was due yesterday');
    await see(chat.locator('.events li'), 'control=agent');
    assert.equal(await chat.locator('.msg.bot').count(), botTurns, 'the bot must be silent while the agent has the chat');

    step('the agent closes: the end reason shows and the bot answers again');
    await card.locator('button.close').click();
    await see(chat.locator('.msg.dialog .note'), 'handover ended: agent_closed');
    await see(chat.locator('.state'), 'bot');
    await see(chat.locator('.facts dd'), 'agent_closed');
    await see(card.locator('.status'), 'closed');
    await say(chat, 'Where is my parcel now?');
    await page.waitForFunction(
      () => [...document.querySelectorAll('article.session')[0].querySelectorAll('.msg.bot')]
        .filter((m) => m.textContent.includes('Parcel A-1')).length === 2,
      null, { timeout: WAIT },
    );

    step('a second chat side by side; the kill switch shows the disabled dialog');
    await page.locator('#new-chat').click();
    const second = page.locator('article.session').nth(1);
    await second.waitFor({ timeout: WAIT });
    await page.locator('#kill-reason').fill('Incident in the contact center');
    await page.locator('#kill-on').check();
    await see(page.locator('#operator-status'), 'kill switch on: applied');
    await see(page.locator('#kill-state'), 'on: Incident in the contact center');
    await say(second, 'I want to speak to a human');
    await see(second.locator('.msg.dialog'), 'Our live chat is temporarily unavailable.');
    await see(second.locator('.msg.dialog .note'), 'disabled: kill_switch');
    await see(second.locator('.state'), 'bot');
    await page.locator('#kill-on').uncheck();
    await see(page.locator('#operator-status'), 'kill switch off: applied');

    step('closed hours: the preview, then the closed dialog with the next opening');
    const hour = (new Date().getUTCHours() + 12) % 24;
    const hh = String(hour).padStart(2, '0');
    await page.locator('#hours-tz').fill('UTC');
    await page.locator('#hours-expr').fill(`Mo-Su ${hh}:00-${hh}:30`);
    await see(page.locator('#hours-preview'), 'Closed now');
    await see(page.locator('#hours-preview'), `at ${hh}:00`);
    await page.locator('#hours-apply').click();
    await see(page.locator('#operator-status'), 'opening hours: applied');
    await say(second, 'Request live agent');
    await see(second.locator('.msg.dialog'), 'Our agents are offline right now. We are back');
    await see(second.locator('.msg.dialog'), `at ${hh}:00`);
    await see(second.locator('.msg.dialog .note'), 'closed: outside_hours');

    step('the desk fails for a while: the timeline shows the outbox retrying until it delivers');
    await page.locator('#hours-expr').fill('');
    await see(page.locator('#hours-preview'), 'always open');
    await page.locator('#hours-apply').click();
    await see(page.locator('#operator-status'), 'opening hours removed: applied');
    await say(second, 'I want to return my shoes');
    await see(second.locator('.msg.dialog .note'), 'opened');
    const secondCard = page.locator(`#desk article.conversation[data-session="${await second.getAttribute('data-session')}"]`);
    await see(secondCard.locator('.meta dd'), 'unsupported_flow');
    await page.locator('#desk-fails').check();
    await say(second, 'Hello again');
    await see(second.locator('.events li.failed'), 'desk answered 503');
    await see(second.locator('.outbox li'), 'retryable failure: HTTP 503');
    await page.locator('#desk-fails').uncheck();
    await see(second.locator('.events li:not(.failed)'), '(retry)', 20000);
    await see(secondCard.locator('.messages .live'), 'Hello again');

    assert.deepEqual(problems, [], 'the page must not throw');
    assert.deepEqual(polls, [], 'the page reads state from the event stream, never by polling');
    if (SCREENSHOT) {
      fs.mkdirSync(path.dirname(SCREENSHOT), { recursive: true });
      await page.screenshot({ path: SCREENSHOT });
      console.log(`  screenshot: ${path.relative(process.cwd(), SCREENSHOT)}`);
    }
    console.log(`browser test passed in ${((Date.now() - started) / 1000).toFixed(1)} s`);
  } finally {
    await context.close();
    fs.rmSync(userDataDir, { recursive: true, force: true });
  }
}

main().catch((e) => {
  console.error(`browser test FAILED: ${e.message}`);
  process.exit(1);
});
