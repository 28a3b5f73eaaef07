// {{name}}: a health check plugin for wasmvisor (wasmvisor:plugin@0.2.0), in JavaScript.
//
// Healthy once the node's CometBFT RPC (`rpc` setting, default http://127.0.0.1:26657) answers
// /status; pending until then. HTTP is `fetch`, over wasi:http (allowlist the RPC's host:port in
// plugins.toml); an exported function may be async, the call waits for it.

export const check = {
  async check(context, settings) {
    let rpc = "http://127.0.0.1:26657";
    for (const [k, v] of settings) if (k === "rpc") rpc = v;
    const url = `${rpc.replace(/\/+$/, "")}/status`;
    try {
      const response = await fetch(url);
      if (response.status === 200) return { tag: "healthy", val: `${url} answers` };
      return { tag: "pending", val: `${url}: HTTP ${response.status}` };
    } catch (e) {
      // fetch reports every failure alike; wasmvisor's log says which it was.
      return { tag: "pending", val: `${url}: ${e.message}` };
    }
  },
};
