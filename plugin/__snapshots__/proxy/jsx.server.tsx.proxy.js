// Client stand-in for a server module: each export calls the host over RPC.
import { createServerFunction as __favnServerFunction } from "@favn/vite-plugin-server-fns/client";
const __favn_renderCard = /* @__PURE__ */ __favnServerFunction("feature-x", "renderCard");
export { __favn_renderCard as renderCard };
