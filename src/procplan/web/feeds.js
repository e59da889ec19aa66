// feeds.js — "Calendar feed…" in the planner's account area (issue #17): make a feed secret
// (POST /api/v1/feeds), show its URLs to paste into a calendar app, or revoke it (DELETE).
// Why a dialog with its own "Create" button: a new secret revokes the old one, so opening the
// dialog must not break a calendar already subscribed; the secret is shown only once.
import { createFeed, revokeFeed } from './api.js';
import { el } from './dom.js';

const HINT = 'Paste a URL into your calendar app: Google Calendar “Other calendars → From URL”, '
  + 'Outlook “Add calendar → Subscribe from web”, Thunderbird “New calendar → On the network”. '
  + 'Keep it private: anyone with the URL sees those bookings.';

/** Add the "Calendar feed…" button to the session area `box` for a signed-in `me`. */
export function addFeedButton(box, me, nodes = () => []) {
  if (!box || !me?.user || box.querySelector('.feed-open')) return;
  let dialog = null;
  const button = el('button', {
    type: 'button', class: 'feed-open', 'aria-haspopup': 'dialog', title: 'Subscribe to your bookings from a calendar app',
    onclick: () => {
      dialog ??= buildDialog(nodes);
      dialog.reset();
      dialog.node.showModal();
    },
  }, 'Calendar feed…');
  const before = box.querySelector('.sign-out, .sign-in, .admin-notice');
  if (before) before.before(button);
  else box.append(button);
}

function buildDialog(nodes) {
  const status = el('p', { class: 'feed-status', role: 'status', 'aria-live': 'polite' });
  const urls = el('div', { class: 'feed-urls', hidden: true });
  const create = el('button', { type: 'button', class: 'primary feed-create' }, 'Create feed URL');
  const revoke = el('button', { type: 'button', class: 'danger feed-revoke' }, 'Revoke');
  const close = el('button', { type: 'button', class: 'feed-close' }, 'Close');
  const node = el('dialog', { id: 'feed-dialog', 'aria-labelledby': 'feed-title' },
    el('h2', { id: 'feed-title' }, 'Calendar feed'),
    el('p', { class: 'muted' }, 'Your bookings as an iCalendar feed. Creating a URL stops any older one; '
      + 'the URL is shown only once.'),
    urls, status,
    el('div', { class: 'actions' }, close, revoke, create));
  document.body.append(node);

  async function busy(work) {
    create.disabled = true;
    revoke.disabled = true;
    try {
      await work();
    } catch (err) {
      status.className = 'feed-status form-error';
      status.textContent = err.message;
    } finally {
      create.disabled = false;
      revoke.disabled = false;
    }
  }
  create.addEventListener('click', () => busy(async () => {
    const feed = await createFeed();
    showUrls(urls, feed, nodes());
    status.className = 'feed-status';
    status.textContent = 'New feed URL made; an older one no longer works.';
  }));
  revoke.addEventListener('click', () => busy(async () => {
    const { revoked } = await revokeFeed();
    urls.hidden = true;
    urls.replaceChildren();
    status.className = 'feed-status';
    status.textContent = revoked ? 'Feed revoked: calendar apps subscribed to it get nothing more.'
      : 'You had no feed to revoke.';
  }));
  close.addEventListener('click', () => node.close());

  return {
    node,
    reset() {
      urls.hidden = true;
      urls.replaceChildren();
      status.className = 'feed-status';
      status.textContent = '';
    },
  };
}

/** The feed URL and, for a node chosen in a list, that node's feed URL; each with Copy. */
function showUrls(box, feed, nodeList) {
  const nodeUrl = (id) => feed.node_url.replace('{node_id}', encodeURIComponent(id));
  const rows = [urlRow('Your bookings', 'feed-user-url', feed.url)];
  if (nodeList.length) {
    const pick = el('select', { 'aria-label': 'Node' }, nodeList.map((n) => el('option', { value: n.id }, n.name || n.id)));
    const row = urlRow('A node’s bookings (everyone’s)', 'feed-node-url', nodeUrl(nodeList[0].id), pick);
    pick.addEventListener('change', () => { row.querySelector('input').value = nodeUrl(pick.value); });
    rows.push(row);
  }
  box.replaceChildren(...rows, el('p', { class: 'feed-hint muted' }, HINT));
  box.hidden = false;
  box.querySelector('input').select();
}

function urlRow(text, cls, value, extra = null) {
  const input = el('input', { type: 'text', class: cls, readonly: true, value, 'aria-label': text, spellcheck: 'false' });
  const copy = el('button', {
    type: 'button', class: 'feed-copy',
    onclick: async () => {
      input.select();
      try {
        await navigator.clipboard.writeText(input.value);
        copy.textContent = 'Copied';
      } catch {
        copy.textContent = 'Press Ctrl+C'; // no clipboard access (plain http): the text is selected
      }
    },
  }, 'Copy');
  return el('div', { class: 'feed-url' }, el('span', { class: 'feed-label' }, text), extra,
    el('div', { class: 'feed-line' }, input, copy));
}
