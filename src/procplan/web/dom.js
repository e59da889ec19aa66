// dom.js — safe DOM and storage helpers. Elements are built with createElement and text
// nodes only (never innerHTML), so user data such as booking labels always renders as text.

/** Create `tag` with props (class, dataset, style, on<event>, attributes) and children. */
export function el(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(props)) {
    if (value === undefined || value === null || value === false) continue;
    if (key === 'class') node.className = value;
    else if (key === 'dataset') Object.assign(node.dataset, value);
    else if (key === 'style') Object.assign(node.style, value);
    else if (key.startsWith('on')) node.addEventListener(key.slice(2), value);
    else node.setAttribute(key, value === true ? '' : String(value));
  }
  // append() turns strings into text nodes: markup in data stays inert.
  node.append(...children.flat().filter((c) => c !== null && c !== undefined && c !== false));
  return node;
}

const TOAST_MS = { info: 4000, success: 4000, error: 9000 };

/**
 * Show a dismissible message in the aria-live toast region; `action` ({href, text}) adds a link
 * (e.g. "Sign in").
 */
export function toast(message, kind = 'info', action = null) {
  let region = document.getElementById('toasts');
  if (!region) {
    region = el('div', { id: 'toasts', class: 'toasts', role: 'status', 'aria-live': 'polite' });
    document.body.append(region);
  }
  const item = el('div', { class: `toast toast-${kind}` },
    el('span', {}, String(message)),
    action ? el('a', { class: 'toast-action', href: action.href }, action.text) : null,
    el('button', { type: 'button', class: 'icon', 'aria-label': 'Dismiss', onclick: () => item.remove() }, '×'));
  region.append(item);
  setTimeout(() => item.remove(), TOAST_MS[kind] ?? TOAST_MS.info);
}

/** localStorage read that survives disabled storage and bad JSON. */
export function loadPref(key, fallback) {
  try {
    const raw = localStorage.getItem(key);
    return raw === null ? fallback : JSON.parse(raw);
  } catch {
    return fallback;
  }
}

export function savePref(key, value) {
  try {
    localStorage.setItem(key, JSON.stringify(value));
  } catch {
    /* storage disabled: the preference just is not remembered */
  }
}
