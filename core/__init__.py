"""The neutral core every stage shares: settings and presets, run folders, the clock, CLI
helpers and the HTML fetcher. It imports only the gateway."""
