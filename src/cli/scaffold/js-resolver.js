// {{name}}: a resolver plugin for wasmvisor (wasmvisor:plugin@0.2.0), in JavaScript.
//
// It keeps the decision the resolvers before it made, and refuses the upgrades listed in its
// `deny` setting. Variants are { tag, val }; an absent option is undefined; u64 is a BigInt.

export const resolve = {
  resolve(request, previous, settings) {
    console.log(`asked about ${request.plan.name}`);
    const deny = settings.filter(([k]) => k === "deny").map(([, v]) => v.toLowerCase());
    if (deny.includes(request.plan.name.toLowerCase())) {
      return { tag: "refuse", val: `{{name}}: upgrade ${request.plan.name} is denied` };
    }
    return previous ?? { tag: "unresolved", val: "{{name}}: no resolver before this one" };
  },
};
