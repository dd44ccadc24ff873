#!/usr/bin/env bash
# The browser client: type-checked (its JSDoc, and its .d.ts as a page would
# use it) with Debian's TypeScript, then its unit tests with Node's runner.
set -euo pipefail
cd "$(dirname "$0")/.."
assets=Sources/PlexorGateway/Assets
tsc --noEmit --strict --noImplicitAny false --allowJs --checkJs --target es2022 --module es2022 --lib es2022,dom "$assets/plexor.js"
tsc --noEmit --strict --target es2022 --module es2022 --moduleResolution node --lib es2022,dom Tests/JavaScript/usage.ts
node --test Tests/JavaScript/
