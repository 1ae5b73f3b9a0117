/** Small statistics helpers for the benches. */

/**
 * The value at quantile `q` (0..1) of an ascending-sorted array (nearest rank).
 *
 * @param {ArrayLike<number>} sorted
 * @param {number} q
 * @returns {number}
 */
export function quantile(sorted, q) {
  if (sorted.length === 0) return NaN;
  const rank = Math.ceil(q * sorted.length) - 1;
  return sorted[Math.min(sorted.length - 1, Math.max(0, rank))];
}

/**
 * The median of some numbers (mean of the two middle ones for an even count).
 *
 * @param {number[]} values
 * @returns {number}
 */
export function median(values) {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
}

/**
 * Rounds to `digits` decimals.
 *
 * @param {number} value
 * @param {number} [digits]
 * @returns {number}
 */
export function round(value, digits = 0) {
  const f = 10 ** digits;
  return Math.round(value * f) / f;
}
