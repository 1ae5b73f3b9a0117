import { describe, expect, it } from 'vitest';
import { formatIssues, v, type Validator } from './validators.js';

/** The 422 text a caller reads for `value` against `validator` at `args[0]`. */
function message(validator: Validator, value: unknown): string {
  return formatIssues(validator.check(value, ['args', 0]));
}

describe('validator messages show the value received', () => {
  it('a string outside a union of literals, as JSON', () => {
    const theme = v.union(v.literal('light'), v.literal('dark'));
    expect(message(theme, 'blue')).toBe('args[0]: expected one of "light" | "dark", got "blue"');
    expect(message(v.literal('must'), 'could')).toBe('args[0]: expected "must", got "could"');
  });

  it('numbers, booleans, null and a missing value as written', () => {
    expect(message(v.int(), 1.5)).toBe('args[0]: expected integer, got 1.5');
    expect(message(v.int(), '3')).toBe('args[0]: expected integer, got "3"');
    expect(message(v.number(), Number.NaN)).toBe('args[0]: expected finite number, got NaN');
    expect(message(v.string(), true)).toBe('args[0]: expected string, got true');
    expect(message(v.boolean(), null)).toBe('args[0]: expected boolean, got null');
    expect(message(v.object({ votes: v.int() }), {})).toBe('args[0].votes: expected integer, got undefined');
  });

  it('a long string cut after 40 characters with its length, never the whole of it', () => {
    const huge = `${'x'.repeat(40)}${'y'.repeat(1_000_000)}`;
    expect(message(v.int(), huge)).toBe(`args[0]: expected integer, got "${'x'.repeat(40)}"... (1000040 characters)`);
    expect(message(v.literal('a'), huge)).not.toContain('y');
    expect(message(v.int(), 'x'.repeat(40))).toBe(`args[0]: expected integer, got "${'x'.repeat(40)}"`);
  });

  it('a cut never splits a character, and control characters stay escaped on one line', () => {
    const emoji = `${'a'.repeat(39)}😀${'b'.repeat(10)}`;
    expect(message(v.int(), emoji)).toBe(`args[0]: expected integer, got "${'a'.repeat(39)}"... (51 characters)`);
    expect(message(v.int(), 'two\nlines')).toBe('args[0]: expected integer, got "two\\nlines"');
  });

  it('only the kind of an object, an array or a function, not its contents', () => {
    expect(message(v.string(), { password: 'hunter2' })).toBe('args[0]: expected string, got object');
    expect(message(v.literal('a'), ['hunter2'])).toBe('args[0]: expected "a", got array');
    expect(message(v.union(v.literal('a'), v.literal('b')), { a: 1 })).toBe(
      'args[0]: expected one of "a" | "b", got object',
    );
    expect(message(v.int(), () => 1)).toBe('args[0]: expected integer, got function');
  });

  it('through Standard Schema too, as zod-style consumers read it', () => {
    const result = v.literal('x')['~standard'].validate('y');
    expect(result.issues?.[0]?.message).toBe('expected "x", got "y"');
  });
});
