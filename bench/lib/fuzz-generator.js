/**
 * Draws the fuzzer's cases from the request classes by weight, from one seeded generator, so a
 * seed gives the same sequence of cases against the same host.
 */
import { RPC_CLASSES } from './fuzz-cases.js';
import { pageRequest } from './fuzz-pages.js';
import { createRandom } from './fuzz-random.js';

/** Share of the requests that go to pages and host endpoints outside `/rpc/`. */
const PAGE_WEIGHT = 8;
/** At most one run-an-isolate-out-of-its-budget call per this many requests (each costs up to seconds). */
const REQUESTS_PER_HEAVY = 200;

/** Every class name, for `--classes`. */
export const CLASS_NAMES = [...RPC_CLASSES.map(([name]) => name), 'page'];

/**
 * @typedef {object} GeneratorOptions
 * @property {string} seed
 * @property {'serve' | 'vite'} hostName
 * @property {number} port
 * @property {number} requests how many cases will be drawn (caps the heavy ones)
 * @property {string[]} assets client files of the built feature (serve)
 * @property {string} handlersRoot folder of the feature vite dev serves
 * @property {string[] | null} classes only these classes, or all
 */

/**
 * A function returning the next case.
 *
 * @param {GeneratorOptions} options
 * @returns {() => import('./fuzz-expect.js').FuzzCase}
 */
export function createGenerator(options) {
  const rng = createRandom(`${options.seed}:${options.hostName}`);
  const ctx = {
    rng,
    hostName: options.hostName,
    port: options.port,
    hostHeader: `127.0.0.1:${options.port}`,
    crud: options.hostName === 'serve',
    assets: options.assets,
    handlersRoot: options.handlersRoot,
  };
  const all = [...RPC_CLASSES, ['page', pageRequest, PAGE_WEIGHT]];
  const chosen = all.filter(([name]) => !options.classes || options.classes.includes(name));
  if (chosen.length === 0) throw new Error(`No request class left: choose from ${CLASS_NAMES.join(', ')}`);
  let heavyLeft = Math.ceil(options.requests / REQUESTS_PER_HEAVY);
  const entries = chosen.map(([name, make, weight]) => /** @type {const} */ ([[name, make], weight]));
  const withoutHeavy = entries.filter(([[name]]) => name !== 'heavy-fault');
  return () => {
    const [name, make] = rng.weighted(heavyLeft > 0 || withoutHeavy.length === 0 ? entries : withoutHeavy);
    if (name === 'heavy-fault') heavyLeft--;
    return make(ctx);
  };
}
