/**
 * A mistake in the user's project (manifest, server module, config) that they must fix. Its
 * message names the file, and the line when known, and says what to change.
 */
export class UsageError extends Error {
  override readonly name = 'UsageError';
  readonly file: string | undefined;
  readonly line: number | undefined;
  readonly column: number | undefined;

  constructor(message: string, where: { file?: string; line?: number; column?: number } = {}) {
    super(message);
    this.file = where.file;
    this.line = where.line;
    this.column = where.column;
  }
}
