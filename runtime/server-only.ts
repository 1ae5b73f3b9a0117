// Server-only entries point their `browser` condition here, so a bundler that pulls one into a
// client bundle fails loudly instead of shipping server code.
throw new Error(
  '@favn/vite-plugin-server-fns/server and /devserver are server-only. Import them from *.server.* ' +
    'modules (which the plugin turns into RPC proxies in client builds), never from client code.',
);
