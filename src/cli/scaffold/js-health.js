// {{name}}: a health check plugin for wasmvisor (wasmvisor:plugin@0.2.0), in JavaScript.
//
// Healthy once the node's CometBFT RPC (`rpc` setting, default http://127.0.0.1:26657) answers
// /status; pending until then. HTTP goes through the host's `http` import (allowlist the RPC's
// host:port in plugins.toml).

import { get } from "wasmvisor:plugin/http@0.2.0";

export const check = {
  check(context, settings) {
    let rpc = "http://127.0.0.1:26657";
    for (const [k, v] of settings) if (k === "rpc") rpc = v;
    const url = `${rpc.replace(/\/+$/, "")}/status`;
    try {
      const status = get(url, []).status();
      if (status === 200) return { tag: "healthy", val: `${url} answers` };
      return { tag: "pending", val: `${url}: HTTP ${status}` };
    } catch (e) {
      return { tag: "pending", val: `${url}: ${JSON.stringify(e.payload ?? e.message)}` };
    }
  },
};
