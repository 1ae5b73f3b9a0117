// The bench rewrites the returned value on every save.
export async function version() {
  return 'v0';
}
