// A server module with nothing exported yet.
const notYet = 1;
