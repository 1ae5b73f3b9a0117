// Client stand-in for a server module: each export calls the host over RPC.
import { createServerFunction as __favnServerFunction } from "@favn/vite-plugin-server-fns/client";
const __favn_getData = /* @__PURE__ */ __favnServerFunction("feature-x", "getData");
export { __favn_getData as getData };
const __favn_saveData = /* @__PURE__ */ __favnServerFunction("feature-x", "saveData");
export { __favn_saveData as saveData };
