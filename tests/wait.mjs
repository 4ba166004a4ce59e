// The one polling wait of the browser tests (ui/e2e) and the window tests (tests/desktop),
// which are separate npm packages: plain Node, no dependencies.

/**
 * Resolves with `predicate()`'s value once it is truthy; rejects naming `what` (and the last
 * value or error) after `ms`. Polls every `every` ms, never sleeps blindly.
 */
export async function until(what, predicate, ms = 20_000, every = 100) {
  const deadline = Date.now() + ms;
  let last;
  while (Date.now() < deadline) {
    try {
      last = await predicate();
      if (last) return last;
    } catch (e) {
      last = e;
    }
    await new Promise((r) => setTimeout(r, every));
  }
  throw new Error(`timed out waiting until ${what} (last: ${last})`);
}
