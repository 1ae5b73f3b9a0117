// Client stand-in for a server module: each export calls the host over RPC.
import { createServerFunction as __favnServerFunction } from "@favn/vite-plugin-server-fns/client";
const __favn_listReports = /* @__PURE__ */ __favnServerFunction("feature-x", "listReports");
export { __favn_listReports as listReports };
const __favn_archive = /* @__PURE__ */ __favnServerFunction("feature-x", "archive");
export { __favn_archive as archive };
const __favn_archiveReport = /* @__PURE__ */ __favnServerFunction("feature-x", "archiveReport");
export { __favn_archiveReport as archiveReport };
const __favn_renamed = /* @__PURE__ */ __favnServerFunction("feature-x", "renamed");
export { __favn_renamed as renamed };
