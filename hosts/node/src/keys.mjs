// Key order of the store contract: bytewise over UTF-8, which is Unicode code point order.
// JavaScript compares strings by UTF-16 code unit, which differs exactly where a code point
// above U+FFFF (a surrogate pair, D800–DFFF) meets one in U+E000–U+FFFF: UTF-16 puts the pair
// first, UTF-8 after. The fix-up below lifts surrogates above that block before comparing.

/** -1, 0 or 1 as `a` sorts before, with or after `b` in UTF-8 byte order. */
export function compareKeys(a, b) {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    let x = a.charCodeAt(i);
    let y = b.charCodeAt(i);
    if (x === y) continue;
    if (x >= 0xd800 && y >= 0xd800) {
      x = x >= 0xe000 ? x - 0x800 : x + 0x2000;
      y = y >= 0xe000 ? y - 0x800 : y + 0x2000;
    }
    return x < y ? -1 : 1;
  }
  return a.length === b.length ? 0 : a.length < b.length ? -1 : 1;
}

/** The first index of sorted `keys` whose key is not before `key` (a lower bound). */
export function lowerBound(keys, key) {
  let lo = 0;
  let hi = keys.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (compareKeys(keys[mid], key) < 0) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}
