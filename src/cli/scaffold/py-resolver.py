"""{{name}}: a resolver plugin for wasmvisor (wasmvisor:plugin@0.2.0), in Python.

It keeps the decision the resolvers before it made, and refuses the upgrades listed in its
`deny` setting.
"""

from wit_world import exports
from wit_world.imports.types import Decision_Refuse, Decision_Unresolved


class Resolve(exports.Resolve):
    def resolve(self, request, previous, settings):
        print(f"asked about {request.plan.name}")
        deny = [v.lower() for k, v in settings if k == "deny"]
        if request.plan.name.lower() in deny:
            return Decision_Refuse(f"{{name}}: upgrade {request.plan.name} is denied")
        if previous is None:
            return Decision_Unresolved("{{name}}: no resolver before this one")
        return previous
