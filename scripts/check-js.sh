#!/usr/bin/env bash
# The browser client: type-checked (its JSDoc, and its .d.ts as a page would
# use it) with Debian's TypeScript, with the widget's scripts; then its unit
# tests with Node's runner.
set -euo pipefail
cd "$(dirname "$0")/.."
assets=Sources/PlexorGateway/Assets
tsc --noEmit --strict --noImplicitAny false --allowJs --checkJs --target es2022 --module es2022 --lib es2022,dom "$assets/plexor.js" "$assets/realplexor.js"
tsc --noEmit --strict --target es2022 --module es2022 --moduleResolution node --lib es2022,dom Tests/JavaScript/usage.ts
# The chat widget, its sign-in popup, the host page's helper and the demo page's script.
tsc --noEmit --allowJs --checkJs --target es2022 --module es2022 --lib es2022,dom,dom.iterable \
    "$assets/widget.js" "$assets/signin.js" "$assets/embed.js" "$assets/demo.js"
node --test Tests/JavaScript/
