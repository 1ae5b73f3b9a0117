/**
 * The trivial server function of the RPC bench: echoes its argument.
 *
 * @param {unknown} ctx
 * @param {unknown} value
 */
export async function echo(ctx, value) {
  return { echo: value };
}
