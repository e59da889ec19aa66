// notify.js — your notification channels (issue #14; the web face of `procplan notify`): add one
// (an apprise URL and the events it wants), send it a test message, remove it, and see how its
// last delivery went. The server never sends a channel's whole URL back (it may hold a secret),
// and every string it sends is rendered as text (dom.js `el`).
import { request } from './api.js';
import { el, toast } from './dom.js';
import { fmtInstant } from './live.js';
import { isAdmin, showSession } from './session.js';
import { mountZoneSwitch } from './zone.js';

const $ = (id) => document.getElementById(id);
const BASE = 'api/v1/notify/channels';

let me = null;

mountZoneSwitch(); // a switch reloads the page: every time is drawn again
showSession().then((found) => {
  me = found;
  if (!me.user) {
    problem('Sign in to manage where ProcPlan notifies you.');
    return;
  }
  $('notify-add').hidden = false;
  $('notify-cluster-box').hidden = !isAdmin(me);
  $('notify-add').addEventListener('submit', add);
  load();
});

function problem(text) {
  $('notify-problem').textContent = text;
  $('notify-problem').hidden = !text;
}

async function load() {
  try {
    const { data } = await request('GET', BASE);
    render(data.channels || []);
    problem('');
  } catch (err) {
    problem(`Could not load your channels: ${err.message}`);
  }
}

function lastDelivery(channel) {
  const sent = channel.last_sent_at;
  const failed = channel.last_error_at;
  if (failed && (!sent || failed > sent)) return `failed ${fmtInstant(failed)}: ${channel.last_error || ''}`;
  return sent ? `sent ${fmtInstant(sent)}` : 'nothing sent yet';
}

function render(channels) {
  const rows = channels.map((channel) => el('tr', { dataset: { channel: String(channel.id) } },
    el('td', { class: 'num' }, String(channel.id)),
    el('td', {}, channel.cluster ? 'the lab' : channel.user || ''),
    el('td', { class: 'url' }, channel.url),
    el('td', {}, channel.events === '*' ? 'all' : channel.events.join(', ')),
    el('td', {}, channel.label || '—'),
    el('td', { class: 'last' }, lastDelivery(channel)),
    el('td', { class: 'actions-cell' },
      el('button', { type: 'button', onclick: () => test(channel.id), 'aria-label': `Test channel ${channel.id}` }, 'Test'),
      el('button', { type: 'button', onclick: () => remove(channel.id), 'aria-label': `Remove channel ${channel.id}` }, 'Remove'))));
  $('notify').tBodies[0].replaceChildren(...rows);
  $('notify-count').textContent = `(${channels.length})`;
  $('notify-section').hidden = channels.length === 0;
  $('notify-empty').hidden = channels.length > 0;
}

async function add(event) {
  event.preventDefault();
  const body = {
    url: $('notify-url').value.trim(),
    events: $('notify-events').value.trim() || '*',
    label: $('notify-label').value.trim(),
    cluster: isAdmin(me) && $('notify-cluster').checked,
  };
  try {
    const { data } = await request('POST', BASE, body);
    toast(`Added channel ${data.id}`);
    $('notify-url').value = '';
    $('notify-label').value = '';
    problem('');
    load();
  } catch (err) {
    problem(`Not added: ${err.message}`);
  }
}

async function test(id) {
  try {
    const { data } = await request('POST', `${BASE}/${id}/test`);
    if (data.sent) toast(`Sent a test message to channel ${id}`);
    else problem(`Channel ${id}: ${data.error || 'not sent'}`);
  } catch (err) {
    problem(`Channel ${id}: ${err.message}`);
  }
  load();
}

async function remove(id) {
  if (!window.confirm(`Remove channel ${id}? Nothing more will be sent to it.`)) return;
  try {
    await request('DELETE', `${BASE}/${id}`);
    toast(`Removed channel ${id}`);
  } catch (err) {
    problem(`Channel ${id}: ${err.message}`);
  }
  load();
}
