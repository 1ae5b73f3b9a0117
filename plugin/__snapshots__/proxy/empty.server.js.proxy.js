// Client stand-in for a server module: each export calls the host over RPC.
import { createServerFunction as __favnServerFunction } from "@favn/vite-plugin-server-fns/client";
