// headfit.js — the year view's sticky month labels (issue #17 item 4). A month's label sticks
// to the left edge of the grid's visible part (right of the GPU names) and to its right edge,
// inside its own month's columns; where those columns show too little of the month for the
// whole "March 2026", the label becomes "March", "Mar", "M" or nothing. So a phone never shows
// a fragment ("April 2" cut by the frame), and labels never overlap. Runs on scroll and resize.
import { GPU_COL_PX } from './views.js';

const PAD_PX = 12; // .month-name's horizontal padding, both sides
const watched = new WeakSet();
let canvas = null;

/** Keep `table`'s month labels fitted while its frame scrolls or resizes; fit them now. */
export function watchMonthLabels(table) {
  const wrap = table.closest('.grid-wrap');
  if (!wrap) return;
  if (!watched.has(table)) {
    watched.add(table);
    let queued = false;
    const later = () => {
      if (queued) return;
      queued = true;
      requestAnimationFrame(() => {
        queued = false;
        fitMonthLabels(table);
      });
    };
    wrap.addEventListener('scroll', later, { passive: true });
    new ResizeObserver(later).observe(wrap);
  }
  fitMonthLabels(table);
}

/** Give each month label the longest of its names that fits the part of its month in sight. */
export function fitMonthLabels(table) {
  const wrap = table.closest('.grid-wrap');
  const labels = table.tHead?.querySelectorAll('.month-name[data-names]') ?? [];
  if (!wrap || !labels.length) return;
  const frame = wrap.getBoundingClientRect();
  const from = frame.left + wrap.clientLeft + GPU_COL_PX;
  const to = frame.left + wrap.clientLeft + wrap.clientWidth;
  const font = getComputedStyle(labels[0]).font;
  for (const label of labels) {
    const cell = label.parentElement.getBoundingClientRect();
    const room = Math.min(cell.right, to) - Math.max(cell.left, from) - PAD_PX;
    if (cell.right <= from || cell.left >= to) continue; // out of sight: left as it is
    const names = label.dataset.names.split('|');
    const name = names.find((text) => textWidth(text, font) <= room) ?? '';
    if (label.textContent !== name) label.textContent = name;
    label.hidden = name === '';
    if (name !== names[0]) label.title = names[0];
    else label.removeAttribute('title');
  }
}

function textWidth(text, font) {
  canvas ??= document.createElement('canvas').getContext('2d');
  canvas.font = font;
  return Math.ceil(canvas.measureText(text).width) + 1;
}
