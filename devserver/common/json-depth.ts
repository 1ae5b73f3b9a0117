/** Deepest nesting of arrays and objects the host accepts in a request body or sends in a result. */
export const MAX_JSON_DEPTH = 64;

/**
 * True when the JSON text nests arrays and objects deeper than `max` levels. One pass over the
 * characters, no parse and no recursion, so it is safe on hostile input of any depth; brackets
 * inside strings do not count. Text too short to nest that deep is answered at once.
 *
 * @example
 * jsonDepthExceeds('{"args":[[1]]}', 2) // true: object, array, array
 */
export function jsonDepthExceeds(text: string, max = MAX_JSON_DEPTH): boolean {
  // Nesting deeper than `max` needs at least max + 1 opening and as many closing brackets.
  if (text.length <= 2 * max + 1) return false;
  let depth = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const code = text.charCodeAt(i);
    if (inString) {
      if (code === 92 /* \ */) i++;
      else if (code === 34 /* " */) inString = false;
    } else if (code === 34) inString = true;
    else if (code === 91 /* [ */ || code === 123 /* { */) {
      if (++depth > max) return true;
    } else if (code === 93 /* ] */ || code === 125 /* } */) depth--;
  }
  return false;
}
