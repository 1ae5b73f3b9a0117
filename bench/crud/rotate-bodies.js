/**
 * Preloaded into the load generator (`node --import <this> bench/lib/load.js '<config>'`): when
 * the config has `bodies`, each request sends the next of them in turn instead of `body`. Without
 * `bodies` it changes nothing. Keeps `bench/lib/load.js` (one fixed body) unchanged.
 */
import http from 'node:http';

const config = parseConfig(process.argv[2]);
if (Array.isArray(config?.bodies) && config.bodies.length > 0) {
  const bodies = config.bodies.map((body) => Buffer.from(body));
  let next = 0;
  const request = http.request;
  http.request = function rotatingRequest(options, callback) {
    const body = bodies[next++ % bodies.length];
    const req = request.call(
      this,
      { ...options, headers: { ...options.headers, 'content-length': body.length } },
      callback,
    );
    const end = req.end;
    req.end = () => end.call(req, body);
    return req;
  };
}

/** The config argument, or `null` when this process is not a load generator. */
function parseConfig(arg) {
  try {
    return JSON.parse(arg ?? '');
  } catch {
    return null;
  }
}
